"""The critical-result pages: the center's highlighted list with Acknowledge, operations' dashboard across
centers, who reaches each (404 for the foreign, 403 for a center person who may not act), the navigation."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from reporting.models import CriticalResult
from reporting.services.critical import critical_acknowledge, critical_escalate_due
from tests.marketplace.helpers import actor
from tests.reporting.critical_helpers import another_critical, sign_with_critical

pytestmark = pytest.mark.django_db

LIST = reverse("critical_result_list")
OPS = reverse("ops_critical_results")


@pytest.fixture
def critical(cast, draft):
    return sign_with_critical(cast, draft, category=1, finding="Acute subdural hematoma")


def _ack_url(critical) -> str:
    return reverse("critical_result_acknowledge", args=[critical.public_id])


@pytest.mark.parametrize(("principal", "status"), [
    ("center_admin", 200), ("technologist", 200), ("center_viewer", 200),
    ("center_finance", 404), ("radiologist", 404), ("platform_staff", 404), ("patient", 404),
])
def test_the_centers_list_is_for_its_people_by_role(cast, critical, login, principal, status):
    response = login(getattr(cast, principal)).get(LIST)
    assert response.status_code == status
    if status == 200:
        assert "Acute subdural hematoma" in response.content.decode()


def test_another_centers_people_see_their_own_list_without_ours(cast, critical, login):
    response = login(cast.other_admin).get(LIST)
    assert response.status_code == 200
    assert "Acute subdural hematoma" not in response.content.decode()


def test_anonymous_is_sent_to_sign_in(critical, client):
    assert client.get(LIST).status_code == 302
    assert client.post(_ack_url(critical)).status_code == 302
    assert CriticalResult.objects.get(pk=critical.pk).acknowledged_at is None


def test_open_results_come_first_highlighted_category_1_first_with_their_age(cast, critical, login):
    urgent = another_critical(cast, category=2, finding="Appendicitis without perforation")
    CriticalResult.objects.filter(pk=urgent.pk).update(created_at=critical.created_at - timedelta(hours=1))
    done = another_critical(cast, category=1, finding="Aortic dissection")
    critical_acknowledge(actor=actor(cast.technologist), critical=done)
    CriticalResult.objects.filter(pk=critical.pk).update(created_at=critical.created_at - timedelta(minutes=42))

    body = login(cast.technologist).get(LIST).content.decode()
    positions = [body.index(text) for text in ("Acute subdural hematoma", "Appendicitis without perforation",
                                                "Aortic dissection")]
    assert positions == sorted(positions)  # category 1 open, category 2 open, then the acknowledged one
    open_part = body[:body.index('id="critical-acknowledged"')]
    assert open_part.count(">Acknowledge</button>") == 2
    row = re.search(rf'<tr class="mk-row (\S+)" id="critical-{critical.public_id}">', body)
    assert row is not None
    assert row.group(1) == "mk-row-late"  # category 1: the strongest highlight
    assert "42\xa0minutes</strong> ago" in body
    assert "by " + cast.technologist.display_name in body
    assert "not acknowledged within 30 minutes alerts the center's admins, within 60 minutes" in body


def test_a_viewer_sees_the_list_without_the_button(cast, critical, login):
    body = login(cast.center_viewer).get(LIST).content.decode()
    assert "Acute subdural hematoma" in body
    assert ">Acknowledge</button>" not in body


def test_times_are_shown_in_the_viewers_zone(cast, critical, login):
    cast.technologist.time_zone = "Asia/Tokyo"
    cast.technologist.save(update_fields=["time_zone"])
    body = login(cast.technologist).get(LIST).content.decode()
    local = critical.created_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{local:%H:%M} JST" in body


def test_finding_and_contact_are_escaped(cast, draft, login):
    sign_with_critical(cast, draft, finding='<script>alert("x")</script> bleed')
    body = login(cast.center_admin).get(LIST).content.decode()
    assert '<script>alert("x")</script>' not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; bleed" in body


def test_acknowledge_from_the_list_goes_back_with_a_message_and_an_audit_row(cast, critical, login):
    client = login(cast.technologist)
    response = client.post(_ack_url(critical), {"next": LIST})
    assert response.status_code == 302
    assert response["Location"] == LIST
    row = CriticalResult.objects.get(pk=critical.pk)
    assert row.acknowledged_by == cast.technologist
    assert AuditEvent.objects.filter(action="critical_result.acknowledged", object_id=str(critical.public_id),
                                     actor=cast.technologist).count() == 1
    body = client.get(LIST).content.decode()
    assert "Critical result acknowledged." in body
    assert "No critical result awaits acknowledgement." in body
    # A second click says who was first and changes nothing.
    again = login(cast.center_admin)
    again.post(_ack_url(critical))
    assert f"Already acknowledged by {cast.technologist.display_name}" in again.get(LIST).content.decode()
    assert CriticalResult.objects.get(pk=critical.pk).acknowledged_by == cast.technologist


def test_acknowledge_never_redirects_off_site(cast, critical, login):
    response = login(cast.technologist).post(_ack_url(critical), {"next": "https://evil.example/"})
    assert response["Location"] == LIST


@pytest.mark.parametrize(("principal", "status"), [
    ("center_viewer", 403), ("platform_staff", 403),  # may see it, may not acknowledge
    ("center_finance", 404), ("other_admin", 404), ("radiologist", 404), ("patient", 404),
])
def test_acknowledge_is_refused_to_everyone_else(cast, critical, login, principal, status):
    response = login(getattr(cast, principal)).post(_ack_url(critical))
    assert response.status_code == status
    assert CriticalResult.objects.get(pk=critical.pk).acknowledged_at is None


def test_acknowledge_is_post_only_and_a_missing_result_is_404(cast, critical, login):
    client = login(cast.technologist)
    assert client.get(_ack_url(critical)).status_code == 405
    assert client.post(reverse("critical_result_acknowledge",
                               args=["00000000-0000-4000-8000-000000000000"])).status_code == 404


@pytest.mark.parametrize(("principal", "status"), [
    ("platform_staff", 200), ("center_admin", 404), ("technologist", 404), ("radiologist", 404),
    ("center_finance", 404), ("patient", 404),
])
def test_the_operations_dashboard_is_for_operations(cast, critical, login, principal, status):
    assert login(getattr(cast, principal)).get(OPS).status_code == status


def test_the_operations_dashboard_lists_open_results_with_age_and_level(cast, critical, login):
    done = another_critical(cast, category=2, finding="Aortic dissection")
    critical_acknowledge(actor=actor(cast.technologist), critical=done)
    critical_escalate_due(now=critical.created_at + timedelta(minutes=61))
    body = login(cast.platform_staff).get(OPS).content.decode()
    assert "Acute subdural hematoma" in body
    assert "Lakeside Imaging" in body
    assert "Level 2" in body
    assert "Aortic dissection" not in body  # acknowledged: not open


def test_the_lists_cost_the_same_queries_for_one_result_or_many(cast, critical, login):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(client, url):
        with CaptureQueriesContext(connection) as seen:
            assert client.get(url).status_code == 200
        return len(seen)

    center, ops = login(cast.technologist), login(cast.platform_staff)
    count(center, LIST), count(ops, OPS)  # the first request of a session checks its second factor once
    one = (count(center, LIST), count(ops, OPS))
    for n in range(3):
        added = another_critical(cast, category=1 + n % 3, finding=f"Finding {n}")
        if n == 0:
            critical_acknowledge(actor=actor(cast.center_admin), critical=added)
    assert (count(center, LIST), count(ops, OPS)) == one


def test_the_navigation_links_each_list_for_its_people(cast, critical, login):
    center_nav = login(cast.technologist).get(reverse("dashboard")).content.decode()
    assert f'href="{LIST}"' in center_nav
    assert f'href="{OPS}"' not in center_nav
    ops_nav = login(cast.platform_staff).get(reverse("dashboard")).content.decode()
    assert f'href="{OPS}"' in ops_nav
    assert f'href="{LIST}"' not in ops_nav
    reader_nav = login(cast.radiologist).get(reverse("dashboard")).content.decode()
    assert f'href="{LIST}"' not in reader_nav
    assert f'href="{OPS}"' not in reader_nav
