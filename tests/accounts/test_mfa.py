"""MFA: PHI roles must enroll before any protected page or API; login asks for the code; fresh MFA."""

import time

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from django.test import Client
from django.urls import reverse

from accounts.mfa import has_fresh_mfa
from tests.factories import TEST_PASSWORD, MembershipFactory, UserFactory


@pytest.mark.parametrize("roles", [["technologist"], ["admin"], ["radiologist"]])
def test_phi_role_without_totp_is_sent_to_enroll_before_pages(db, roles):
    user = MembershipFactory(roles=roles).user
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_activate_totp"))


def test_phi_role_without_totp_gets_clear_403_from_api(db):
    user = MembershipFactory(roles=["technologist"]).user
    client = Client()
    client.force_login(user)
    response = client.get("/api/v1/me/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_enrollment_required"


def test_platform_staff_without_totp_is_sent_to_enroll(cast):
    Authenticator.objects.filter(user=cast.platform_staff).delete()
    client = Client()
    client.force_login(cast.platform_staff)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("roles", [["finance"], ["viewer"]])
def test_roles_without_phi_and_patients_are_not_forced_to_enroll(db, roles):
    member = MembershipFactory(roles=roles).user
    patient = UserFactory(kind="patient")
    for user in (member, patient):
        client = Client()
        client.force_login(user)
        assert client.get("/").status_code == 200


def test_enrollment_after_password_login_then_pages_open(db):
    user = MembershipFactory(roles=["technologist"]).user
    client = Client()
    response = client.post(reverse("account_login"), {"login": user.email, "password": TEST_PASSWORD})
    assert client.get("/")["Location"].startswith(reverse("mfa_activate_totp"))
    response = client.get(reverse("mfa_activate_totp"))
    assert response.status_code == 200
    secret = response.context["form"].secret
    response = client.post(reverse("mfa_activate_totp"), {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    assert client.get("/").status_code == 200


def _login_with_password(client, email):
    return client.post(reverse("account_login"), {"login": email, "password": TEST_PASSWORD})


def test_login_of_enrolled_user_requires_the_totp_code(cast):
    client = Client()
    response = _login_with_password(client, cast.technologist.email)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    # Not signed in yet: the dashboard still wants a login.
    assert client.get("/")["Location"].startswith(reverse("account_login"))
    code = pyotp.TOTP(cast.totp_secrets["technologist"]).now()
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_wrong_totp_code_does_not_sign_in(cast):
    client = Client()
    _login_with_password(client, cast.technologist.email)
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/").status_code == 302


def test_replayed_totp_code_is_refused(cast):
    code = pyotp.TOTP(cast.totp_secrets["technologist"]).now()
    first = Client()
    _login_with_password(first, cast.technologist.email)
    first.post(reverse("mfa_authenticate"), {"code": code})
    assert first.get("/").status_code == 200
    second = Client()
    _login_with_password(second, cast.technologist.email)
    second.post(reverse("mfa_authenticate"), {"code": code})
    assert second.get("/").status_code == 302


def test_password_reset_does_not_bypass_mfa(cast, mailoutbox):
    client = Client()
    client.post(reverse("account_reset_password"), {"email": cast.technologist.email})
    assert len(mailoutbox) == 1
    link = next(line for line in mailoutbox[0].body.splitlines() if "/accounts/password/reset/key/" in line).strip()
    path = link[link.index("/accounts/") :]
    response = client.get(path, follow=True)
    form_path = response.redirect_chain[-1][0] if response.redirect_chain else path
    response = client.post(form_path, {"password1": "a-brand-new-secret-77", "password2": "a-brand-new-secret-77"})
    assert response.status_code == 302
    # Reset did not sign the user in, and the new password alone does not either.
    assert client.get("/").status_code == 302
    response = client.post(
        reverse("account_login"), {"login": cast.technologist.email, "password": "a-brand-new-secret-77"}
    )
    assert response["Location"] == reverse("mfa_authenticate")


def test_phi_role_cannot_remove_its_totp(cast, login):
    client = login(cast.technologist)
    code = pyotp.TOTP(cast.totp_secrets["technologist"]).now()
    client.post(reverse("mfa_deactivate_totp"), {"code": code})
    assert Authenticator.objects.filter(user=cast.technologist, type=Authenticator.Type.TOTP).exists()


def test_fresh_mfa_check_expires(cast, login, rf, settings):
    client = login(cast.center_admin, fresh_mfa=True)
    request = rf.get("/")
    request.user = cast.center_admin
    request.session = client.session
    assert has_fresh_mfa(request)
    settings.FRESH_MFA_SECONDS = 60
    from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY

    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [{"method": "mfa", "at": time.time() - 120, "type": "totp"}]
    session.save()
    request.session = client.session
    assert not has_fresh_mfa(request)


def test_mfa_reauthentication_makes_the_check_fresh_again(cast, login):
    client = login(cast.center_admin, fresh_mfa=False)
    code = pyotp.TOTP(cast.totp_secrets["center_admin"]).now()
    response = client.post(reverse("mfa_reauthenticate"), {"code": code})
    assert response.status_code == 302
    from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY

    records = client.session[AUTHENTICATION_METHODS_SESSION_KEY]
    assert any(r["method"] == "mfa" and time.time() - r["at"] < 5 for r in records)
