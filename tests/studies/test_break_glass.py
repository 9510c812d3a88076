"""Break-glass emergency access (reliability.md, "Access"): platform operations only, after a fresh
second factor; a reason; one study; time-limited; the start and the stop audited; the center told."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import policy as accounts_policy
from accounts.models import AuditEvent, Notification
from core.errors import ApplicationError, NotFound
from core.timefmt import local_time
from studies import break_glass, synthetic
from studies.models import StudyAccessGrant
from studies.tasks import close_expired_break_glass
from tests.factories import MembershipFactory
from tests.studies.test_pages import ingest, spec

REASON = "STAT head CT for a trauma patient, no assignee answers the page"


@pytest.fixture
def study(cast):
    return ingest(cast.center, synthetic.ct_series(spec(0, accession="LKS26112801"), slices=2, size=32))


def actor(user):
    return accounts_policy.actor_for_user(user)


def start(cast, study, *, user=None, reason=REASON, value=None):
    return break_glass.break_glass_start(actor=actor(user or cast.platform_staff), organization=study.organization,
                                         study=value or study.study_instance_uid, reason=reason)


def events(action, **extra):
    return AuditEvent.objects.filter(action=action, **extra)


def test_operations_open_one_study_for_an_hour_with_the_reason_audited_and_the_center_told(cast, study, settings):
    settings.BREAK_GLASS_MINUTES = 60
    grant = start(cast, study, value="LKS26112801")  # the accession number a support call quotes works too
    assert grant.study == study
    assert grant.level == "full"
    assert grant.kind == StudyAccessGrant.Kind.EMERGENCY
    assert timedelta(minutes=59) < grant.expires_at - timezone.now() <= timedelta(minutes=60)
    [event] = events("study.break_glass_started")
    assert event.actor == cast.platform_staff
    assert event.organization == cast.center
    assert event.object_id == study.study_instance_uid
    assert event.reason == REASON
    [note] = Notification.objects.filter(user=cast.center_admin)
    assert "Emergency access" in note.title
    assert REASON in note.body
    assert note.url == reverse("study_detail", args=[study.public_id])
    assert not Notification.objects.filter(user=cast.technologist).exists()  # admins only


def test_with_it_the_study_page_dicomweb_and_the_viewer_open_and_they_close_when_it_ends(cast, study, login):
    client = login(cast.platform_staff)
    metadata = f"/dicomweb/studies/{study.study_instance_uid}/metadata"
    assert client.get(metadata).status_code == 404
    viewer = reverse("viewer_app_route", args=["viewer"]) + f"?StudyInstanceUIDs={study.study_instance_uid}"
    assert client.get(viewer).status_code == 404
    grant = start(cast, study)
    assert client.get(reverse("study_detail", args=[study.public_id])).status_code == 200
    assert client.get(metadata).status_code == 200
    assert client.get(viewer).status_code in (200, 503)  # let in (503: this checkout has no viewer installed)
    assert events("study.viewer_opened", actor=cast.platform_staff).exists() or \
        client.get(viewer).status_code == 503
    break_glass.break_glass_end(actor=actor(cast.platform_staff), grant=grant)
    assert client.get(viewer).status_code == 404
    assert client.get(metadata).status_code == 404
    assert client.get(reverse("study_detail", args=[study.public_id])).status_code == 404
    [ended] = events("study.break_glass_ended")
    assert ended.extra["how"] == "ended"
    assert ended.actor == cast.platform_staff


@pytest.mark.parametrize("principal", ["center_admin", "technologist", "radiologist", "other_admin", "patient"])
def test_nobody_but_platform_operations_can_break_the_glass(cast, study, principal):
    with pytest.raises(NotFound):
        start(cast, study, user=cast.users[principal])
    assert not StudyAccessGrant.objects.exists()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"reason": "urgent"}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"value": "NOPE-404"}, "study"),
    ({"value": "2.25.1234"}, "study"),
])
def test_a_short_reason_or_an_unknown_study_is_refused_naming_the_field(cast, study, kwargs, field):
    with pytest.raises(ApplicationError) as refused:
        start(cast, study, **kwargs)
    assert field in refused.value.fields
    assert not StudyAccessGrant.objects.exists()
    assert not events("study.break_glass_started").exists()


def test_another_centers_study_cannot_be_reached_through_this_center(cast, study):
    theirs = ingest(cast.other_center, synthetic.ct_series(spec(1), slices=1, size=16))
    with pytest.raises(ApplicationError) as refused:
        start(cast, study, value=theirs.study_instance_uid)
    assert "study" in refused.value.fields


def test_a_double_submit_opens_nothing_new(cast, study):
    first = start(cast, study)
    assert start(cast, study) == first
    assert StudyAccessGrant.objects.count() == 1
    assert events("study.break_glass_started").count() == 1


def test_expiry_ends_the_access_by_the_clock_and_the_task_records_the_stop_once(cast, study, login):
    grant = start(cast, study)
    StudyAccessGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = login(cast.platform_staff)
    assert client.get(f"/dicomweb/studies/{study.study_instance_uid}/metadata").status_code == 404  # before the task
    assert close_expired_break_glass() == 1
    assert close_expired_break_glass() == 0
    [ended] = events("study.break_glass_ended")
    assert ended.extra["how"] == "expired"
    assert ended.actor is None
    grant.refresh_from_db()
    assert grant.revoked_at is not None


def test_one_cannot_end_someone_elses_emergency_access(cast, study):
    colleague = MembershipFactory(user__email="ops2@example.test", organization=cast.platform,
                                  roles=["admin"]).user
    grant = start(cast, study, user=colleague)
    with pytest.raises(NotFound):
        break_glass.break_glass_end(actor=actor(cast.platform_staff), grant=grant)
    with pytest.raises(NotFound):
        break_glass.break_glass_get(actor=actor(cast.platform_staff), public_id=grant.public_id)
    grant.refresh_from_db()
    assert grant.revoked_at is None


# --- the page ------------------------------------------------------------------------------------------

def test_the_page_asks_for_a_fresh_second_factor_first(cast, login):
    client = login(cast.platform_staff, fresh_mfa=False)
    response = client.get(reverse("study_break_glass"))
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]


def test_the_page_opens_lists_and_ends_an_emergency_access(cast, study, login):
    client = login(cast.platform_staff)
    url = reverse("study_break_glass")
    response = client.post(url, {"organization": cast.center.public_id, "study": study.study_instance_uid,
                                 "reason": "short"})
    assert response.status_code == 400
    assert "at least 20 characters" in response.content.decode()
    response = client.post(url, {"organization": cast.center.public_id, "study": study.study_instance_uid,
                                 "reason": REASON}, follow=True)
    page = response.content.decode()
    assert "Emergency access open until" in page
    assert f"StudyInstanceUIDs={study.study_instance_uid}" in page  # straight to the viewer
    grant = StudyAccessGrant.objects.get()
    response = client.post(reverse("study_break_glass_end", args=[grant.public_id]), follow=True)
    assert "Emergency access ended." in response.content.decode()
    grant.refresh_from_db()
    assert grant.revoked_at is not None


def test_the_center_sees_the_break_glass_in_the_studys_audit_trail(cast, study, login):
    start(cast, study)
    page = login(cast.center_admin).get(reverse("study_detail", args=[study.public_id])).content.decode()
    assert "<code>study.break_glass_started</code>" in page
    assert REASON in page


def test_anonymous_is_sent_to_sign_in(study):
    response = Client().get(reverse("study_break_glass"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# --- times in the reader's zone ------------------------------------------------------------------------

def test_the_message_and_the_table_give_the_end_in_the_viewers_zone_with_its_abbreviation(cast, study, login):
    cast.platform_staff.time_zone = "Asia/Tokyo"  # no summer time: always JST, UTC+9
    cast.platform_staff.save(update_fields=["time_zone"])
    response = login(cast.platform_staff).post(reverse("study_break_glass"), {
        "organization": cast.center.public_id, "study": study.study_instance_uid, "reason": REASON}, follow=True)
    page = response.content.decode()
    expires = StudyAccessGrant.objects.get().expires_at
    tokyo = timezone.localtime(expires, ZoneInfo("Asia/Tokyo"))
    assert f"Emergency access open until {tokyo:%H:%M} JST." in page
    assert f"<td class=\"nowrap\">{tokyo:%H:%M} JST</td>" in page  # the table under it agrees
    assert f"{expires:%H:%M} UTC" not in page


def test_each_center_admin_is_told_the_end_in_their_own_zone(cast, study):
    cast.center_admin.time_zone = "Asia/Tokyo"
    cast.center_admin.save(update_fields=["time_zone"])
    second = MembershipFactory(user__email="admin2@example.test", user__time_zone="Asia/Kolkata",
                               organization=cast.center, roles=["admin"]).user
    grant = start(cast, study)
    tokyo = Notification.objects.get(user=cast.center_admin).body
    kolkata = Notification.objects.get(user=second).body
    assert f"until {local_time(grant.expires_at, 'Asia/Tokyo')}. " in tokyo
    assert "JST" in tokyo
    assert f"until {local_time(grant.expires_at, 'Asia/Kolkata')}. " in kolkata
    assert "IST" in kolkata
    assert "UTC" not in tokyo + kolkata
