"""Open sign-up makes patient accounts; the email must be verified before the first sign-in."""

import re

from django.test import Client
from django.urls import reverse

from accounts.models import Membership, User
from tests.factories import UserFactory


def test_signup_creates_a_patient_who_must_verify_the_email(db, mailoutbox):
    client = Client()
    response = client.post(
        reverse("account_signup"),
        {"email": "Pat.Ient@Example.test", "password1": "a-long-patient-pass-7", "password2": "a-long-patient-pass-7"},
    )
    assert response.status_code == 302
    user = User.objects.get(email="pat.ient@example.test")
    assert user.kind == User.Kind.PATIENT
    assert not Membership.objects.filter(user=user).exists()
    assert client.get("/").status_code == 302  # not signed in until verified

    link = re.search(r"http://\S+/accounts/confirm-email/\S+", mailoutbox[0].body).group(0)
    path = link[link.index("/accounts/") :]
    client.post(path)
    response = client.post(
        reverse("account_login"), {"login": "pat.ient@example.test", "password": "a-long-patient-pass-7"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_duplicate_email_is_refused_at_signup(db):
    UserFactory(email="taken@example.test")
    response = Client().post(
        reverse("account_signup"),
        {"email": "TAKEN@example.test", "password1": "a-long-patient-pass-7", "password2": "a-long-patient-pass-7"},
    )
    # Enumeration is prevented: the form "succeeds" but no second account appears.
    assert User.objects.filter(email__iexact="taken@example.test").count() == 1
    assert response.status_code in (200, 302)


def test_logout_ends_the_session(cast, login):
    client = login(cast.center_finance)
    assert client.get("/").status_code == 200
    client.post(reverse("account_logout"))
    assert client.get("/").status_code == 302


def test_a_radiologist_signs_up_as_an_independent_practice_and_reaches_onboarding(db, mailoutbox):
    import pyotp

    from accounts.models import Organization

    client = Client()
    response = client.post(reverse("account_signup"), {
        "account_type": "radiologist", "full_name": "Dr. Amara Okonkwo", "country": "US",
        "email": "amara@example.test", "password1": "a-long-radiology-pass-3", "password2": "a-long-radiology-pass-3"})
    assert response.status_code == 302
    user = User.objects.get(email="amara@example.test")
    assert user.kind == User.Kind.PROFESSIONAL
    membership = Membership.objects.get(user=user)
    assert membership.organization.kind == Organization.Kind.RADIOLOGY_GROUP
    assert sorted(membership.roles) == ["admin", "radiologist"]

    link = re.search(r"http://\S+/accounts/confirm-email/\S+", mailoutbox[0].body).group(0)
    client.post(link[link.index("/accounts/"):])
    client.post(reverse("account_login"), {"login": "amara@example.test", "password": "a-long-radiology-pass-3"})
    # A radiologist sees patient data: two-factor first, then onboarding.
    assert client.get(reverse("onboarding"))["Location"].startswith(reverse("mfa_activate_totp"))
    page = client.get(reverse("mfa_activate_totp"))
    client.post(reverse("mfa_activate_totp"), {"code": pyotp.TOTP(page.context["form"].secret).now()})
    response = client.get(reverse("onboarding"))
    assert response.status_code == 302
    assert response["Location"] == reverse("onboarding_step", kwargs={"step": "profile"})
    assert client.get(response["Location"]).status_code == 200


def test_radiologist_signup_needs_a_name_and_a_country_code(db):
    response = Client().post(reverse("account_signup"), {
        "account_type": "radiologist", "full_name": "", "country": "USA",
        "email": "noname@example.test", "password1": "a-long-radiology-pass-3", "password2": "a-long-radiology-pass-3"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) >= {"full_name", "country"}
    assert not User.objects.filter(email="noname@example.test").exists()
