"""Posting a read request: the deadline from the center's turnaround, the checks that refuse bad input with the
field named, the locked quote, the idempotency key, and the STAT that nobody on shift can take."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import Notification
from billing.models import Price
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace import pricing
from marketplace.models import CenterSettings, ReadRequest, Status
from marketplace.services.requests import PostData, read_request_post
from studies.models import Study
from tests.marketplace.helpers import a_monday_ahead, actor, ingest_study, make_radiologist, post, signed_read

NOW = a_monday_ahead()  # in the future of the test run


def post_at(cast, study, *, now=NOW, user=None, key=None, body=None, **fields):
    return read_request_post(actor=actor(user or cast.technologist), center=study.organization,
                             data=PostData(study=study, publish=False, **fields), now=now,
                             idempotency_key=key, idempotency_body=body)


def refused(callable_, *args, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        callable_(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(("priority", "kind", "minutes"), [
    ("stat", "primary", 60), ("urgent", "primary", 240), ("routine", "primary", 1440),
    ("routine", "second_opinion", 2880)])
def test_deadline_defaults_to_domain_turnaround(cast, ct_study, priority, kind, minutes):
    read_request, created = post_at(cast, ct_study, priority=priority, kind=kind)
    assert created
    assert read_request.deadline == NOW + timedelta(minutes=minutes)


@pytest.mark.parametrize(("priority", "kind", "minutes"), [
    ("stat", "primary", 30), ("urgent", "primary", 90), ("routine", "overread", 600),
    ("urgent", "second_opinion", 1000)])
def test_deadline_follows_the_centers_own_turnaround(cast, ct_study, priority, kind, minutes):
    CenterSettings.objects.create(center=cast.center, stat_minutes=30, urgent_minutes=90, routine_minutes=600,
                                  second_opinion_minutes=1000)
    fields = {}
    if kind == "overread":
        make_radiologist(user=cast.radiologist)
        fields["original_request"] = signed_read(cast.technologist, ct_study, cast.radiologist)
    read_request, _ = post_at(cast, ct_study, priority=priority, kind=kind, **fields)
    assert read_request.deadline == NOW + timedelta(minutes=minutes)


def test_an_explicit_deadline_is_kept_and_one_in_the_past_refused(cast, ct_study):
    later = NOW + timedelta(hours=5)
    assert post_at(cast, ct_study, deadline=later)[0].deadline == later
    for past in (NOW, NOW - timedelta(minutes=1)):
        error = refused(post_at, cast, ct_study, deadline=past)
        assert error.status_code == 400
        assert "deadline" in error.fields


def test_a_study_without_an_imaging_modality_is_refused_naming_study(cast):
    study = ingest_study(cast.center, modality="CT")
    Study.objects.filter(pk=study.pk).update(modalities_in_study="SR")
    study.refresh_from_db()
    error = refused(post_at, cast, study)
    assert error.status_code == 400
    assert list(error.fields) == ["study"]
    assert "modality" in error.message
    assert not ReadRequest.objects.exists()


def test_a_study_without_jurisdiction_is_refused_naming_study(cast, ct_study):
    Study.objects.filter(pk=ct_study.pk).update(jurisdiction_country="", jurisdiction_region="")
    ct_study.refresh_from_db()
    error = refused(post_at, cast, ct_study)
    assert list(error.fields) == ["study"]
    assert "jurisdiction" in error.message


def test_another_centers_study_is_not_found(cast):
    theirs = ingest_study(cast.other_center)
    with pytest.raises(NotFound):
        read_request_post(actor=actor(cast.technologist), center=cast.center, data=PostData(study=theirs))


def test_another_tenant_naming_our_center_and_study_is_not_found(cast, ct_study):
    with pytest.raises(NotFound):
        read_request_post(actor=actor(cast.other_admin), center=cast.center, data=PostData(study=ct_study))
    assert not ReadRequest.objects.exists()


def test_only_admins_and_technologists_post(cast, ct_study):
    assert post_at(cast, ct_study, user=cast.center_admin)[1]
    with pytest.raises(PermissionDenied):
        post_at(cast, ct_study, user=cast.center_viewer)


@pytest.mark.parametrize(("field", "value"), [
    ("kind", "poem"), ("priority", "whenever"), ("audience", "friends"), ("subspecialty", "astrology")])
def test_an_unknown_choice_names_its_field(cast, ct_study, field, value):
    assert field in refused(post_at, cast, ct_study, **{field: value}).fields


def test_an_overread_of_an_unreported_request_is_refused_not_signed(cast, ct_study, reader):
    open_read = post(cast.technologist, ct_study)
    error = refused(post_at, cast, ct_study, kind="overread", original_request=open_read)
    assert error.code == "not_signed"
    assert "original_request" in error.fields
    assert "is open" in error.message
    assert refused(post_at, cast, ct_study, kind="overread").code == "required"


def test_an_overread_of_a_signed_read_names_its_original_reader(cast, ct_study, reader):
    original = signed_read(cast.technologist, ct_study, cast.radiologist)
    overread, _ = post_at(cast, ct_study, kind="overread", original_request=original)
    assert overread.original_reader == reader
    assert overread.original_request == original
    with pytest.raises(NotFound):  # the original must be of the same study
        post_at(cast, ingest_study(cast.center), kind="overread", original_request=original)


def test_audience_needs_its_readers(cast, ct_study, reader):
    assert "direct_radiologist" in refused(post_at, cast, ct_study, audience="direct").fields
    both = refused(post_at, cast, ct_study, audience="direct", direct_radiologist=reader, direct_group=cast.group)
    assert "direct_radiologist" in both.fields
    assert "direct_group" in refused(post_at, cast, ct_study, audience="direct", direct_group=cast.center).fields
    assert refused(post_at, cast, ct_study, audience="preferred").code == "required"


def test_comparison_studies_are_the_same_patients_other_studies_here(cast, ct_study):
    earlier = ingest_study(cast.center, patient=1)
    read_request, _ = post_at(cast, ct_study, comparison_studies=[earlier])
    assert list(read_request.comparison_studies.all()) == [earlier]
    for wrong in (ingest_study(cast.center, patient=2), ct_study, ingest_study(cast.other_center, patient=1)):
        assert "comparison_studies" in refused(post_at, cast, ct_study, comparison_studies=[wrong]).fields


def test_the_quote_is_locked_at_posting(cast, ct_study):
    read_request, _ = post_at(cast, ct_study, priority="stat")  # a Monday morning in Texas: the day band
    assert (read_request.quoted_cents, read_request.currency) == (3700, "USD")
    assert read_request.fee_basis_points == 1500
    assert read_request.contract is None
    Price.objects.filter(price_list__currency="USD", modality="CT", priority="stat", band="day").update(cents=10100)
    read_request.refresh_from_db()
    assert read_request.quoted_cents == 3700
    assert post_at(cast, ingest_study(cast.center), priority="stat")[0].quoted_cents == 10100
    night = post_at(cast, ingest_study(cast.center), priority="stat", now=NOW.replace(hour=23))[0]
    assert night.quoted_cents == pricing.quote_for(center=cast.center, modalities=["CT"], priority="stat",
                                                   kind="primary", at=NOW.replace(hour=23)).cents == 4400


def test_an_idempotency_key_replayed_with_the_same_body_returns_the_first_request(cast, ct_study):
    body = {"study": ct_study.study_instance_uid, "priority": "urgent"}
    first, created = post_at(cast, ct_study, priority="urgent", key="abc-1", body=body)
    again, created_again = post_at(cast, ct_study, priority="urgent", key="abc-1", body=dict(body))
    assert created
    assert not created_again
    assert again.pk == first.pk
    assert ReadRequest.objects.count() == 1


def test_an_idempotency_key_replayed_with_another_body_is_422(cast, ct_study):
    post_at(cast, ct_study, key="abc-1", body={"priority": "urgent"})
    error = refused(post_at, cast, ct_study, key="abc-1", body={"priority": "stat"})
    assert error.status_code == 422
    assert error.code == "idempotency_key_reused"
    assert ReadRequest.objects.count() == 1
    other_key, created = post_at(cast, ct_study, key="abc-2", body={"priority": "stat"})
    assert created
    assert ReadRequest.objects.count() == 2


def test_the_same_key_at_another_center_is_its_own(cast, ct_study):
    make_radiologist(regions=("FL",))
    mine, _ = post_at(cast, ct_study, key="k", body={"a": 1})
    theirs, created = post_at(cast, ingest_study(cast.other_center), user=cast.other_admin, key="k", body={"a": 1})
    assert created
    assert theirs.pk != mine.pk


def test_a_stat_with_nobody_on_shift_is_flagged_and_operations_told(cast, ct_study):
    make_radiologist(hours="none")
    read_request = post(cast.technologist, ct_study, priority="stat")
    read_request.refresh_from_db()
    assert read_request.status == Status.OPEN
    assert read_request.no_on_shift_reader
    title = "STAT read with no eligible reader on shift"
    assert Notification.objects.filter(user=cast.platform_staff, title=title).count() == 1
    assert Notification.objects.filter(user=cast.center_admin, title=title).count() == 1
    assert read_request.offers.count() == 0


def test_a_stat_with_a_reader_on_shift_is_not_flagged(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study, priority="stat")
    read_request.refresh_from_db()
    assert not read_request.no_on_shift_reader
    assert read_request.offers.count() == 1
    assert not Notification.objects.filter(user=cast.platform_staff).exists()


def test_an_urgent_read_with_nobody_on_shift_is_not_flagged(cast, ct_study):
    make_radiologist(hours="none")
    read_request = post(cast.technologist, ct_study, priority="urgent")
    read_request.refresh_from_db()
    assert not read_request.no_on_shift_reader


def test_posting_opens_the_request_and_records_the_move(cast, ct_study, reader):
    read_request = post(cast.technologist, ct_study)
    change = read_request.status_changes.get()
    assert (change.from_status, change.to_status, change.actor) == ("draft", "open", cast.technologist)
    assert read_request.posted_by == cast.technologist
    assert read_request.jurisdiction == "US-TX"
    assert read_request.modalities == ["CT"]
