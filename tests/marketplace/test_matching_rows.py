"""Matching reads plain rows, not model instances: the weekly hours come as one text per radiologist, the JSON
lists as text decoded once, the credentials as tuples, and the hot path's candidates carry ids. These tests
hold that reading to the models' own answer (``schedule.availability`` over the ``ReadingHours`` rows), keep
the hot path equal to the full match on richer random worlds (every credential kind, conflicts, preference,
rates, time off) and pin the number of queries."""

from __future__ import annotations

import random
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest

from accounts.models import FacilityPrivilege, MalpracticeInsurance, MqsaQualification, RadiologistProfile
from marketplace import schedule
from marketplace.coverage_models import ExtraShift
from marketplace.models import Assignment, ReadingHours, ReadRequest, TimeOff
from marketplace.services.matching import load_profiles, match
from marketplace.services.requests import center_settings
from tests.marketplace.helpers import (
    a_monday_ahead,
    ingest_study,
    make_radiologist,
    post,
    set_rate,
    shift_from,
    signed_read,
)

CHICAGO = ZoneInfo("America/Chicago")
AT = a_monday_ahead()  # a Monday morning
DAY = AT.date()
ZONES = ["America/Chicago", "America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata",
         "Australia/Sydney", "Pacific/Honolulu"]


def _random_hours(profile: RadiologistProfile, rng: random.Random) -> None:
    """Zero to four weekly windows: overnight ones, whole days, minutes and seconds that are not round."""
    ReadingHours.objects.filter(radiologist=profile).delete()
    for _ in range(rng.choice([0, 1, 2, 4])):
        starts = time(rng.randrange(24), rng.choice([0, 15, 30, 45]), rng.choice([0, 0, 30]),
                      rng.choice([0, 0, 250000]))
        ends = rng.choice([time(0, 0), time(rng.randrange(24), rng.choice([0, 30])), starts])
        ReadingHours.objects.create(radiologist=profile, weekday=rng.randrange(7), starts=starts, ends=ends)


def _reread(read_request: ReadRequest) -> ReadRequest:
    """The request as a view or the clock reads it (the center loaded with it)."""
    return ReadRequest.objects.select_related("center").get(pk=read_request.pk)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_weekly_hours_read_as_text_give_the_availability_of_the_rows(cast, ct_study, seed):
    rng = random.Random(seed)
    readers = []
    for _ in range(30):
        profile = make_radiologist(zone=rng.choice(ZONES), hours="none")
        _random_hours(profile, rng)
        if rng.random() < 0.2:
            starts = AT + timedelta(hours=rng.randint(-30, 30))
            TimeOff.objects.create(radiologist=profile, starts_at=starts, ends_at=starts + timedelta(hours=20))
        readers.append(profile)
    rr = post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=rng.choice([2, 20])))
    result = match(rr, at=AT)
    by_id = {c.radiologist_id: c for c in result.candidates + result.excluded}
    on_shift_seen = off_shift_seen = 0
    for profile in readers:
        hours = list(ReadingHours.objects.filter(radiologist=profile).values_list("weekday", "starts", "ends"))
        off = list(TimeOff.objects.filter(radiologist=profile).values_list("starts_at", "ends_at"))
        state = schedule.availability(hours, profile.home_time_zone, off, AT)
        candidate = by_id[profile.pk]
        assert candidate.on_shift == state.on_shift, (hours, profile.home_time_zone)
        if state.on_shift:
            on_shift_seen += 1
            continue
        off_shift_seen += 1
        if candidate.eligible:
            assert candidate.available_from == state.next_start
        elif not state.has_hours:
            assert candidate.reasons == ["no reading hours entered"]
        elif state.next_start is not None:
            label = schedule.local_label(state.next_start, profile.home_time_zone, AT)
            assert candidate.reasons == [f"{'on time off' if state.on_time_off else 'off shift'} until {label}"]
        else:
            assert candidate.reasons == ["on time off through the coming week" if state.on_time_off
                                         else "no reading hours in the coming week"]
    assert on_shift_seen, "nobody on shift: the comparison would prove little"
    assert off_shift_seen, "everyone on shift: the comparison would prove little"


