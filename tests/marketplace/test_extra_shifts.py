"""Schedules beyond the weekly grid: extra shifts (added and removed by the reader, refused when inverted or
overlapping, counted as on shift outside the weekly hours but never during time off, by the schedule rule and
by matching), the weekly hours' own refusals (overlapping windows, unknown zones), and a group's calendar."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from core.errors import ApplicationError, NotFound
from marketplace.coverage_models import ExtraShift
from marketplace.group_calendar import group_calendar
from marketplace.models import ReadingHours, TimeOff
from marketplace.schedule import availability
from marketplace.services.matching import match
from marketplace.services.profile import extra_shift_add, extra_shift_remove, reading_hours_set
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory
from tests.marketplace.helpers import actor, make_radiologist, post

pytestmark = pytest.mark.django_db

CHICAGO = ZoneInfo("America/Chicago")
MON, TUE, SAT = 0, 1, 5


@pytest.fixture
def me(cast):
    """The cast's radiologist in Chicago with weekday day shifts (09:00–17:00), none at weekends."""
    profile = make_radiologist(user=cast.radiologist, zone="America/Chicago", hours="none")
    reading_hours_set(actor=actor(cast.radiologist), windows=[(d, time(9), time(17)) for d in range(5)])
    return profile


def next_saturday(hour: int) -> datetime:
    today = timezone.now().astimezone(CHICAGO).date()
    day = today + timedelta(days=(SAT - today.weekday()) % 7 + 7)
    return datetime.combine(day, time(hour), tzinfo=CHICAGO)


# --- the services -------------------------------------------------------------------------------------------

def test_an_extra_shift_is_added_audited_and_removed(cast, me):
    starts = next_saturday(20)
    row = extra_shift_add(actor=actor(cast.radiologist), starts_at=starts, ends_at=starts + timedelta(hours=8),
                          note=" Covering nights ")
    assert (row.radiologist, row.starts_at, row.ends_at, row.note) == (me, starts, starts + timedelta(hours=8),
                                                                       "Covering nights")
    assert AuditEvent.objects.filter(action="extra_shift.added", actor=cast.radiologist).exists()
    extra_shift_remove(actor=actor(cast.radiologist), extra_shift_id=row.pk)
    assert not ExtraShift.objects.exists()
    assert AuditEvent.objects.filter(action="extra_shift.removed").exists()


@pytest.mark.parametrize(("hours", "field", "message"), [
    (0, "ends_at", "The extra shift ends before it starts."),
    (-3, "ends_at", "The extra shift ends before it starts."),
    (80, "ends_at", "An extra shift lasts at most 3 days; add weekly hours instead."),
])
def test_an_inverted_empty_or_overlong_extra_shift_is_refused_naming_the_field(cast, me, hours, field, message):
    starts = next_saturday(20)
    with pytest.raises(ApplicationError) as refused:
        extra_shift_add(actor=actor(cast.radiologist), starts_at=starts, ends_at=starts + timedelta(hours=hours))
    assert refused.value.fields == {field: [message]}
    assert not ExtraShift.objects.exists()


def test_an_extra_shift_over_already_or_naive_is_refused(cast, me):
    past = timezone.now() - timedelta(days=2)
    with pytest.raises(ApplicationError) as over:
        extra_shift_add(actor=actor(cast.radiologist), starts_at=past, ends_at=past + timedelta(hours=2))
    assert set(over.value.fields) == {"ends_at"}
    with pytest.raises(ApplicationError) as naive:
        extra_shift_add(actor=actor(cast.radiologist), starts_at=datetime(2031, 1, 1, 8),
                        ends_at=datetime(2031, 1, 1, 9))
    assert set(naive.value.fields) == {"starts_at"}


def test_an_extra_shift_overlapping_another_is_refused_and_touching_ones_are_not(cast, me):
    starts = next_saturday(20)
    me_actor = actor(cast.radiologist)
    extra_shift_add(actor=me_actor, starts_at=starts, ends_at=starts + timedelta(hours=4))
    with pytest.raises(ApplicationError) as refused:
        extra_shift_add(actor=me_actor, starts_at=starts + timedelta(hours=3), ends_at=starts + timedelta(hours=6))
    assert set(refused.value.fields) == {"starts_at"}
    assert refused.value.message.startswith(f"Overlaps your extra shift {starts:%a %b %d} 20:00–")
    extra_shift_add(actor=me_actor, starts_at=starts + timedelta(hours=4), ends_at=starts + timedelta(hours=6))
    other = make_radiologist(name="Dr Other")  # another reader's shift at the same time is no clash
    extra_shift_add(actor=actor(other.user), starts_at=starts, ends_at=starts + timedelta(hours=4))
    assert ExtraShift.objects.count() == 3


