"""The claim's rules as a reader and a center state them: what a won claim records (when, by whom, from where,
the full grant and its term, the center's notice), what each refusal says, and that an active assignment
already in the database refuses the claim as taken rather than failing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import AuditEvent, License, Notification
from core.errors import ApplicationError, NotFound
from marketplace.models import Assignment, Offer, ReadRequest, Status
from marketplace.services.offers import offer_claim, offer_decline
from marketplace.services.requests import read_request_cancel
from studies.models import StudyAccessGrant
from tests.marketplace.helpers import actor, make_radiologist, post

pytestmark = pytest.mark.django_db

CLAIMANT_IP = "198.51.100.23"
GRACE = timedelta(days=settings.READ_ACCESS_GRACE_DAYS)  # the reader's access outlives the deadline by this


def offer_of(profile, read_request) -> Offer:
    return Offer.objects.get(read_request=read_request, radiologist=profile)


def refusal(profile, offer) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        offer_claim(actor=actor(profile.user), offer=offer)
    assert refused.value.status_code == 409
    return refused.value


def test_a_won_claim_records_when_who_and_from_where(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    offered_at = offer_of(reader, read_request).updated_at
    at = timezone.now().replace(microsecond=0) - timedelta(seconds=30)
    request = RequestFactory().post("/", REMOTE_ADDR=CLAIMANT_IP)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer_of(reader, read_request), request=request,
                             at=at)
    stored = Assignment.objects.select_related("grant").get(pk=assignment.pk)
    assert (stored.read_request_id, stored.radiologist, stored.offer_id, stored.status) == (
        read_request.pk, reader, offer_of(reader, read_request).pk, "active")
    read_request.refresh_from_db()
    assert (read_request.status, read_request.assignee, read_request.assigned_at) == (Status.ASSIGNED, reader, at)
    mine, theirs = offer_of(reader, read_request), offer_of(other, read_request)
    assert (mine.status, mine.responded_at) == ("claimed", at)
    assert mine.updated_at > offered_at
    assert (theirs.status, theirs.responded_at) == ("withdrawn", at)
    grant = stored.grant
    assert (grant.level, grant.user, grant.reason) == ("full", cast.radiologist,
                                                       f"Assigned read request {read_request.public_id}")
    assert grant.expires_at == read_request.deadline + GRACE
    moved = AuditEvent.objects.get(action="read_request.assigned", object_id=str(read_request.public_id))
    granted = AuditEvent.objects.get(action="study.access_granted", extra__level="full")
    assert (moved.actor, moved.ip_address, granted.ip_address) == (cast.radiologist, CLAIMANT_IP, CLAIMANT_IP)
    notice = Notification.objects.get(user=cast.center_admin, title=f"Read claimed by {reader.name}")
    assert notice.body == f"Routine CT {ct_study.study_description}"
    assert notice.url == f"/reads/{read_request.public_id}/"


def test_the_full_grant_of_a_late_claim_runs_a_grace_period_from_now(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    ReadRequest.objects.filter(pk=read_request.pk).update(deadline=timezone.now() - timedelta(hours=1))
    before = timezone.now()
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer_of(reader, read_request))
    assert before + GRACE <= assignment.grant.expires_at <= timezone.now() + GRACE


def test_an_active_assignment_already_in_the_database_refuses_the_claim_as_taken(cast, ct_study, reader):
    """The partial unique index is the last guard: a claim that meets it is a 409, and nothing is half-written."""
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    Assignment.objects.create(read_request=read_request, radiologist=other)  # the request row still says open
    error = refusal(reader, offer_of(reader, read_request))
    assert (error.code, error.message, error.fields) == (
        "taken", "This read was already claimed by another radiologist.", {"status": ["assigned"]})
    read_request.refresh_from_db()
    assert (read_request.status, read_request.assignee) == (Status.OPEN, None)
    assert offer_of(reader, read_request).status == "open"
    assert not StudyAccessGrant.objects.filter(user=cast.radiologist, level="full").exists()


def test_someone_without_a_reader_profile_is_not_found(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    with pytest.raises(NotFound):
        offer_claim(actor=actor(cast.center_admin), offer=offer_of(reader, read_request))
    assert offer_of(reader, read_request).status == "open"


def test_each_refusal_says_why_in_words(cast, ct_study, reader):
    other = make_radiologist()
    read_request = post(cast.technologist, ct_study)
    offer_claim(actor=actor(other.user), offer=offer_of(other, read_request))
    assert refusal(reader, offer_of(reader, read_request)).message == \
        "This read was already claimed by another radiologist."
    cancelled = post(cast.technologist, ct_study)
    read_request_cancel(actor=actor(cast.center_admin), read_request=cancelled, reason="duplicate")
    error = refusal(reader, offer_of(reader, cancelled))
    assert (error.code, error.message, error.fields) == (
        "not_open", "This read request is cancelled: it can no longer be claimed.", {"status": ["cancelled"]})
    declined = post(cast.technologist, ct_study)
    offer_decline(actor=actor(cast.radiologist), offer=offer_of(reader, declined))
    error = refusal(reader, offer_of(reader, declined))
    assert (error.code, error.message, error.fields) == (
        "offer_declined", "This offer is declined.", {"status": ["declined"]})


def test_a_reader_who_lost_eligibility_is_told_every_reason_while_another_reader_still_qualifies(
        cast, ct_study, reader):
    make_radiologist()
    read_request = post(cast.technologist, ct_study)
    yesterday = timezone.now().date() - timedelta(days=1)
    License.objects.filter(radiologist=reader).update(expires_on=yesterday)
    reader.modalities = ["MR"]
    reader.save(update_fields=["modalities"])
    error = refusal(reader, offer_of(reader, read_request))
    reasons = error.fields["eligibility"]
    assert len(reasons) >= 2
    assert error.message == f"You can no longer take this read: {'; '.join(reasons)}."
    assert not Assignment.objects.exists()


def test_a_claim_is_judged_at_its_own_time(cast, ct_study, reader):
    """The simulated week replays claims at their own instant: the credentials valid then decide."""
    read_request = post(cast.technologist, ct_study)
    License.objects.filter(radiologist=reader).update(expires_on=timezone.now().date() - timedelta(days=1))
    at = timezone.now() - timedelta(days=3)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer_of(reader, read_request), at=at)
    assert (assignment.status, offer_of(reader, read_request).responded_at) == ("active", at)