@pytest.mark.parametrize("eligible_only", [True, False], ids=["hot-path", "explain"])
def test_readers_sharing_a_schedule_keep_their_own_time_off_and_extra_shifts(cast, ct_study, eligible_only):
    """Readers of one zone and one weekly schedule share one availability answer in a call, but not those with
    time off or extra shifts of their own: each is held to ``schedule.availability`` over their own rows."""
    on_now = [make_radiologist(hours="none") for _ in range(4)]
    later = [make_radiologist(hours="none") for _ in range(4)]
    for profile in on_now:
        shift_from(profile, AT - timedelta(hours=1), hours=4)
    for profile in later:
        shift_from(profile, AT + timedelta(hours=5), hours=2)
    for profile, hours in ((on_now[1], 2), (on_now[2], 3)):  # time off from now, ending at different hours
        TimeOff.objects.create(radiologist=profile, starts_at=AT - timedelta(minutes=30),
                               ends_at=AT + timedelta(hours=hours))
    for profile, starts in ((later[1], -1), (later[2], 1)):  # an extra shift now, one in an hour
        ExtraShift.objects.create(radiologist=profile, starts_at=AT + timedelta(hours=starts),
                                  ends_at=AT + timedelta(hours=starts + 2))
    rr = post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=12))
    result = match(_reread(rr), at=AT, eligible_only=eligible_only)
    by_id = {c.radiologist_id: c for c in result.candidates + result.excluded}
    for profile in on_now + later:
        hours = list(ReadingHours.objects.filter(radiologist=profile).values_list("weekday", "starts", "ends"))
        off = list(TimeOff.objects.filter(radiologist=profile).values_list("starts_at", "ends_at"))
        extra = list(ExtraShift.objects.filter(radiologist=profile).values_list("starts_at", "ends_at"))
        state = schedule.availability(hours, profile.home_time_zone, off, AT, extra)
        candidate = by_id[profile.pk]
        assert candidate.on_shift == state.on_shift, profile.pk
        if not state.on_shift and candidate.eligible:  # next on shift in time for the deadline
            assert candidate.available_from == state.next_start, profile.pk
        elif not state.on_shift:
            label = schedule.local_label(state.next_start, profile.home_time_zone, AT)
            assert candidate.reasons == [f"on time off until {label}"], profile.pk
    assert [by_id[p.pk].on_shift for p in on_now] == [True, False, False, True]
    assert by_id[on_now[1].pk].eligible
    assert not by_id[on_now[2].pk].eligible
    assert [by_id[p.pk].on_shift for p in later] == [False, True, False, False]
    assert by_id[later[2].pk].available_from == AT + timedelta(hours=1)  # the extra shift, before the weekly one


def _rich_world(cast, rng: random.Random, size: int) -> None:
    """Readers drawn over every attribute the rule and matching read, beyond the hot-path narrowing's own; each
    attribute fails for about one reader in eight, so that some are eligible and every reason shows up."""
    study = ingest_study(cast.center, modality="CT", patient=9)

    def fails() -> bool:
        return rng.random() < 0.12

    for _ in range(size):
        profile = make_radiologist(
            zone=rng.choice(ZONES), hours="none" if fails() else "always", mqsa=not fails(),
            capacity=rng.choice([1, 2, 3]), modalities=("CT",) if fails() else rng.choice([("MG",), ("CT", "MG")]),
            subspecialties=rng.choice([("breast",), ("neuro", "breast"), ("body",)]),
            priorities=("stat",) if fails() else ("stat", "urgent", "routine"),
            group=cast.group if fails() else None)
        if not ReadingHours.objects.filter(radiologist=profile).exists():
            _random_hours(profile, rng)
        if fails():
            MalpracticeInsurance.objects.filter(radiologist=profile).update(**rng.choice([
                {"coverage_jurisdictions": ["US-TX"]}, {"coverage_jurisdictions": ["CA"]},
                {"expires_on": DAY - timedelta(days=1)}, {"status": "pending"}]))
        if fails():
            MqsaQualification.objects.filter(radiologist=profile).update(
                **rng.choice([{"exams_last_24_months": 100}, {"expires_on": DAY - timedelta(days=2)}]))
        granted_on, expires_on = DAY - timedelta(days=30), rng.choice([None, DAY])  # the last day counts
        if fails():
            granted_on, expires_on = rng.choice([(DAY + timedelta(days=1), None),
                                                 (granted_on, DAY - timedelta(days=1))])
        if not fails():
            FacilityPrivilege.objects.create(radiologist=profile, center=cast.center, granted_on=granted_on,
                                             expires_on=expires_on, status="suspended" if fails() else "granted")
        if rng.random() < 0.5:
            set_rate(profile, "MG", "routine", 10**6 if rng.random() < 0.25 else 100)
        if fails():
            center_settings(cast.center).blocked_radiologists.add(profile)
        if rng.random() < 0.2:
            center_settings(cast.center).preferred_radiologists.add(profile)
        for _ in range(rng.choice([0, 0, 1, 2])):
            Assignment.objects.create(read_request=post(cast.technologist, study, publish=False),
                                      radiologist=profile, status="active" if fails() else "completed",
                                      on_time=rng.choice([True, False]))
        if fails():
            starts = AT + timedelta(hours=rng.randint(-10, 10))
            TimeOff.objects.create(radiologist=profile, starts_at=starts, ends_at=starts + timedelta(hours=12))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_hot_path_equals_the_full_match_on_worlds_with_every_credential_kind(cast, seed):
    rng = random.Random(seed)
    make_radiologist(user=cast.radiologist, mqsa=True)  # reads the original; their group is in conflict
    mammogram = ingest_study(cast.center, modality="MG", patient=3)
    original = signed_read(cast.technologist, mammogram, cast.radiologist)
    cast.center.requires_privileges = True
    cast.center.save(update_fields=["requires_privileges"])
    _rich_world(cast, rng, size=40)
    overread = post(cast.technologist, mammogram, publish=False, deadline=AT + timedelta(hours=6), kind="overread",
                    original_request=original)
    full, hot = match(_reread(overread), at=AT), match(_reread(overread), at=AT, eligible_only=True)
    answer = [(c.radiologist_id, c.rank, tuple(c.rank_reasons), c.on_shift, c.available_from, c.preferred)
              for c in full.candidates]
    assert [(c.radiologist_id, c.rank, tuple(c.rank_reasons), c.on_shift, c.available_from, c.preferred)
            for c in hot.candidates] == answer
    assert full.candidates, "nobody eligible: the comparison would prove nothing"
    reasons = full.reasons_seen()
    for seen in ("no privileges at", "MQSA", "malpractice", "original reader", "minimum rate", "blocked by"):
        assert any(seen in reason for reason in reasons), (seen, reasons)
    # Everyone the hot path leaves out gets the full match's reasons (the group's name aside: not loaded there).
    full_reasons = {c.radiologist_id: c.reasons for c in full.excluded}
    for candidate in hot.excluded:
        assert [r.split(" (")[0] for r in candidate.reasons] == [
            r.split(" (")[0] for r in full_reasons[candidate.radiologist_id]]