def test_someone_elses_extra_shift_cannot_be_removed(cast, me):
    other = make_radiologist(name="Dr Other")
    theirs = ExtraShift.objects.create(radiologist=other, starts_at=datetime(2031, 1, 1, tzinfo=UTC),
                                       ends_at=datetime(2031, 1, 2, tzinfo=UTC))
    with pytest.raises(NotFound):
        extra_shift_remove(actor=actor(cast.radiologist), extra_shift_id=theirs.pk)
    with pytest.raises(NotFound):  # a center admin has no profile
        extra_shift_add(actor=actor(cast.center_admin), starts_at=next_saturday(1), ends_at=next_saturday(2))
    assert ExtraShift.objects.filter(pk=theirs.pk).exists()


# --- weekly hours' refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("windows", "message"), [
    ([(MON, time(9), time(17)), (MON, time(16), time(20))], "Mon 09:00–17:00 overlaps Mon 16:00–20:00."),
    ([(MON, time(22), time(6)), (TUE, time(5), time(9))], "Mon 22:00–06:00 overlaps Tue 05:00–09:00."),
    ([(6, time(20), time(2)), (MON, time(1), time(8))], "Sun 20:00–02:00 overlaps Mon 01:00–08:00."),  # the week wraps
    ([(TUE, time(0), time(0)), (TUE, time(8), time(9))], "Tue 00:00–00:00 overlaps Tue 08:00–09:00."),
])
def test_overlapping_weekly_windows_are_refused_naming_both(cast, me, windows, message):
    with pytest.raises(ApplicationError) as refused:
        reading_hours_set(actor=actor(cast.radiologist), windows=windows)
    assert refused.value.fields == {"hours": [message]}
    assert ReadingHours.objects.filter(radiologist=me).count() == 5  # unchanged


def test_back_to_back_windows_and_a_whole_week_are_accepted(cast, me):
    me_actor = actor(cast.radiologist)
    reading_hours_set(actor=me_actor, windows=[(MON, time(22), time(6)), (TUE, time(6), time(14))])
    reading_hours_set(actor=me_actor, windows=[(d, time(0), time(0)) for d in range(7)])
    assert ReadingHours.objects.filter(radiologist=me).count() == 7


def test_an_unknown_time_zone_is_refused_and_a_known_one_kept(cast, me):
    with pytest.raises(ApplicationError) as refused:
        reading_hours_set(actor=actor(cast.radiologist), windows=[(MON, time(9), time(17))], zone="Mars/Olympus")
    assert set(refused.value.fields) == {"zone"}
    assert "Mars/Olympus" in refused.value.message
    reading_hours_set(actor=actor(cast.radiologist), windows=[(MON, time(9), time(17))], zone="Australia/Sydney")
    me.refresh_from_db()
    assert me.home_time_zone == "Australia/Sydney"


def test_the_hours_page_takes_a_zone_and_extra_shifts(cast, me, login):
    client = login(cast.radiologist)
    bad = client.post(reverse("reading_hours"), {"action": "hours", "zone": "Atlantis/Capital",
                                                 "d0_0_start": "09:00", "d0_0_end": "17:00"})
    assert bad.status_code == 400
    assert "Unknown time zone" in bad.content.decode()
    response = client.post(reverse("reading_hours"), {"action": "extra_shift_add", "starts_at": "2031-01-11T20:00",
                                                      "ends_at": "2031-01-12T04:00", "note": "Weekend nights"})
    assert response.status_code == 302
    row = ExtraShift.objects.get(radiologist=me)
    assert (row.starts_at, row.ends_at) == (datetime(2031, 1, 12, 2, tzinfo=UTC), datetime(2031, 1, 12, 10, tzinfo=UTC))
    clash = client.post(reverse("reading_hours"), {"action": "extra_shift_add", "starts_at": "2031-01-11T22:00",
                                                   "ends_at": "2031-01-12T02:00"})
    assert clash.status_code == 400
    assert "Overlaps your extra shift" in clash.content.decode()
    assert "Weekend nights" in client.get(reverse("reading_hours")).content.decode()
    client.post(reverse("reading_hours"), {"action": "extra_shift_remove", "extra_shift": row.pk})
    assert not ExtraShift.objects.exists()


# --- the availability rule ----------------------------------------------------------------------------------

