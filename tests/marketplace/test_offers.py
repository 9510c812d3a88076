"""Offers and what follows them: publishing to the current tier with preview grants, the winner's full grant and
everyone else's withdrawal on claim, decline, release back to the others, cancel, report and close."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Notification
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace.models import Assignment, Offer, ReadRequest, Status
from marketplace.services.matching import match
from marketplace.services.offers import (
    GRACE,
    assignment_release,
    assignment_start,
    offer_claim,
    offer_decline,
    read_request_close,
    read_request_mark_reported,
)
from marketplace.services.requests import center_settings, read_request_cancel
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post, shift_from


def offers_by_reader(read_request) -> dict:
    return {o.radiologist_id: o for o in Offer.objects.filter(read_request=read_request).select_related("grant")}


def claim(profile, read_request) -> Assignment:
    return offer_claim(actor=actor(profile.user), offer=Offer.objects.get(read_request=read_request,
                                                                          radiologist=profile))


# --- publishing -------------------------------------------------------------------------------------------

def test_publish_offers_every_eligible_reader_with_a_preview_grant_until_the_deadline(cast, ct_study, reader):
    other = make_radiologist()
    make_radiologist(modalities=("MR",))
    make_radiologist(regions=("FL",))
    read_request = post(cast.technologist, ct_study)
    offers = offers_by_reader(read_request)
    assert set(offers) == {reader.pk, other.pk}
    assert read_request.tier == 1
    for profile in (reader, other):
        offer = offers[profile.pk]
        assert offer.status == "open"
        assert offer.tier == 1
        assert offer.rank in (1, 2)
        assert offer.grant.user == profile.user
        assert offer.grant.study == ct_study
        assert offer.grant.level == "preview"
        assert offer.grant.expires_at == read_request.deadline
        assert offer.grant.revoked_at is None
    notice = Notification.objects.get(user=reader.user, title__startswith="New Routine read offered")
    assert notice.url == "/worklist/"


def test_the_centers_preferred_readers_are_offered_first(cast, ct_study, reader):
    other = make_radiologist()
    center_settings(cast.center).preferred_radiologists.add(other)
    read_request = post(cast.technologist, ct_study)
    assert read_request.tier == 0
    assert set(offers_by_reader(read_request)) == {other.pk}


def test_a_preferred_audience_starts_with_its_named_readers_only(cast, ct_study, reader):
    named = make_radiologist()
    read_request = post(cast.technologist, ct_study, audience="preferred", preferred_radiologists=[named])
    assert read_request.tier == 0
    assert set(offers_by_reader(read_request)) == {named.pk}


def test_a_direct_request_goes_to_its_one_reader(cast, ct_study, reader):
    chosen = make_radiologist()
    center_settings(cast.center).preferred_radiologists.add(reader)
    read_request = post(cast.technologist, ct_study, audience="direct", direct_radiologist=chosen)
    assert read_request.tier == 1
    assert set(offers_by_reader(read_request)) == {chosen.pk}


def test_stat_offers_go_only_to_readers_on_shift(cast, ct_study, reader):
    later = make_radiologist(hours="none")
    shift_from(later, timezone.now() + timedelta(minutes=15))  # can still finish: a candidate, not on shift
    read_request = post(cast.technologist, ct_study, priority="stat")
    assert set(offers_by_reader(read_request)) == {reader.pk}
    routine = post(cast.technologist, ct_study)
    assert set(offers_by_reader(routine)) == {reader.pk, later.pk}


# --- claim -----------------------------------------------------------------------------------------------

def test_the_winner_gets_full_access_and_every_other_offer_is_withdrawn(cast, ct_study, reader):
    others = [make_radiologist(), make_radiologist()]
    read_request = post(cast.technologist, ct_study)
    before = offers_by_reader(read_request)
    assignment = claim(reader, read_request)
    read_request.refresh_from_db()
    assert read_request.status == Status.ASSIGNED
    assert read_request.assignee == reader
    assert assignment.status == "active"
    assert assignment.radiologist == reader
    grant = assignment.grant
    assert grant.level == "full"
    assert grant.user == reader.user
    assert grant.revoked_at is None
    assert grant.expires_at >= read_request.deadline + GRACE - timedelta(seconds=5)
    after = offers_by_reader(read_request)
    assert after[reader.pk].status == "claimed"
    assert after[reader.pk].responded_at is not None
    assert all(after[p.pk].responded_at is not None for p in others)
    assert after[reader.pk].grant.revoked_at is not None
    for profile in others:
        assert after[profile.pk].status == "withdrawn"
        assert after[profile.pk].grant.revoked_at is not None
        assert before[profile.pk].grant_id == after[profile.pk].grant_id
    for user in (cast.center_admin, cast.technologist):
        assert Notification.objects.filter(user=user, title=f"Read claimed by {reader.name}").count() == 1
    history = list(read_request.status_changes.values_list("from_status", "to_status", "actor"))
    assert history[-1] == ("open", "assigned", cast.radiologist.pk)


def test_someone_else_cannot_claim_or_decline_my_offer(cast, ct_study, reader):
    make_radiologist()
    read_request = post(cast.technologist, ct_study)
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    for user in (cast.center_admin, Offer.objects.exclude(pk=offer.pk).get(read_request=read_request)
                 .radiologist.user):
        with pytest.raises(NotFound):
            offer_claim(actor=actor(user), offer=offer)
        with pytest.raises(NotFound):
            offer_decline(actor=actor(user), offer=offer)


def test_decline_ends_the_preview_and_keeps_the_reason(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    offer_decline(actor=actor(cast.radiologist), offer=offer, reason="  not my field ")
    offer.refresh_from_db()
    offer.grant.refresh_from_db()
    assert offer.status == "declined"
    assert offer.decline_reason == "not my field"
    assert offer.grant.revoked_at is not None
    with pytest.raises(ApplicationError) as again:
        offer_decline(actor=actor(cast.radiologist), offer=offer)
    assert again.value.status_code == 409
    assert again.value.code == "offer_declined"


# --- start, release -----------------------------------------------------------------------------------------

def test_start_moves_to_in_progress_once(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request.refresh_from_db()
    assert read_request.status == Status.IN_PROGRESS
    assert assignment.started_at is not None
    assert read_request.status_changes.filter(to_status="in_progress").count() == 1


def test_release_reopens_the_request_for_the_others_but_not_the_releaser(cast, ct_study, reader):
    others = [make_radiologist(), make_radiologist()]
    read_request = post(cast.technologist, ct_study)
    # Another read, offered to the same readers: the first of the others takes it, so the others' order
    # (by current load) is no longer the one they were first offered this read in.
    other_read = post(cast.technologist, ingest_study(cast.center, patient=9))
    claim(others[0], other_read)
    first_ranks = {o.radiologist_id: o.rank for o in Offer.objects.filter(read_request=read_request)}
    assignment = claim(reader, read_request)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    released_at = timezone.now()
    assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason="family emergency")
    read_request.refresh_from_db()
    assignment.refresh_from_db()
    assert read_request.status == Status.OPEN
    assert read_request.assignee is None
    assert [(c.from_status, c.to_status) for c in read_request.status_changes.all()][-3:] == [
        ("assigned", "in_progress"), ("in_progress", "released"), ("released", "open")]
    assert read_request.status_changes.get(to_status="released").reason == "family emergency"
    assert assignment.status == "released"
    assert assignment.release_reason == "family emergency"
    assignment.grant.refresh_from_db()
    assert assignment.grant.revoked_at is not None
    offers = offers_by_reader(read_request)
    assert offers[reader.pk].status == "declined"
    ranks = {c.radiologist_id: c.rank for c in match(read_request, eligible_only=True).candidates}
    for profile in others:
        offer = offers[profile.pk]
        assert offer.status == "open"
        assert offer.grant.user == profile.user  # each reopened offer with its own reader's new preview
        assert offer.grant.revoked_at is None
        assert offer.grant.level == "preview"
        assert offer.rank == ranks[profile.pk]  # ranked again
        assert offer.updated_at >= released_at
    assert Notification.objects.filter(user=cast.center_admin, title__startswith="Read released by").count() == 1
    assert [ranks[p.pk] for p in others] != [first_ranks[p.pk] for p in others]  # the test means something
    for profile in others:  # told once of this read again, and not of the other read they were offered
        assert Notification.objects.filter(user=profile.user, title__startswith="New Routine read offered",
                                           created_at__gte=released_at).count() == 1
    # The others may claim it now; the releaser may not.
    assert claim(others[0], read_request).status == "active"


def test_release_needs_a_reason_and_an_active_assignment(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    with pytest.raises(ApplicationError) as no_reason:
        assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason=" ")
    assert "reason" in no_reason.value.fields
    assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason="sick")
    with pytest.raises(ApplicationError) as twice:
        assignment_release(actor=actor(cast.radiologist), assignment=assignment, reason="sick")
    assert twice.value.code == "not_active"


# --- cancel, report, close --------------------------------------------------------------------------------

def test_cancel_of_an_assigned_request_revokes_the_assignees_grant(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="ordered twice")
    read_request.refresh_from_db()
    assignment.refresh_from_db()
    assignment.grant.refresh_from_db()
    assert read_request.status == Status.CANCELLED
    assert read_request.cancel_reason == "ordered twice"
    assert assignment.status == "cancelled"
    assert assignment.grant.revoked_at is not None
    assert Notification.objects.filter(user=cast.radiologist, title="A read you were assigned was cancelled").exists()


def test_cancel_of_an_open_request_withdraws_its_offers(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    read_request_cancel(actor=actor(cast.technologist), read_request=read_request, reason="not needed")
    offer = Offer.objects.select_related("grant").get(read_request=read_request)
    assert offer.status == "withdrawn"
    assert offer.grant.revoked_at is not None


def test_cancel_after_the_report_is_refused(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment_start(actor=actor(cast.radiologist), assignment=claim(reader, read_request))
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist))
    with pytest.raises(ApplicationError) as refused:
        read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="changed mind")
    assert refused.value.status_code == 409
    assert "is reported" in refused.value.message
    assert ReadRequest.objects.get(pk=read_request.pk).status == Status.REPORTED


def test_cancel_needs_a_reason_and_a_poster_of_the_center(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    with pytest.raises(ApplicationError) as no_reason:
        read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="")
    assert no_reason.value.fields.keys() == {"reason"}
    with pytest.raises(PermissionDenied):
        read_request_cancel(actor=actor(cast.center_viewer), read_request=read_request, reason="x")
    with pytest.raises(NotFound):
        read_request_cancel(actor=actor(cast.other_admin), read_request=read_request, reason="x")
    assert ReadRequest.objects.get(pk=read_request.pk).status == Status.OPEN


def test_report_records_on_time_and_close_ends_access_after_the_grace(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    assignment = claim(reader, read_request)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist))
    assignment.refresh_from_db()
    assert assignment.status == "completed"
    assert assignment.on_time is True
    read_request_close(read_request=read_request, actor=None)
    read_request.refresh_from_db()
    assignment.grant.refresh_from_db()
    assert read_request.status == Status.CLOSED
    assert assignment.grant.expires_at == read_request.closed_at + GRACE
