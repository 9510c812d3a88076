"""In-app notifications: the page lists mine only, marks one or all read (POST with CSRF), 404s
another person's id, keeps its query count flat, feeds the unread badge in the user menu; and the
radiologist dashboard shows each license's verification state."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import policy
from accounts.credentials import services as credential_services
from accounts.models import License, Notification
from tests.accounts.credentials_fixtures import TODAY, add, license_data, profile_for
from tests.conftest import mark_fresh_mfa

LIST = reverse("notification_list")


def mark_read_url(notification) -> str:
    return reverse("notification_mark_read", args=[notification.public_id])
MARK_ALL = reverse("notification_mark_all_read")


def notify(user, title: str, *, minutes_ago: int = 0, read: bool = False) -> Notification:
    now = timezone.now()
    return Notification.objects.create(user=user, title=title, body=f"About {title}.", url="https://x.test/credentials/",
                                       created_at=now - timedelta(minutes=minutes_ago),
                                       read_at=now if read else None)


def rows(html: str) -> list[str]:
    """The notification titles on the page, in page order."""
    new_badge = r'(?:<span class="badge badge-info">New</span> <strong>)?'
    found = re.findall(r'data-notification="[0-9a-f-]+">\s*<td>\s*' + new_badge + r"([^<]+)", html)
    return [title.strip() for title in found]


def unread_badge(html: str) -> str | None:
    match = re.search(r"data-unread-count[^>]*>(\d+)<", html)
    return match.group(1) if match else None


# --- the list ------------------------------------------------------------------------------------

def test_list_shows_only_my_notifications_newest_first(cast, login):
    notify(cast.radiologist, "Older one", minutes_ago=60)
    notify(cast.radiologist, "Newest one", minutes_ago=1)
    notify(cast.radiologist, "Middle one", minutes_ago=30, read=True)
    notify(cast.center_admin, "Someone else's notice")
    response = login(cast.radiologist).get(LIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert rows(html) == ["Newest one", "Middle one", "Older one"]
    assert "Someone else" not in html


def test_unread_notifications_are_highlighted_and_only_they_offer_mark_as_read(cast, login):
    unread = notify(cast.radiologist, "Unread notice")
    read = notify(cast.radiologist, "Read notice", minutes_ago=5, read=True)
    html = login(cast.radiologist).get(LIST).content.decode()
    unread_row = re.search(rf'<tr class="([^"]+)" data-notification="{unread.public_id}">(.*?)</tr>', html, re.S)
    read_row = re.search(rf'<tr class="([^"]+)" data-notification="{read.public_id}">(.*?)</tr>', html, re.S)
    assert "row-unread" in unread_row.group(1)
    assert "row-unread" not in read_row.group(1)
    assert "<strong>Unread notice</strong>" in unread_row.group(2)
    assert f'action="{mark_read_url(unread)}"' in unread_row.group(2)
    assert "/read/" not in read_row.group(2)
    assert "Mark all as read" in html


def test_a_person_without_notifications_sees_an_empty_list_and_no_mark_all(cast, login):
    html = login(cast.patient).get(LIST).content.decode()
    assert "You have no notifications." in html
    assert "Mark all as read" not in html


def test_the_list_pages_by_25(cast, login):
    for i in range(30):
        notify(cast.technologist, f"Notice {i:02d}", minutes_ago=i)
    client = login(cast.technologist)
    first = rows(client.get(LIST).content.decode())
    second = rows(client.get(LIST, {"page": 2}).content.decode())
    assert first == [f"Notice {i:02d}" for i in range(25)]
    assert second == [f"Notice {i:02d}" for i in range(25, 30)]


def test_a_reminder_from_the_daily_credential_task_appears_on_the_page(cast, login, django_capture_on_commit_callbacks):
    add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=20)), verify_by=cast.platform_staff)
    with django_capture_on_commit_callbacks(execute=True):
        assert credential_services.credential_reminders_send(today=TODAY) == 1
    html = login(cast.radiologist).get(LIST).content.decode()
    assert rows(html) == ["License US-TX (US-TX TX-12345) expires in 20 days"]
    assert '<a href="/credentials/">Open</a>' in html  # on this site, whatever host serves it (the email: SITE_URL)


def test_list_query_count_does_not_grow_with_notifications(cast, login):
    client = login(cast.technologist)
    for i in range(3):
        notify(cast.technologist, f"Few {i}", minutes_ago=i)
    client.get(LIST)  # warm the session and caches
    with CaptureQueriesContext(connection) as three:
        assert client.get(LIST).status_code == 200
    for i in range(27):
        notify(cast.technologist, f"Many {i}", minutes_ago=100 + i)
    with CaptureQueriesContext(connection) as thirty:
        assert client.get(LIST).status_code == 200
    assert len(thirty) == len(three), [q["sql"] for q in thirty]


# --- mark as read ------------------------------------------------------------------------------------

def test_mark_read_marks_that_one_of_mine_and_returns_to_the_page_i_was_on(cast, login):
    mine = notify(cast.radiologist, "Mine")
    other = notify(cast.radiologist, "Also mine", minutes_ago=1)
    response = login(cast.radiologist).post(mark_read_url(mine), {"next": f"{LIST}?page=1"})
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?page=1"
    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.read_at is not None
    assert other.read_at is None


def test_mark_read_twice_keeps_the_first_read_time(cast, login):
    mine = notify(cast.radiologist, "Mine")
    client = login(cast.radiologist)
    client.post(mark_read_url(mine))
    mine.refresh_from_db()
    first = mine.read_at
    assert client.post(mark_read_url(mine)).status_code == 302
    mine.refresh_from_db()
    assert mine.read_at == first


def test_mark_read_refuses_an_outside_next_url(cast, login):
    mine = notify(cast.radiologist, "Mine")
    response = login(cast.radiologist).post(mark_read_url(mine), {"next": "https://evil.test/"})
    assert response["Location"] == LIST


@pytest.mark.parametrize("raw", ["foreign", "missing", "not-a-uuid"])
def test_mark_read_of_another_persons_or_a_missing_notification_is_404_and_changes_nothing(cast, login, raw):
    import uuid

    theirs = notify(cast.center_admin, "Theirs")
    url = {"foreign": mark_read_url(theirs),
           "missing": reverse("notification_mark_read", args=[uuid.uuid4()]),
           "not-a-uuid": "/notifications/12345/read/"}[raw]
    response = login(cast.radiologist).post(url)
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_all_read_marks_all_of_mine_and_nobody_elses(cast, login):
    mine = [notify(cast.radiologist, f"Mine {i}", minutes_ago=i) for i in range(3)]
    already = notify(cast.radiologist, "Read earlier", minutes_ago=10, read=True)
    read_at_before = Notification.objects.get(pk=already.pk).read_at
    theirs = notify(cast.center_admin, "Theirs")
    response = login(cast.radiologist).post(MARK_ALL, {"next": LIST})
    assert response.status_code == 302
    assert response["Location"] == LIST
    assert not Notification.objects.filter(pk__in=[n.pk for n in mine], read_at__isnull=True).exists()
    assert Notification.objects.get(pk=already.pk).read_at == read_at_before
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_marking_read_is_refused_without_a_csrf_token(cast):
    mine = notify(cast.radiologist, "Mine")
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.radiologist)
    if cast.radiologist.authenticator_set.exists():
        mark_fresh_mfa(client, cast.radiologist)
    assert client.post(mark_read_url(mine)).status_code == 403
    assert client.post(MARK_ALL, {}).status_code == 403
    mine.refresh_from_db()
    assert mine.read_at is None
    # the page's own form carries the token, and with it the same post goes through
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(LIST).content.decode()).group(1)
    assert client.post(mark_read_url(mine), {"csrfmiddlewaretoken": token}).status_code == 302
    mine.refresh_from_db()
    assert mine.read_at is not None


def test_mark_routes_answer_get_with_405(cast, login):
    mine = notify(cast.radiologist, "Mine")
    for url in (mark_read_url(mine), MARK_ALL):
        assert login(cast.radiologist).get(url).status_code == 405


def test_selectors_and_services_do_nothing_for_an_actor_without_a_user(cast):
    notify(cast.radiologist, "Mine")
    from accounts import notifications

    nobody = policy.actor_for_user(None)
    assert list(notifications.notification_list(actor=nobody)) == []
    assert notifications.notification_unread_count(actor=nobody) == 0
    assert notifications.notifications_mark_all_read(actor=nobody) == 0
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


# --- the unread badge ----------------------------------------------------------------------------------

def test_the_user_menu_shows_my_unread_count_and_follows_mark_all(cast, login):
    for i in range(3):
        notify(cast.radiologist, f"Unread {i}", minutes_ago=i)
    notify(cast.radiologist, "Read", read=True)
    notify(cast.center_admin, "Not mine")
    client = login(cast.radiologist)
    html = client.get(reverse("dashboard")).content.decode()
    assert unread_badge(html) == "3"
    assert "3 unread" in html
    assert f'href="{LIST}"' in html
    client.post(MARK_ALL)
    html = client.get(reverse("dashboard")).content.decode()
    assert unread_badge(html) is None
    assert f'href="{LIST}"' in html  # the link stays, the badge goes


def test_the_badge_costs_one_query(cast, login):
    client = login(cast.technologist)
    client.get(LIST)
    with CaptureQueriesContext(connection) as without:
        client.get(reverse("profile"))
    badge_queries = [q["sql"] for q in without if "accounts_notification" in q["sql"]]
    assert len(badge_queries) == 1
    assert "COUNT(" in badge_queries[0].upper()


def test_anonymous_pages_have_no_badge_and_the_list_sends_them_to_sign_in(db):
    client = Client()
    assert unread_badge(client.get(reverse("account_login")).content.decode()) is None
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={LIST}"


def test_notifications_page_has_no_inline_script_or_style(cast, login):
    notify(cast.radiologist, "Mine")
    html = login(cast.radiologist).get(LIST).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html, re.I)
    assert " style=" not in html
    assert "<style" not in html


# --- the radiologist dashboard ----------------------------------------------------------------------------

def test_radiologist_dashboard_shows_each_license_state_and_links_to_my_credentials(cast, login):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX", expires_on=TODAY + timedelta(days=300)))
    add(cast.radiologist, "license", license_data("CO", expires_on=TODAY + timedelta(days=310)),
        verify_by=cast.platform_staff)
    rejected = add(cast.radiologist, "license", license_data("FL", expires_on=TODAY + timedelta(days=320)))
    credential_services.credential_reject(actor=policy.actor_for_user(cast.platform_staff), item=rejected,
                                          reason="Number not found at the board")
    # one the daily task already marked expired, one still verified but past its date (task not yet run)
    License.objects.create(radiologist=profile, country="US", region="NY", number="NY-1", status="expired",
                           expires_on=TODAY - timedelta(days=30))
    License.objects.create(radiologist=profile, country="US", region="CA", number="CA-1", status="verified",
                           expires_on=TODAY - timedelta(days=20))
    html = login(cast.radiologist).get(reverse("dashboard")).content.decode()
    states = dict(re.findall(r"<td>US-(\w\w)</td>.*?data-state=\"(\w+)\"", html, re.S))
    assert states == {"TX": "pending", "CO": "verified", "FL": "rejected", "NY": "expired", "CA": "expired"}
    assert "Number not found at the board" in html
    # The days to expiry stay next to the state, counted from today in the reader's own zone (a day more than
    # from UTC's date in the hours when Chicago is still on yesterday).
    local_today = timezone.localtime(timezone=ZoneInfo(cast.radiologist.time_zone)).date()
    assert f"{(TODAY + timedelta(days=300) - local_today).days} days left" in html
    assert f'<a href="{reverse("credentials_mine")}">My credentials</a>' in html
