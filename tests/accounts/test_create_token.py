"""``manage.py create_token``: a personal API token for scripts, printed once, working as its user."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import AuditEvent, PersonalApiToken


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_token", *args, stdout=out)
    return out.getvalue()


def secret_of(output: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("Token: "))


def test_the_token_is_printed_once_and_acts_as_its_user(cast, login):
    output = run("--user", "Center_Admin@example.test", "--name", "nightly export")
    secret = secret_of(output)
    token = PersonalApiToken.objects.get(user=cast.center_admin)
    assert token.name == "nightly export"
    assert token.expires_at is None
    assert secret.startswith(f"rrt_{token.prefix}_")
    assert token.secret_hash != secret
    assert secret not in str(PersonalApiToken.objects.values().get())
    assert AuditEvent.objects.filter(action="api_token.created", actor=cast.center_admin).exists()
    client = login(None, api=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get(reverse("api_me"))
    assert response.status_code == 200
    assert response.json()["email"] == cast.center_admin.email


def test_an_expiry_in_days_is_kept(cast):
    run("--user", cast.technologist.email, "--name", "ci", "--expires-in-days", "30")
    token = PersonalApiToken.objects.get(user=cast.technologist)
    assert token.expires_at is not None
    assert (token.expires_at - token.created_at).days in (29, 30)


def test_an_unknown_email_is_a_clear_error(cast):
    with pytest.raises(CommandError, match='No user has the email "nobody@example.test"'):
        run("--user", "nobody@example.test", "--name", "x")
    assert not PersonalApiToken.objects.exists()


def test_a_deactivated_user_or_a_bad_expiry_is_refused(cast):
    cast.patient.is_active = False
    cast.patient.save(update_fields=["is_active"])
    with pytest.raises(CommandError, match="deactivated"):
        run("--user", cast.patient.email, "--name", "x")
    with pytest.raises(CommandError, match="between 1 and 365"):
        run("--user", cast.technologist.email, "--name", "x", "--expires-in-days", "900")
    with pytest.raises(CommandError, match="name"):
        run("--user", cast.technologist.email, "--name", "  ")
    assert not PersonalApiToken.objects.exists()
