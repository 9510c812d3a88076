"""Matching's smaller rules, each as a center or a reader would state it (issue 22: the gaps a mutation run of
marketplace/services/matching.py found): the read allowance per priority, a minimum rate per modality, who a
request names as preferred, a contract's preferred readers, a reader's name and group on the why-not page, and
readers who share hours but not a time zone."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership
from billing.models import Contract
from marketplace.models import ReadingHours
from marketplace.services.matching import match
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.marketplace.helpers import a_monday_ahead, make_radiologist, post, set_rate, shift_from

AT = a_monday_ahead()  # Monday 10:00 in Chicago

pytestmark = pytest.mark.django_db


def request_for(cast, study, *, deadline=AT + timedelta(hours=2), **fields):
    return post(cast.technologist, study, publish=False, deadline=deadline, **fields)


def reasons_of(result, profile) -> list[str]:
    found = [c for c in result.excluded + result.candidates if c.radiologist_id == profile.pk]
    assert found, f"{profile} was not considered"
    return found[0].reasons


def candidate_of(result, profile):
    return next(c for c in result.candidates if c.radiologist_id == profile.pk)


# --- the read allowance: how long before the deadline a reader off shift must start -------------------------

def test_a_stat_needs_half_an_hour_of_the_readers_next_shift(cast, ct_study):
    starting_soon = make_radiologist(hours="none")
    shift_from(starting_soon, AT + timedelta(minutes=10))
    fits = request_for(cast, ct_study, priority="stat", deadline=AT + timedelta(minutes=40))
    assert reasons_of(match(fits, at=AT), starting_soon) == []
    assert candidate_of(match(fits, at=AT), starting_soon).available_from == AT + timedelta(minutes=10)
    too_tight = request_for(cast, ct_study, priority="stat", deadline=AT + timedelta(minutes=39))
    assert reasons_of(match(too_tight, at=AT), starting_soon) == ["off shift until 10:10 America/Chicago"]


def test_an_urgent_read_needs_an_hour_of_the_readers_next_shift(cast, ct_study):
    later = make_radiologist(hours="none")
    shift_from(later, AT + timedelta(hours=2))
    fits = request_for(cast, ct_study, priority="urgent", deadline=AT + timedelta(hours=3))
    assert reasons_of(match(fits, at=AT), later) == []
    too_tight = request_for(cast, ct_study, priority="urgent", deadline=AT + timedelta(hours=3) - timedelta(minutes=1))
    assert reasons_of(match(too_tight, at=AT), later) == ["off shift until 12:00 America/Chicago"]


# --- minimum rates ---------------------------------------------------------------------------------------

def test_a_minimum_rate_for_another_modality_does_not_refuse_this_read(cast, ct_study):
    rr = request_for(cast, ct_study)
    mr_dear = make_radiologist()
    set_rate(mr_dear, "MR", "routine", rr.quoted_cents + 50_000)
    assert reasons_of(match(rr, at=AT), mr_dear) == []


# --- who the request names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("eligible_only", [False, True], ids=["explain", "hot-path"])
def test_a_reader_named_on_another_request_is_not_preferred_on_this_one(cast, ct_study, eligible_only):
    named_elsewhere, named_here = make_radiologist(name="Ann Elsewhere"), make_radiologist(name="Zed Here")
    request_for(cast, ct_study, audience="preferred", preferred_radiologists=[named_elsewhere])
    rr = request_for(cast, ct_study, audience="preferred", preferred_radiologists=[named_here])
    result = match(rr, at=AT, eligible_only=eligible_only)
    assert candidate_of(result, named_here).preferred
    assert not candidate_of(result, named_elsewhere).preferred
    assert [c.radiologist_id for c in result.candidates][0] == named_here.pk


@pytest.mark.parametrize("eligible_only", [False, True], ids=["explain", "hot-path"])
def test_a_group_named_on_another_request_is_not_preferred_on_this_one(cast, ct_study, eligible_only):
    other_group = OrganizationFactory(name="Other Readers", slug="other-readers", kind="radiology_group")
    theirs = make_radiologist(name="Ann Theirs", group=other_group)
    ours = make_radiologist(name="Zed Ours", group=cast.group)
    request_for(cast, ct_study, audience="preferred", preferred_groups=[other_group])
    rr = request_for(cast, ct_study, audience="preferred", preferred_groups=[cast.group])
    result = match(rr, at=AT, eligible_only=eligible_only)
    assert candidate_of(result, ours).preferred
    assert not candidate_of(result, theirs).preferred


# --- the center's contracts --------------------------------------------------------------------------------

def _contract(cast, reader, **fields) -> Contract:
    contract = Contract.objects.create(**{"center": cast.center, "group": cast.group, "name": "Nights",
                                          "currency": "USD", "starts_on": date(2020, 1, 1),
                                          "status": Contract.Status.ACTIVE, **fields})
    contract.preferred_readers.set([reader])
    return contract


@pytest.mark.parametrize("eligible_only", [False, True], ids=["explain", "hot-path"])
def test_an_open_ended_contracts_preferred_reader_is_preferred(cast, ct_study, eligible_only):
    rr = request_for(cast, ct_study)
    contracted, other = make_radiologist(name="Zed Contracted"), make_radiologist(name="Ann Other")
    _contract(cast, contracted, ends_on=None)
    result = match(rr, at=AT, eligible_only=eligible_only)
    assert candidate_of(result, contracted).preferred
    assert not candidate_of(result, other).preferred


@pytest.mark.parametrize("eligible_only", [False, True], ids=["explain", "hot-path"])
def test_a_proposed_ended_or_future_contracts_readers_are_not_preferred(cast, ct_study, eligible_only):
    rr = request_for(cast, ct_study)
    proposed, ended, future = make_radiologist(), make_radiologist(), make_radiologist()
    _contract(cast, proposed, status=Contract.Status.PROPOSED)
    _contract(cast, ended, ends_on=date(2021, 1, 1))
    _contract(cast, future, starts_on=timezone.localdate() + timedelta(days=30))  # signed, not in force yet
    result = match(rr, at=AT, eligible_only=eligible_only)
    assert not candidate_of(result, proposed).preferred
    assert not candidate_of(result, ended).preferred
    assert not candidate_of(result, future).preferred


# --- the why-not page: a reader's name and group -----------------------------------------------------------

def test_a_reader_with_no_name_is_shown_by_email(cast, ct_study):
    rr = request_for(cast, ct_study)
    nameless = make_radiologist(user=UserFactory(email="nameless@example.test", full_name=""))
    assert candidate_of(match(rr, at=AT), nameless).name == "nameless@example.test"


def test_the_why_not_page_names_the_readers_current_group(cast, ct_study):
    rr = request_for(cast, ct_study)
    former = OrganizationFactory(name="Aardvark Former Group", slug="former", kind="radiology_group")
    mover = make_radiologist(group=cast.group)
    MembershipFactory(user=mover.user, organization=former, roles=["radiologist"])
    Membership.objects.filter(user=mover.user, organization=former).update(is_active=False)  # they left it
    explained = match(rr, at=AT, everyone=True)
    assert candidate_of(explained, mover).group_name == "Night Hawk Readers"


# --- hours are read in the reader's own zone ---------------------------------------------------------------

def test_readers_with_the_same_hours_in_different_zones_are_on_shift_at_different_times(cast, ct_study):
    rr = request_for(cast, ct_study, deadline=AT + timedelta(hours=2))
    chicago = make_radiologist(hours="none", zone="America/Chicago")
    tokyo = make_radiologist(hours="none", zone="Asia/Tokyo")
    for profile in (chicago, tokyo):
        ReadingHours.objects.bulk_create([ReadingHours(radiologist=profile, weekday=d, starts=time(9), ends=time(17))
                                          for d in range(7)])
    result = match(rr, at=AT)  # 10:00 in Chicago, 01:00 the next day in Tokyo
    assert candidate_of(result, chicago).on_shift
    assert reasons_of(result, tokyo)[0].startswith("off shift until")
