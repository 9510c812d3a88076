"""Matching's hot path (posting, the clocks, offers) narrows the pool in SQL before the rule runs. It must
never change who is offered a read: for any world, the eligible readers and their order are exactly the
full match's. Worlds are drawn at random (seeded) over every attribute the narrowing reads, with the
boundaries (last day of a license, first day, a renewed license beside a lapsed one, capacity reached)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.credentials.eligibility import may_be_eligible
from accounts.models import License, RadiologistProfile
from marketplace.models import Assignment
from marketplace.services.matching import match
from tests.marketplace.helpers import a_monday_ahead, ingest_study, make_radiologist, post

CHICAGO = ZoneInfo("America/Chicago")
AT = a_monday_ahead()
LATE_EVENING = AT.replace(hour=20)  # already the next day in UTC
DAY = AT.date()


@pytest.fixture
def ct_study(cast):
    return ingest_study(cast.center, modality="CT")


def _license_dates(rng: random.Random) -> tuple[date | None, date]:
    choice = rng.choice(["current", "last_day", "lapsed", "first_day", "future", "no_issue_date", "utc_next_day"])
    return {
        "current": (date(2015, 1, 1), DAY + timedelta(days=300)),
        "last_day": (date(2015, 1, 1), DAY),
        "lapsed": (date(2015, 1, 1), DAY - timedelta(days=1)),
        "first_day": (DAY, DAY + timedelta(days=300)),
        "future": (DAY + timedelta(days=2), DAY + timedelta(days=300)),
        "no_issue_date": (None, DAY + timedelta(days=30)),
        "utc_next_day": (DAY + timedelta(days=1), DAY + timedelta(days=30)),
    }[choice]


def _random_world(cast, study, rng: random.Random, size: int) -> list[RadiologistProfile]:
    readers = []
    for _ in range(size):
        profile = make_radiologist(capacity=rng.choice([1, 2, 3]), verified=rng.random() > 0.15,
                                   modalities=rng.choice([("CT",), ("MR",), ("CT", "MR")]),
                                   regions=rng.choice([("TX",), ("TX", "FL"), ("FL",)]))
        licenses = License.objects.filter(radiologist=profile, region="TX")
        issued, expires = _license_dates(rng)
        licenses.update(issued_on=issued, expires_on=expires)
        if licenses.exists() and rng.random() < 0.3:  # a second license of the state: renewed or lapsed
            issued, expires = _license_dates(rng)
            License.objects.create(radiologist=profile, country="US", region="TX", number=f"R-{profile.pk}",
                                   issued_on=issued, expires_on=expires,
                                   status=rng.choice(["verified", "pending", "rejected", "expired"]))
        if rng.random() < 0.1:
            profile.user.is_active = False
            profile.user.save(update_fields=["is_active"])
        for _ in range(rng.choice([0, 0, 1, 2, 3])):  # active reads: some at or over capacity
            other = post(cast.technologist, study, publish=False)
            Assignment.objects.create(read_request=other, radiologist=profile)
        readers.append(profile)
    return readers


def _answer(result) -> list[tuple[int, int, tuple[str, ...], bool]]:
    return [(c.radiologist_id, c.rank, tuple(c.rank_reasons), c.on_shift) for c in result.candidates]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("at", [AT, LATE_EVENING], ids=["morning", "evening-next-day-in-utc"])
def test_the_hot_path_offers_exactly_whom_the_full_match_finds_eligible(cast, ct_study, seed, at):
    rng = random.Random(seed)
    _random_world(cast, ct_study, rng, size=24)
    rr = post(cast.technologist, ct_study, publish=False, deadline=at + timedelta(hours=3))
    full, hot = match(rr, at=at), match(rr, at=at, eligible_only=True)
    assert _answer(hot) == _answer(full)
    assert full.candidates, "the world drew nobody eligible: the comparison would prove nothing"
    assert len(hot.excluded) < len(full.excluded), "the narrowing dropped nobody: it would prove nothing"
    # What the narrowing dropped is exactly what the rule refuses for a license, an account or capacity.
    dropped = {c.radiologist_id for c in full.excluded} - {c.radiologist_id for c in hot.excluded}
    for candidate in full.excluded:
        if candidate.radiologist_id in dropped:
            assert any(r.startswith(("license", "no verified license", "account inactive", "at capacity"))
                       for r in candidate.reasons), candidate.reasons


def test_the_narrowing_keeps_a_renewed_license_beside_a_lapsed_one(cast):
    renewed = make_radiologist(license_expires=DAY - timedelta(days=5))
    License.objects.create(radiologist=renewed, country="US", region="TX", number="TX-renewed",
                           issued_on=DAY - timedelta(days=5), expires_on=DAY + timedelta(days=700), status="verified")
    lapsed_only = make_radiologist(license_expires=DAY - timedelta(days=5))
    kept = set(may_be_eligible(RadiologistProfile.objects.all(), jurisdiction="US-TX", at=AT)
               .values_list("pk", flat=True))
    assert renewed.pk in kept
    assert lapsed_only.pk not in kept


@pytest.mark.parametrize(("status", "kept"), [("verified", True), ("expired", True), ("pending", False),
                                              ("rejected", False)])
def test_the_narrowing_counts_a_license_by_its_verification_as_the_rule_does(cast, status, kept):
    profile = make_radiologist()
    License.objects.filter(radiologist=profile).update(status=status)
    found = may_be_eligible(RadiologistProfile.objects.filter(pk=profile.pk), jurisdiction="US-TX", at=AT).exists()
    assert found is kept


def test_the_narrowing_reads_the_jurisdiction_state_and_country(cast):
    texan, ontarian = make_radiologist(), make_radiologist(country="CA", regions=("ON",))
    pool = RadiologistProfile.objects.all()
    assert set(may_be_eligible(pool, jurisdiction="US-TX", at=AT)) == {texan}
    assert set(may_be_eligible(pool, jurisdiction="CA-ON", at=AT)) == {ontarian}


def test_a_reader_at_capacity_is_left_out_of_the_hot_path_but_explained_on_the_full(cast, ct_study):
    busy = make_radiologist(capacity=1)
    other = post(cast.technologist, ct_study, publish=False)
    Assignment.objects.create(read_request=other, radiologist=busy)
    rr = post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=3))
    assert busy.pk not in [c.radiologist_id for c in match(rr, at=AT, eligible_only=True).excluded]
    full = match(rr, at=AT)
    assert [c.reasons for c in full.excluded if c.radiologist.pk == busy.pk] == [["at capacity (1 of 1)"]]


def test_the_hot_path_costs_the_same_number_of_queries_for_3_and_30_radiologists(cast, ct_study):
    rr = post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=3))
    for _ in range(3):
        make_radiologist()

    def queries() -> int:
        rr.refresh_from_db()
        with CaptureQueriesContext(connection) as seen:
            match(rr, at=AT, eligible_only=True)
        return len(seen)

    few = queries()
    for n in range(27):
        make_radiologist(license_expires=DAY - timedelta(days=1) if n % 3 == 0 else None)
    assert queries() == few <= 8


@pytest.mark.parametrize(("issued", "expires", "kept"), [
    (date(2015, 1, 1), DAY, True),  # its last day
    (DAY, DAY + timedelta(days=9), True),  # its first day
    (None, DAY + timedelta(days=9), True),
    (DAY + timedelta(days=1), DAY + timedelta(days=9), False),  # not valid yet
    (date(2015, 1, 1), DAY - timedelta(days=1), False),  # lapsed yesterday
])
def test_the_narrowing_drops_licenses_whose_dates_do_not_cover_the_day(cast, issued, expires, kept):
    profile = make_radiologist()
    License.objects.filter(radiologist=profile).update(issued_on=issued, expires_on=expires)
    found = may_be_eligible(RadiologistProfile.objects.filter(pk=profile.pk), jurisdiction="US-TX", at=AT).exists()
    assert found is kept


def test_the_narrowing_drops_inactive_accounts(cast):
    gone = make_radiologist()
    gone.user.is_active = False
    gone.user.save(update_fields=["is_active"])
    assert not may_be_eligible(RadiologistProfile.objects.filter(pk=gone.pk), jurisdiction="US-TX", at=AT).exists()


@pytest.mark.parametrize("to", ["radiologist", "group"])
def test_a_direct_request_hot_path_considers_only_its_reader_or_group(cast, ct_study, to):
    chosen = make_radiologist(group=cast.group)
    others = [make_radiologist() for _ in range(3)]
    target = {"direct_radiologist": chosen} if to == "radiologist" else {"direct_group": cast.group}
    rr = post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=3), audience="direct",
              **target)
    full, hot = match(rr, at=AT), match(rr, at=AT, eligible_only=True)
    assert _answer(hot) == _answer(full)
    assert chosen.pk in [c.radiologist_id for c in hot.candidates]
    considered = {c.radiologist_id for c in hot.candidates + hot.excluded}
    assert not considered & {o.pk for o in others}
