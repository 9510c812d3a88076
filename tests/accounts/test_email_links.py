"""Links in emails come from one place (core.links) and follow the site actually serving the request."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse

from accounts import policy, services
from accounts.credentials import services as credential_services
from tests.accounts.credentials_fixtures import TODAY, add, license_data


def test_an_invitation_sent_from_the_page_links_to_the_host_serving_it(cast, login, mailoutbox, settings,
                                                                       django_capture_on_commit_callbacks):
    settings.SITE_URL = "http://127.0.0.1:8000"
    client = login(cast.center_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("invitation_list"), {"email": "new.tech@example.test", "role": "technologist"},
                               HTTP_HOST="127.0.0.1:8101")
    assert response.status_code == 302
    [email] = mailoutbox
    assert "http://127.0.0.1:8101/invitations/" in email.body
    assert "127.0.0.1:8000" not in email.body


def test_an_invitation_sent_without_a_request_links_to_site_url(cast, mailoutbox, settings,
                                                                django_capture_on_commit_callbacks):
    settings.SITE_URL = "https://readroom.example"
    with django_capture_on_commit_callbacks(execute=True):
        _, token = services.invitation_create(actor=policy.actor_for_user(cast.center_admin),
                                              organization=cast.center, email="x@example.test", role="viewer")
    [email] = mailoutbox
    assert f"https://readroom.example/invitations/{token}/" in email.body


def test_the_invitation_expiry_reads_in_the_organizations_zone_not_utc(cast, mailoutbox,
                                                                       django_capture_on_commit_callbacks):
    cast.center.time_zone = "Asia/Tokyo"  # no summer time: always JST
    cast.center.save(update_fields=["time_zone"])
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(actor=policy.actor_for_user(cast.center_admin), organization=cast.center,
                                   email="x@example.test", role="viewer")
    [email] = mailoutbox
    assert " JST." in email.body
    assert "UTC" not in email.body


def test_a_credential_reminder_links_to_site_url_and_notifies_with_a_path(cast, mailoutbox, settings,
                                                                          django_capture_on_commit_callbacks):
    settings.SITE_URL = "https://readroom.example"
    add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=20)))
    with django_capture_on_commit_callbacks(execute=True):
        assert credential_services.credential_reminders_send(today=TODAY) == 1
    [email] = mailoutbox
    assert email.body.endswith("https://readroom.example" + reverse("credentials_mine"))
    assert cast.radiologist.notifications.get().url == reverse("credentials_mine")
