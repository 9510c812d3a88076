"""A locked-out sign-in is answered 429 Too Many Requests, with the reason (issue 20 item 6)."""

from django.test import Client
from django.urls import reverse

from tests.factories import TEST_PASSWORD


def test_the_lockout_is_answered_429_and_says_why(cast, settings):
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = client.post(reverse("account_login"), {"login": cast.center_finance.email, "password": "wrong-1234"})
        assert response.status_code == 200  # a wrong password is the form again
    response = client.post(reverse("account_login"), {"login": cast.center_finance.email, "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert "Too many failed login attempts" in response.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302  # not signed in


def test_another_account_is_not_locked(cast, settings):
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post(reverse("account_login"), {"login": cast.center_finance.email, "password": "wrong-1234"})
    response = client.post(reverse("account_login"), {"login": cast.center_viewer.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
