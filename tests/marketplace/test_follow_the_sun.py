"""Follow-the-sun STAT routing (issue 18, item 4): a STAT is offered first only to eligible on-shift readers for
whom it is daytime (07:00–19:00 in their own zone), for ``STAT_DAYTIME_FIRST``; the clock's next sweep then offers
everyone on shift. With no daytime reader, everyone on shift at once; other priorities are untouched; the explain
view says day or night; daylight-saving changes move the reader's day by the zone rules.

Every posting and sweep is given a fixed ``at`` (never the wall clock). Offers need grants that expire in the
future, so the flow's ``AT`` is a fixed hour (12:00 UTC) on a date a week ahead, and its readers live in zones
without daylight saving (Kolkata 17:30 day, Tokyo 21:00 night, Phoenix 05:00 night): the same answer whatever
the date. The daylight-saving cases ask ``match`` alone (no grants) at fixed instants in 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from marketplace.models import Offer
from marketplace.services.clock import sla_tick
from marketplace.services.matching import match
from marketplace.services.offers import STAT_DAYTIME_FIRST
from marketplace.services.requests import PostData, read_request_post
from tests.marketplace.helpers import actor, make_radiologist, post

pytestmark = pytest.mark.django_db

AT = datetime.combine(timezone.now().date() + timedelta(days=7), time(12, 0), tzinfo=UTC)
KOLKATA, TOKYO, PHOENIX = "Asia/Kolkata", "Asia/Tokyo", "America/Phoenix"  # 17:30, 21:00, 05:00 at AT


def post_at(cast, study, at: datetime, *, publish: bool = True, **fields):
    read_request, _ = read_request_post(actor=actor(cast.technologist), center=study.organization,
                                        data=PostData(study=study, publish=publish, **fields), now=at)
    return read_request


def offered(read_request) -> set[int]:
    return set(Offer.objects.filter(read_request=read_request).values_list("radiologist_id", flat=True))


def reader(zone: str, name: str):
    return make_radiologist(zone=zone, name=name)


def test_a_stat_goes_to_daytime_readers_first_and_to_everyone_on_shift_at_the_next_sweep(cast, ct_study):
    day, night = reader(KOLKATA, "Day Reader"), reader(TOKYO, "Night Reader")
    read_request = post_at(cast, ct_study, AT, priority="stat")
    assert offered(read_request) == {day.pk}
    assert sla_tick(at=AT + STAT_DAYTIME_FIRST - timedelta(seconds=1)).offered == 0  # still the day readers' time
    assert offered(read_request) == {day.pk}
    assert sla_tick(at=AT + STAT_DAYTIME_FIRST).offered == 1
    assert offered(read_request) == {day.pk, night.pk}
    assert sla_tick(at=AT + STAT_DAYTIME_FIRST + timedelta(minutes=1)).offered == 0  # never offered twice


def test_a_daytime_reader_off_shift_does_not_hold_back_the_night_readers(cast, ct_study):
    night = reader(TOKYO, "Night Reader")
    off_shift = make_radiologist(zone=KOLKATA, name="Day Off Shift", hours="none")
    read_request = post_at(cast, ct_study, AT, priority="stat")
    assert offered(read_request) == {night.pk}
    assert off_shift.pk not in offered(read_request)


def test_a_stat_with_no_daytime_reader_goes_to_everyone_on_shift_at_once(cast, ct_study):
    tokyo, phoenix = reader(TOKYO, "Tokyo Reader"), reader(PHOENIX, "Phoenix Reader")
    read_request = post_at(cast, ct_study, AT, priority="stat")
    assert offered(read_request) == {tokyo.pk, phoenix.pk}


@pytest.mark.parametrize("priority", ["urgent", "routine"])
def test_other_priorities_go_to_day_and_night_readers_alike(cast, ct_study, priority):
    day, night = reader(KOLKATA, "Day Reader"), reader(TOKYO, "Night Reader")
    read_request = post_at(cast, ct_study, AT, priority=priority)
    assert offered(read_request) == {day.pk, night.pk}
    result = match(read_request, at=AT)
    assert {c.daytime for c in result.candidates} == {None}
    assert not any("daytime" in r or "night" in r for c in result.candidates for r in c.rank_reasons)


def test_matching_ranks_daytime_readers_first_and_says_why(cast, ct_study):
    # The night reader has the better record: only the daytime rule puts the day reader ahead.
    night, day = reader(TOKYO, "Aaron Night"), reader(KOLKATA, "Zoe Day")
    read_request = post_at(cast, ct_study, AT, priority="stat", publish=False)
    result = match(read_request, at=AT)
    assert [c.radiologist_id for c in result.candidates] == [day.pk, night.pk]
    first, second = result.candidates
    assert "daytime for the reader (17:30 in Kolkata)" in first.rank_reasons
    assert "night for the reader (21:00 in Tokyo)" in second.rank_reasons
    assert "a STAT: daytime readers first" in result.ranking


# --- the explain view ------------------------------------------------------------------------------------
# The explain page and API match at the time of the request. Regina (UTC-6) and Dhaka (UTC+6) keep no daylight
# saving and are 12 hours apart, so at any moment exactly one of them is in its day (07:00–19:00).

REGINA, DHAKA = "America/Regina", "Asia/Dhaka"


def _day_and_night(cast, ct_study):
    readers = {reader(REGINA, "Regina Reader").pk: "Regina", reader(DHAKA, "Dhaka Reader").pk: "Dhaka"}
    return readers, post(cast.technologist, ct_study, priority="stat")


def test_the_explain_page_says_which_reader_is_in_their_day_and_which_at_night(cast, ct_study, login):
    _, read_request = _day_and_night(cast, ct_study)
    body = login(cast.center_admin).get(reverse("read_request_explain", args=[read_request.public_id])).content.decode()
    assert body.count("daytime for the reader (") == 1
    assert body.count("night for the reader (") == 1
    assert " in Regina)" in body
    assert " in Dhaka)" in body
    assert "daytime readers first" in body


def test_the_explain_api_gives_the_day_and_night_reasons(cast, ct_study, login):
    readers, read_request = _day_and_night(cast, ct_study)
    response = login(cast.center_admin, api=True).get(f"/api/v1/read-requests/{read_request.public_id}/candidates/")
    assert response.status_code == 200, response.content
    reasons = [r for c in response.json()["candidates"] for r in c["rank_reasons"] if "for the reader" in r]
    assert sorted(r.split(" for the reader")[0] for r in reasons) == ["daytime", "night"]
    assert {r.rsplit(" in ", 1)[1].rstrip(")") for r in reasons} == set(readers.values())


def test_a_non_stat_explain_page_names_no_day_or_night(cast, ct_study, login):
    reader(REGINA, "Regina Reader"), reader(DHAKA, "Dhaka Reader")
    read_request = post(cast.technologist, ct_study, priority="urgent")
    body = login(cast.center_admin).get(reverse("read_request_explain", args=[read_request.public_id])).content.decode()
    assert "for the reader (" not in body


# --- daylight saving in two hemispheres ------------------------------------------------------------------
# New York leaves daylight saving on Sun 1 Nov 2026 (UTC-4 → UTC-5); Sydney enters it on Sun 4 Oct 2026
# (UTC+10 → UTC+11). The same UTC hour on either side of a change falls an hour apart on the reader's clock.

NEW_YORK, SYDNEY = "America/New_York", "Australia/Sydney"


def _daytime_at(cast, study, at: datetime) -> dict[str, tuple[bool, str]]:
    read_request = post_at(cast, study, at, priority="stat", publish=False)
    return {c.home_time_zone: (c.daytime, f"{c.local_at:%H:%M}") for c in match(read_request, at=at).candidates}


@pytest.mark.parametrize(("at", "expected"), [
    # 11:30 UTC: New York 07:30 EDT (day) on Saturday, 06:30 EST (night) on Monday; Sydney 22:30 AEDT both days.
    (datetime(2026, 10, 31, 11, 30, tzinfo=UTC), {NEW_YORK: (True, "07:30"), SYDNEY: (False, "22:30")}),
    (datetime(2026, 11, 2, 11, 30, tzinfo=UTC), {NEW_YORK: (False, "06:30"), SYDNEY: (False, "22:30")}),
    # 20:30 UTC: Sydney 06:30 AEST (night) on Saturday 3 Oct, 07:30 AEDT (day) on Monday 5 Oct; New York 16:30 EDT.
    (datetime(2026, 10, 2, 20, 30, tzinfo=UTC), {NEW_YORK: (True, "16:30"), SYDNEY: (False, "06:30")}),
    (datetime(2026, 10, 4, 20, 30, tzinfo=UTC), {NEW_YORK: (True, "16:30"), SYDNEY: (True, "07:30")}),
])
def test_daytime_follows_each_zones_daylight_saving_change(cast, ct_study, at, expected):
    reader(NEW_YORK, "New York Reader"), reader(SYDNEY, "Sydney Reader")
    assert _daytime_at(cast, ct_study, at) == expected

