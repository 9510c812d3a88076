"""Matching: who may read this request now, and for everyone else the exact reason a center reads when it asks
"why not Dr X?". One test per rule; then the ranking and the constant number of queries."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import MalpracticeInsurance, Organization
from marketplace.models import Assignment, Offer, ReadingHours, TimeOff
from marketplace.services.matching import match
from marketplace.services.offers import offer_claim
from marketplace.services.requests import center_settings
from tests.marketplace.helpers import a_monday_ahead, actor, ingest_study, make_radiologist, post, set_rate, signed_read

CHICAGO = ZoneInfo("America/Chicago")
AT = a_monday_ahead()  # a Monday morning, in the future of the test run
SOON = AT + timedelta(hours=2)


def reasons_of(result, profile) -> list[str]:
    found = [c for c in result.excluded + result.candidates if c.radiologist.pk == profile.pk]
    assert found, f"{profile} was not considered"
    return found[0].reasons


def request_for(cast, study, deadline=SOON, **fields):
    return post(cast.technologist, study, publish=False, deadline=deadline, **fields)


@pytest.fixture
def rr(cast, ct_study):
    return request_for(cast, ct_study)


def test_an_eligible_on_shift_reader_is_a_candidate_with_no_reason(cast, rr, reader):
    result = match(rr, at=AT)
    assert [c.radiologist for c in result.candidates] == [reader]
    assert result.excluded == []
    assert result.candidates[0].on_shift
    assert result.on_shift == result.candidates


# --- eligibility (accounts.credentials.eligibility at the moment asked) ------------------------------

def test_license_expired(cast, rr):
    lapsed_on = AT.date() - timedelta(days=6)
    lapsed = make_radiologist(license_expires=lapsed_on)
    assert reasons_of(match(rr, at=AT), lapsed) == [f"license US-TX expired {lapsed_on.isoformat()}"]


def test_license_still_valid_on_its_last_day(cast, rr):
    last_day = make_radiologist(license_expires=AT.date())
    assert reasons_of(match(rr, at=AT), last_day) == []


def test_no_license_of_the_jurisdiction(cast, rr):
    floridian = make_radiologist(regions=("FL",))
    assert floridian.pk not in [c.radiologist.pk for c in match(rr, at=AT).excluded]  # not even considered
    assert reasons_of(match(rr, at=AT, everyone=True), floridian) == ["no verified license for US-TX"]


def test_a_pending_license_does_not_count(cast, rr):
    pending = make_radiologist(verified=False)
    assert reasons_of(match(rr, at=AT), pending) == ["no verified license for US-TX"]


def test_does_not_read_the_modality(cast, rr):
    mr_only = make_radiologist(modalities=("MR",))
    assert reasons_of(match(rr, at=AT), mr_only) == ["does not read CT"]


def test_subspecialty_missing(cast, ct_study):
    rr = request_for(cast, ct_study, subspecialty="musculoskeletal")
    neuro = make_radiologist(subspecialties=("neuro",))
    msk = make_radiologist(subspecialties=("musculoskeletal",))
    result = match(rr, at=AT)
    assert reasons_of(result, neuro) == ["no subspecialty musculoskeletal"]
    assert reasons_of(result, msk) == []


def test_mammography_needs_mqsa(cast):
    rr = request_for(cast, ingest_study(cast.center, modality="MG"))
    without, qualified = make_radiologist(mqsa=False), make_radiologist(mqsa=True)
    result = match(rr, at=AT)
    assert reasons_of(result, without) == ["no MQSA qualification"]
    assert reasons_of(result, qualified) == []


def test_malpractice_not_covering_the_jurisdiction(cast, rr):
    canadian_cover = make_radiologist()
    MalpracticeInsurance.objects.filter(radiologist=canadian_cover).update(coverage_jurisdictions=["CA"])
    assert reasons_of(match(rr, at=AT), canadian_cover) == ["malpractice coverage does not include US-TX"]


def test_center_requires_privileges(cast, ct_study, reader):
    Organization.objects.filter(pk=cast.center.pk).update(requires_privileges=True)
    rr = request_for(cast, ct_study)
    rr.refresh_from_db()
    rr.center.refresh_from_db()
    assert reasons_of(match(rr, at=AT), reader) == ["no privileges at Lakeside Imaging"]


def test_inactive_account(cast, rr):
    gone = make_radiologist()
    gone.user.is_active = False
    gone.user.save(update_fields=["is_active"])
    assert reasons_of(match(rr, at=AT), gone) == ["account inactive"]


def test_priority_not_taken(cast, ct_study):
    rr = request_for(cast, ct_study, priority="stat")
    routine_only = make_radiologist(priorities=("routine",))
    assert reasons_of(match(rr, at=AT), routine_only) == ["does not take STAT reads"]


# --- availability -------------------------------------------------------------------------------------

def afternoon_reader(**kwargs):
    """On shift Monday 13:00-21:00 in Chicago only."""
    profile = make_radiologist(hours="none", **kwargs)
    ReadingHours.objects.create(radiologist=profile, weekday=0, starts=time(13), ends=time(21))
    return profile


def test_off_shift_until_the_next_start_in_the_readers_zone(cast, rr):
    later = afternoon_reader()
    assert reasons_of(match(rr, at=AT), later) == ["off shift until 13:00 America/Chicago"]


def test_able_to_finish_before_the_deadline_is_a_candidate_ranked_after_on_shift(cast, ct_study, reader):
    rr = request_for(cast, ct_study, deadline=AT + timedelta(hours=6))  # 16:00: 13:00 + an hour fits
    later = afternoon_reader(name="Aaron Early")  # first by name, yet after the reader on shift
    result = match(rr, at=AT)
    assert [c.radiologist for c in result.candidates] == [reader, later]
    assert not result.candidates[1].on_shift
    assert result.candidates[1].available_from == AT + timedelta(hours=3)
    assert result.candidates[1].rank_reasons[0] == "on shift from 13:00 America/Chicago"
    assert result.on_shift == result.candidates[:1]


def test_next_shift_too_late_by_a_minute_for_the_read_allowance(cast, ct_study):
    rr = request_for(cast, ct_study, deadline=AT + timedelta(hours=4) - timedelta(minutes=1))  # 13:59
    later = afternoon_reader()
    assert reasons_of(match(rr, at=AT), later) == ["off shift until 13:00 America/Chicago"]
    exactly = request_for(cast, ingest_study(cast.center), deadline=AT + timedelta(hours=4))  # 14:00
    assert reasons_of(match(exactly, at=AT), later) == []


def test_on_time_off(cast, rr):
    away = make_radiologist()
    TimeOff.objects.create(radiologist=away, starts_at=AT - timedelta(hours=1), ends_at=AT + timedelta(days=1))
    assert reasons_of(match(rr, at=AT), away) == ["on time off until Tue 10:00 America/Chicago"]


def test_time_off_covering_every_window_of_the_week_ahead_says_so(cast, rr):
    away = make_radiologist()
    TimeOff.objects.create(radiologist=away, starts_at=AT - timedelta(hours=1), ends_at=AT + timedelta(days=9))
    assert reasons_of(match(rr, at=AT), away) == ["on time off through the coming week"]


def test_no_reading_hours(cast, rr):
    never = make_radiologist(hours="none")
    assert reasons_of(match(rr, at=AT), never) == ["no reading hours entered"]


# --- capacity, conflicts, audience, price ---------------------------------------------------------------

def test_at_capacity_with_real_active_assignments(cast, rr):
    busy = make_radiologist(capacity=2)
    for n in range(2):
        other = post(cast.technologist, ingest_study(cast.center, patient=30 + n))
        offer_claim(actor=actor(busy.user), offer=Offer.objects.get(read_request=other, radiologist=busy))
    assert Assignment.objects.filter(radiologist=busy, status="active").count() == 2
    assert reasons_of(match(rr, at=AT), busy) == ["at capacity (2 of 2)"]


def test_one_below_capacity_is_a_candidate_with_its_load(cast, rr):
    busy = make_radiologist(capacity=2)
    other = post(cast.technologist, ingest_study(cast.center, patient=30))
    offer_claim(actor=actor(busy.user), offer=Offer.objects.get(read_request=other, radiologist=busy))
    (candidate,) = match(rr, at=AT).candidates
    assert candidate.radiologist == busy
    assert candidate.load == 1
    assert candidate.rank_reasons[-1] == "load 1 of 2"


def test_overread_never_goes_to_the_original_reader_nor_their_group(cast, ct_study, reader):
    original = signed_read(cast.technologist, ct_study, cast.radiologist)
    colleague = make_radiologist(group=cast.group)
    outsider = make_radiologist()
    overread = request_for(cast, ct_study, kind="overread", original_request=original)
    assert overread.original_reader == reader
    result = match(overread, at=AT)
    assert reasons_of(result, reader) == ["original reader of this study"]
    assert reasons_of(result, colleague) == ["in the original reader's group (Night Hawk Readers)"]
    assert reasons_of(result, outsider) == []


def test_blocked_by_the_center(cast, rr, reader):
    center_settings(cast.center).blocked_radiologists.add(reader)
    assert reasons_of(match(rr, at=AT), reader) == ["blocked by Lakeside Imaging"]


def test_direct_to_another_radiologist(cast, ct_study, reader):
    chosen = make_radiologist()
    rr = request_for(cast, ct_study, audience="direct", direct_radiologist=chosen)
    result = match(rr, at=AT)
    assert reasons_of(result, reader) == ["sent directly to another radiologist"]
    assert [c.radiologist for c in result.candidates] == [chosen]


def test_direct_to_another_group(cast, ct_study, reader):
    outsider = make_radiologist()
    rr = request_for(cast, ct_study, audience="direct", direct_group=cast.group)
    result = match(rr, at=AT)
    assert reasons_of(result, outsider) == ["sent directly to another group"]
    assert [c.radiologist for c in result.candidates] == [reader]


def test_a_direct_reader_without_a_license_is_still_explained(cast, ct_study):
    floridian = make_radiologist(regions=("FL",))
    rr = request_for(cast, ct_study, audience="direct", direct_radiologist=floridian)
    assert reasons_of(match(rr, at=AT), floridian) == ["no verified license for US-TX"]


def test_minimum_rate_above_quote(cast, rr):
    quote = rr.quoted_cents  # whatever the price table quotes: the rule compares with it
    dear, equal = make_radiologist(), make_radiologist()
    set_rate(dear, "CT", "routine", quote + 1)
    set_rate(equal, "CT", "routine", quote)
    set_rate(equal, "CT", "stat", 99900)  # another priority does not count
    result = match(rr, at=AT)
    assert reasons_of(result, dear) == [f"minimum rate {quote + 1} cents above quote {quote}"]
    assert reasons_of(result, equal) == []


def test_every_failing_rule_is_listed(cast, ct_study):
    rr = request_for(cast, ct_study, priority="stat")
    hopeless = make_radiologist(modalities=("MR",), priorities=("routine",), hours="none")
    center_settings(cast.center).blocked_radiologists.add(hopeless)
    assert reasons_of(match(rr, at=AT), hopeless) == [
        "does not read CT", "does not take STAT reads", "blocked by Lakeside Imaging", "no reading hours entered"]


# --- ranking --------------------------------------------------------------------------------------------

def finished_reads(cast, profile, on_time: list[bool]) -> None:
    filler = post(cast.technologist, ingest_study(cast.center, patient=40), publish=False)
    Assignment.objects.bulk_create([Assignment(read_request=filler, radiologist=profile, status="completed",
                                               on_time=flag) for flag in on_time])


def active_reads(cast, profile, n: int) -> None:
    for _ in range(n):
        filler = post(cast.technologist, ingest_study(cast.center, patient=41), publish=False)
        Assignment.objects.create(read_request=filler, radiologist=profile, status="active")


def test_ranking_preferred_first_then_on_time_rate_then_load(cast, rr):
    preferred = make_radiologist(name="Zed Preferred")
    punctual = make_radiologist(name="Yan Punctual")
    punctual_busy = make_radiologist(name="Abe Punctual Busy", capacity=4)
    new = make_radiologist(name="Bea New")
    late = make_radiologist(name="Cal Late")
    center_settings(cast.center).preferred_radiologists.add(preferred)
    finished_reads(cast, preferred, [False, False])
    finished_reads(cast, punctual, [True, True])
    finished_reads(cast, punctual_busy, [True, True])
    active_reads(cast, punctual_busy, 1)
    finished_reads(cast, late, [True, False])
    result = match(rr, at=AT)
    assert [c.radiologist for c in result.candidates] == [preferred, punctual, punctual_busy, new, late]
    assert [c.rank for c in result.candidates] == [1, 2, 3, 4, 5]
    assert result.candidates[0].rank_reasons == [
        "preferred by Lakeside Imaging", "on shift now", "on time 0 % (0 of 2)", "no peer reviews yet",
        "rank score 0.30 = 2/3 × on time 0 % + 1/3 × quality 90 %", "load 0 of 3"]
    assert result.candidates[2].rank_reasons == [
        "on shift now", "on time 100 % (2 of 2)", "no peer reviews yet",
        "rank score 0.97 = 2/3 × on time 100 % + 1/3 × quality 90 %", "load 1 of 4"]
    assert result.candidates[3].rank_reasons == [
        "on shift now", "no finished reads yet", "no peer reviews yet",
        "rank score 0.90 = 2/3 × on time 90 % (assumed) + 1/3 × quality 90 %", "load 0 of 3"]
    assert result.candidates[4].rank_reasons[1] == "on time 50 % (1 of 2)"


def test_load_is_weighed_against_capacity(cast, rr):
    roomy = make_radiologist(name="Zoe Roomy", capacity=4)
    tight = make_radiologist(name="Amy Tight", capacity=2)
    active_reads(cast, roomy, 1)
    active_reads(cast, tight, 1)
    assert [c.radiologist for c in match(rr, at=AT).candidates] == [roomy, tight]


def test_a_preferred_reader_of_the_request_ranks_first(cast, ct_study):
    other = make_radiologist(name="Amy Other")
    named = make_radiologist(name="Zoe Named")
    rr = request_for(cast, ct_study, audience="preferred", preferred_radiologists=[named])
    result = match(rr, at=AT)
    assert [c.radiologist for c in result.candidates] == [named, other]
    assert result.candidates[0].preferred
    assert not result.candidates[1].preferred


def test_a_member_of_a_preferred_group_ranks_first(cast, ct_study, reader):
    other = make_radiologist(name="Aaron Outside")
    rr = request_for(cast, ct_study, audience="preferred", preferred_groups=[cast.group])
    assert [c.radiologist for c in match(rr, at=AT).candidates] == [reader, other]


# --- constant queries -------------------------------------------------------------------------------------

def queries_of(rr, at) -> int:
    with CaptureQueriesContext(connection) as seen:
        match(rr, at=at)
    return len(seen)


@pytest.mark.parametrize("modality", ["CT", "MG"])
def test_match_costs_the_same_number_of_queries_for_3_and_30_radiologists(cast, modality):
    Organization.objects.filter(pk=cast.center.pk).update(requires_privileges=True)
    cast.center.refresh_from_db()
    settings = center_settings(cast.center)
    rr = request_for(cast, ingest_study(cast.center, modality=modality), kind="primary")
    rr.refresh_from_db()
    readers = [make_radiologist(mqsa=True) for _ in range(3)]
    settings.preferred_radiologists.add(readers[0])
    TimeOff.objects.create(radiologist=readers[1], starts_at=AT, ends_at=AT + timedelta(hours=1))
    few = queries_of(rr, AT)
    readers += [make_radiologist(mqsa=n % 2 == 0) for n in range(27)]
    for profile in readers[3:10]:
        TimeOff.objects.create(radiologist=profile, starts_at=AT, ends_at=AT + timedelta(hours=1))
    rr.refresh_from_db()
    many = queries_of(rr, AT)
    assert len(match(rr, at=AT).excluded) == 30
    assert few == many
    assert many <= 8


def test_the_excluded_are_listed_by_name(cast, rr):
    names = ["Zoe Last", "Abe First", "Mia Middle"]
    for name in names:
        make_radiologist(name=name, modalities=("MR",))
    assert [c.name for c in match(rr, at=AT).excluded] == sorted(names)