def test_hot_path_candidates_carry_ids_and_their_profiles_load_in_one_query(cast, ct_study, reader,
                                                                             django_assert_num_queries):
    others = [make_radiologist() for _ in range(4)]
    rr = post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=3))
    hot = match(_reread(rr), at=AT, eligible_only=True)
    assert {c.radiologist_id for c in hot.candidates} == {p.pk for p in [reader, *others]}
    with pytest.raises(LookupError):
        hot.candidates[0].radiologist  # noqa: B018 - the hot path builds no profile
    with django_assert_num_queries(1):
        load_profiles(hot.candidates)
        names = {c.radiologist.user.email for c in hot.candidates}
    assert names == {p.user.email for p in [reader, *others]}
    assert match(_reread(rr), at=AT).candidates[0].radiologist.user.email in names  # the full match loads them


@pytest.mark.parametrize("eligible_only", [True, False], ids=["hot-path", "explain"])
def test_queries_stay_constant_with_every_credential_kind(cast, eligible_only, django_assert_max_num_queries):
    """The most a match costs: a mammogram (MQSA) at a center that requires privileges, 3 then 30 readers."""
    cast.center.requires_privileges = True
    cast.center.save(update_fields=["requires_privileges"])
    mammogram = ingest_study(cast.center, modality="MG", patient=4)
    rr = post(cast.technologist, mammogram, publish=False, deadline=AT + timedelta(hours=3))

    def readers(n: int) -> None:
        for _ in range(n):
            profile = make_radiologist(mqsa=True)
            FacilityPrivilege.objects.create(radiologist=profile, center=cast.center, granted_on=DAY)

    # Hot path, its pool read afresh (this transaction wrote the pool's tables, so no snapshot stands): the
    # version, the profiles, malpractice, MQSA, time off, then the request's lists, privileges and caseload
    # (test_matching_pool.py counts a snapshot's calls); explain: profiles, licenses, malpractice, MQSA,
    # privileges, caseload, time off.
    most = 8 if eligible_only else 7
    readers(3)
    asked = _reread(rr)
    with django_assert_max_num_queries(most):
        few = match(asked, at=AT, eligible_only=eligible_only)
    readers(27)
    asked = _reread(rr)
    with django_assert_max_num_queries(most):
        many = match(asked, at=AT, eligible_only=eligible_only)
    assert (len(few.candidates), len(many.candidates)) == (3, 30)
