"""What follows a claim, as the reader and the center state it: starting, releasing (before and after the
deadline, with a long reason), reporting on time or late, and closing, each recorded where the center
and the ledger read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Notification
from core.errors import ApplicationError
from marketplace.models import Assignment, Audience, Offer, ReadRequest, Status
from marketplace.services.offers import (
    assignment_release,
    assignment_start,
    offer_claim,
    offer_decline,
    read_request_close,
    read_request_mark_reported,
    widen_due,
)
from tests.marketplace.helpers import actor, make_radiologist, post

pytestmark = pytest.mark.django_db


def claim(profile, read_request) -> Assignment:
    return offer_claim(actor=actor(profile.user), offer=Offer.objects.get(read_request=read_request,
                                                                          radiologist=profile))


def test_starting_is_stored_and_a_released_assignment_cannot_start(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    stored = Assignment.objects.get(pk=assignment.pk)
    assert stored.started_at is not None
    assert read_request.status_changes.get(to_status="in_progress").actor == cast.radiologist
    assignment_release(actor=actor(cast.radiologist), assignment=stored, reason="sick")
    with pytest.raises(ApplicationError) as refused:
        assignment_start(actor=actor(cast.radiologist), assignment=stored)
    assert (refused.value.code, refused.value.status_code, refused.value.message) == (
        "not_active", 409, "This assignment is released.")


def test_a_reopened_read_forgets_when_it_was_assigned_and_the_center_reads_why(cast, ct_study, reader):
    make_radiologist()
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason="family emergency")
    read_request.refresh_from_db()
    assert (read_request.status, read_request.assigned_at) == (Status.OPEN, None)
    reopened = read_request.status_changes.get(from_status="released", to_status="open")
    assert (reopened.actor, reopened.reason) == (None, "reopened after release")
    notice = Notification.objects.get(user=cast.center_admin, title=f"Read released by {reader.name}")
    assert (notice.body, notice.url) == ("family emergency", f"/reads/{read_request.public_id}/")
    stored = Assignment.objects.get(pk=assignment.pk)
    assert stored.ended_at is not None
    assert stored.updated_at >= stored.ended_at


def test_a_read_released_after_its_deadline_expires_instead_of_reopening(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    ReadRequest.objects.filter(pk=read_request.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    result = assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason="ran out of time")
    stored = ReadRequest.objects.get(pk=read_request.pk)
    assert result.status == stored.status == Status.EXPIRED
    expired = stored.status_changes.get(to_status="expired")
    assert (expired.from_status, expired.actor, expired.reason) == ("released", None, "released after its deadline")
    assert Offer.objects.get(read_request=read_request, radiologist=other).status == "withdrawn"


def test_a_long_release_reason_is_kept_to_500_characters(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    reason = "r" * 600
    assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason=reason)
    assert Assignment.objects.get(pk=assignment.pk).release_reason == reason[:500]
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    assert offer.decline_reason == f"released: {reason}"[:500]


def test_a_decline_records_when_and_keeps_500_characters_of_its_reason(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    before = timezone.now()
    offer_decline(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request),
                  reason="d" * 600)
    offer = Offer.objects.get(read_request=read_request)
    assert offer.decline_reason == "d" * 500
    assert offer.responded_at >= before


@pytest.mark.parametrize(("minutes_to_deadline", "on_time"), [(30, True), (-30, False)])
def test_reporting_completes_the_assignment_at_the_reported_time(cast, ct_study, reader, minutes_to_deadline,
                                                                 on_time):
    read_request = post(cast.technologist, ct_study)
    assignment_start(actor=actor(cast.radiologist), assignment=claim(reader, read_request))
    read_request.refresh_from_db()
    at = read_request.deadline - timedelta(minutes=minutes_to_deadline)
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist), at=at)
    stored = ReadRequest.objects.get(pk=read_request.pk)
    assert (stored.status, stored.reported_at) == (Status.REPORTED, at)
    assert stored.status_changes.get(to_status="reported").actor == cast.radiologist
    assignment = Assignment.objects.get(read_request=read_request)
    assert (assignment.status, assignment.ended_at, assignment.on_time, assignment.updated_at) == (
        "completed", at, on_time, at)


def test_closing_extends_only_the_live_grant_of_the_reader_who_reported(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    first = claim(reader, read_request)
    assignment_release(actor=actor(cast.radiologist), assignment=first, reason="conflict of interest")
    released_grant = Assignment.objects.select_related("grant").get(pk=first.pk).grant
    second = claim(other, read_request)
    assignment_start(actor=actor(other.user), assignment=second)
    read_request_mark_reported(read_request=read_request, actor=actor(other.user))
    read_request_close(read_request=read_request, actor=actor(cast.center_admin))
    stored = ReadRequest.objects.get(pk=read_request.pk)
    closed = stored.status_changes.get(to_status="closed")
    assert closed.actor == cast.center_admin
    live = Assignment.objects.select_related("grant").get(pk=second.pk).grant
    assert live.expires_at == stored.closed_at + timedelta(days=settings.READ_ACCESS_GRACE_DAYS)
    unchanged = Assignment.objects.select_related("grant").get(pk=first.pk).grant
    assert (unchanged.expires_at, unchanged.revoked_at) == (released_grant.expires_at, released_grant.revoked_at)


def test_a_request_open_to_everyone_or_sent_direct_is_never_due_to_widen(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    late = read_request.deadline - timedelta(minutes=1)  # far past a quarter of the time
    read_request.tier = 1
    assert widen_due(read_request, late) is False
    read_request.tier, read_request.audience = 0, Audience.DIRECT
    assert widen_due(read_request, late) is False
    read_request.audience = Audience.MARKETPLACE
    assert widen_due(read_request, late) is True
