"""Words a new user reads: counts agree with their nouns, the confirmation email reads as a sentence,
and in development (DEBUG on) a 404/403 shows the product's own page, not Django's debug page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import policy, services
from accounts.models import Notification


def _count_line(page) -> str:
    return re.search(r'<div class="pagination card-footer"><span class="muted small">([^<]*)</span>',
                     page.content.decode()).group(1)


def test_one_invitation_is_counted_in_the_singular(cast, login):
    admin = policy.actor_for_user(cast.center_admin)
    services.invitation_create(actor=admin, organization=cast.center, email="new@example.test", role="viewer")
    assert _count_line(login(cast.center_admin).get(reverse("invitation_list"))) == "1 invitation"
    services.invitation_create(actor=admin, organization=cast.center, email="two@example.test", role="viewer")
    assert _count_line(login(cast.center_admin).get(reverse("invitation_list"))) == "2 invitations"


def test_one_notification_is_counted_in_the_singular(cast, login):
    Notification.objects.create(user=cast.center_admin, title="License expires soon")
    page = login(cast.center_admin).get(reverse("notification_list"))
    assert _count_line(page) == "1 notification"
    assert b"1 notifications" not in page.content


def test_no_template_counts_a_paginated_list_without_its_singular():
    from django.conf import settings

    for path in (settings.BASE_DIR / "templates").rglob("*.html"):
        for include in re.findall(r'\{% include "includes/pagination.html"[^%]*%\}', path.read_text()):
            assert "noun_one=" in include, f"{path}: {include}"


def test_the_signup_confirmation_email_reads_as_a_sentence(db, mailoutbox):
    Client().post(reverse("account_signup"), {"email": "pat@example.test", "password1": "a-long-patient-pass-7",
                                              "password2": "a-long-patient-pass-7"})
    message = mailoutbox[0]
    assert "is an email address for user" not in message.body
    assert "confirm your email address pat@example.test" in message.body
    assert re.search(r"http://\S+/accounts/confirm-email/\S+", message.body)
    assert message.subject == "[ReadRoom] Confirm your email address to finish signing up"


def test_the_confirmation_page_reads_as_a_sentence(db, mailoutbox):
    client = Client()
    client.post(reverse("account_signup"), {"email": "pat@example.test", "password1": "a-long-patient-pass-7",
                                            "password2": "a-long-patient-pass-7"})
    link = re.search(r"http://\S+/accounts/confirm-email/\S+", mailoutbox[0].body).group(0)
    page = client.get(link[link.index("/accounts/"):]).content.decode()
    assert "is an email address for user" not in page
    assert "Confirm that <strong>pat@example.test</strong> is your email address for ReadRoom." in page


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True
    return settings


def _is_product_page(response, code: int) -> bool:
    content = response.content.decode()
    return f'<div class="code">{code}</div>' in content and "Django" not in content


def test_an_unknown_url_shows_our_404_page_with_debug_on(debug_on, cast, login):
    response = login(cast.center_admin).get("/no-such-page/")
    assert response.status_code == 404
    assert _is_product_page(response, 404)
    assert "URLconf" not in response.content.decode()


def test_a_page_the_role_may_not_open_shows_our_404_page_with_debug_on(debug_on, cast, login):
    response = login(cast.technologist).get(reverse("center_privileges"))
    assert response.status_code == 404
    assert _is_product_page(response, 404)


def test_a_permission_denied_shows_our_403_page_with_debug_on(debug_on, rf, cast):
    from django.core.exceptions import PermissionDenied

    from core.middleware import ProductErrorPagesMiddleware

    request = rf.get("/")
    request.user = cast.center_admin
    response = ProductErrorPagesMiddleware(lambda r: None).process_exception(request, PermissionDenied("Not yours."))
    assert response.status_code == 403
    assert _is_product_page(response, 403)
    assert "Not yours." in response.content.decode()


def test_technical_404_is_back_when_asked_for(debug_on, cast, login):
    debug_on.TECHNICAL_404 = True
    response = login(cast.center_admin).get("/no-such-page/")
    assert response.status_code == 404
    assert not _is_product_page(response, 404)


def test_a_missing_slash_still_redirects_with_debug_on(debug_on, cast, login):
    response = login(cast.center_admin).get(reverse("center_privileges").rstrip("/"))
    assert response.status_code == 301
    assert response.url.endswith("/")