def test_an_extra_shift_is_on_shift_outside_the_weekly_hours_but_not_during_time_off():
    hours = [(MON, time(9), time(17))]
    sat_night = (datetime(2031, 1, 4, 20, tzinfo=CHICAGO), datetime(2031, 1, 5, 4, tzinfo=CHICAGO))
    at = datetime(2031, 1, 4, 23, tzinfo=CHICAGO)
    assert not availability(hours, "America/Chicago", [], at).on_shift
    state = availability(hours, "America/Chicago", [], at, extra=[sat_night])
    assert (state.on_shift, state.until) == (True, sat_night[1])
    off = [(datetime(2031, 1, 4, 22, tzinfo=CHICAGO), datetime(2031, 1, 5, 1, tzinfo=CHICAGO))]
    away = availability(hours, "America/Chicago", off, at, extra=[sat_night])
    assert (away.on_shift, away.next_start, away.on_time_off) == (False, off[0][1], True)
    only_extra = availability([], "America/Chicago", [], datetime(2031, 1, 4, 8, tzinfo=CHICAGO), extra=[sat_night])
    assert (only_extra.has_hours, only_extra.next_start) == (True, sat_night[0])


def test_matching_counts_an_extra_shift_and_still_honours_time_off(cast, me, ct_study):
    at = next_saturday(23)  # outside the weekday hours
    rr = post(cast.technologist, ct_study, publish=False, deadline=at + timedelta(hours=1))

    def reasons() -> list[str]:
        result = match(rr, at=at)
        return next(c.reasons for c in result.candidates + result.excluded if c.radiologist_id == me.pk)

    assert reasons()[0].startswith("off shift until")
    ExtraShift.objects.create(radiologist=me, starts_at=at - timedelta(hours=3), ends_at=at + timedelta(hours=5))
    assert reasons() == []
    assert next(c for c in match(rr, at=at).candidates if c.radiologist_id == me.pk).on_shift
    TimeOff.objects.create(radiologist=me, starts_at=at - timedelta(hours=1), ends_at=at + timedelta(hours=1))
    assert reasons()[0].startswith("on time off until")


# --- the group's calendar -----------------------------------------------------------------------------------

def test_a_group_admin_sees_the_members_week_in_the_groups_zone(cast, me, login):
    admin = MembershipFactory(organization=cast.group, roles=["admin"]).user  # Night Hawk Readers, Los Angeles
    sydney = make_radiologist(group=cast.group, name="Bo Sydney", zone="Australia/Sydney", hours="none")
    ReadingHours.objects.create(radiologist=sydney, weekday=MON, starts=time(9), ends=time(17))
    week = datetime(2031, 1, 6).date()  # a Monday
    ExtraShift.objects.create(radiologist=me, starts_at=datetime(2031, 1, 11, 20, tzinfo=CHICAGO),
                              ends_at=datetime(2031, 1, 12, 4, tzinfo=CHICAGO))
    TimeOff.objects.create(radiologist=me, starts_at=datetime(2031, 1, 7, tzinfo=CHICAGO),
                           ends_at=datetime(2031, 1, 8, tzinfo=CHICAGO))
    calendar = group_calendar(actor=actor(admin), group=cast.group, week=week)
    rows = {m.name: m.days for m in calendar.members}
    mine = rows[me.name]
    # 09:00–17:00 Chicago is 07:00–15:00 in Los Angeles; time off all Tuesday in Chicago is Mon 22:00–Tue 22:00 LA
    assert (mine[0]["on"], mine[0]["off"]) == (["07:00–15:00"], ["22:00–24:00"])
    assert (mine[1]["on"], mine[1]["off"]) == ([], ["00:00–22:00"])
    assert (mine[2]["on"], mine[2]["off"]) == (["07:00–15:00"], [])
    assert (mine[5]["on"], mine[5]["extra"]) == (["18:00–24:00"], ["18:00–24:00"])
    assert (mine[6]["on"], mine[6]["extra"]) == (["00:00–02:00"], ["00:00–02:00"])
    assert rows["Bo Sydney"][6]["on"] == ["14:00–22:00"]  # Monday 09:00 Sydney is Sunday 14:00 in Los Angeles
    enroll_totp(admin)  # admins see patient data: two-factor first
    page = login(admin).get(reverse("group_calendar"), {"week": "2031-01-06"})
    assert page.status_code == 200
    assert "+ extra 18:00–24:00" in page.content.decode()
    assert "time off 00:00–22:00" in page.content.decode()
    with pytest.raises(NotFound):
        group_calendar(actor=actor(cast.radiologist), group=cast.group)  # a member, not an admin
    assert login(cast.center_admin).get(reverse("group_calendar")).status_code == 404
