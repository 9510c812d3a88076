"""Sessions: idle timeout for PHI roles, absolute limit, rotation at login, disabled users, throttling."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.middleware import LAST_ACTIVITY_KEY, LOGIN_AT_KEY
from accounts.models import AuditEvent
from tests.factories import TEST_PASSWORD


def _age_session(client, key, seconds):
    session = client.session
    session[key] = time.time() - seconds
    session.save()


def test_idle_phi_session_ends_after_the_configured_time(cast, login, settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 15 * 60
    client = login(cast.technologist)
    assert client.get("/").status_code == 200
    _age_session(client, LAST_ACTIVITY_KEY, 16 * 60)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    # Signed out for good, not just redirected once.
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="auth.session_expired", actor=cast.technologist).exists()


def test_activity_within_the_idle_window_keeps_the_session(cast, login):
    client = login(cast.technologist)
    _age_session(client, LAST_ACTIVITY_KEY, 14 * 60)
    assert client.get("/").status_code == 200
    assert time.time() - client.session[LAST_ACTIVITY_KEY] < 5


def test_idle_timeout_is_configurable(cast, login, settings):
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 60
    client = login(cast.radiologist)
    _age_session(client, LAST_ACTIVITY_KEY, 90)
    assert client.get("/").status_code == 302


def test_idle_api_session_answers_401_in_the_error_format(cast, login):
    client = login(cast.center_admin)
    _age_session(client, LAST_ACTIVITY_KEY, 16 * 60)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"


def test_roles_without_phi_have_no_idle_timeout_but_an_absolute_limit(cast, login, settings):
    client = login(cast.center_finance)
    _age_session(client, LAST_ACTIVITY_KEY, 3 * 60 * 60)
    assert client.get("/").status_code == 200
    _age_session(client, LOGIN_AT_KEY, settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS + 1)
    assert client.get("/").status_code == 302


def test_disabled_user_is_refused_on_the_very_next_request(cast, login):
    client = login(cast.center_finance)
    assert client.get("/").status_code == 200
    cast.center_finance.is_active = False
    cast.center_finance.save(update_fields=["is_active"])
    assert client.get("/").status_code == 302


def test_session_id_rotates_at_login(cast):
    client = Client()
    client.get(reverse("account_login"))
    client.cookies["sessionid"] = "anonymous-session-id-planted"
    client.post(reverse("account_login"), {"login": cast.center_finance.email, "password": TEST_PASSWORD})
    assert client.cookies["sessionid"].value != "anonymous-session-id-planted"
    assert client.get("/").status_code == 200


def _fail_login(client, email):
    return client.post(reverse("account_login"), {"login": email, "password": "wrong-password-123"})


def test_login_is_locked_after_repeated_failures_even_with_the_right_password(cast, settings):
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = _fail_login(client, cast.center_finance.email)
        assert response.status_code == 200
    response = client.post(reverse("account_login"), {"login": cast.center_finance.email, "password": TEST_PASSWORD})
    assert response.status_code in (200, 429)
    assert client.get("/").status_code == 302, "a locked-out account must not sign in"
    assert b"Too many failed login attempts" in response.content
    failures = AuditEvent.objects.filter(action="auth.login_failed", outcome="denied")
    assert failures.count() >= settings.LOGIN_FAILURE_LIMIT


def test_lockout_of_one_account_does_not_lock_another(cast, settings):
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        _fail_login(client, cast.center_finance.email)
    other = Client()
    other.post(reverse("account_login"), {"login": cast.center_viewer.email, "password": TEST_PASSWORD})
    assert other.get("/").status_code == 200


def test_successful_login_and_logout_are_audited(cast):
    client = Client()
    client.post(reverse("account_login"), {"login": cast.center_finance.email, "password": TEST_PASSWORD})
    client.post(reverse("account_logout"))
    actions = list(AuditEvent.objects.filter(actor=cast.center_finance).values_list("action", flat=True))
    assert "auth.login" in actions
    assert "auth.logout" in actions


@pytest.mark.parametrize("path", ["/", "/api/v1/me/"])
def test_anonymous_is_sent_to_login_or_refused(db, path):
    response = Client().get(path)
    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert response["Location"].startswith(reverse("account_login"))
