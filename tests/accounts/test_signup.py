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
