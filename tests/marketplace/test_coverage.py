"""The coverage map of a center: hour by hour in the center's zone, the radiologists eligible for its studies
and on shift — across daylight-saving changes in both hemispheres, with expiring licenses, time off and extra
shifts — its gaps in words, its query count, and the API giving the page's data."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketplace.coverage import coverage_map
from marketplace.coverage_models import ExtraShift
from marketplace.models import CenterSettings, ReadingHours, TimeOff
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory, OrganizationFactory
from tests.marketplace.helpers import actor, ingest_study, make_radiologist

PHOENIX = ZoneInfo("America/Phoenix")  # no daylight saving: the center's hours stay put while the readers' move


@pytest.fixture
def center(db):
    return OrganizationFactory(name="Desert Imaging", slug="desert", region="AZ", time_zone="America/Phoenix")


@pytest.fixture
def admin(center):
    return MembershipFactory(organization=center, roles=["admin"]).user


def reader(name: str, zone: str, windows, **kwargs):
    """An AZ-licensed CT reader with weekly ``windows`` (weekdays, start, end) in ``zone``."""
    profile = make_radiologist(name=name, zone=zone, regions=("AZ",), hours="none", **kwargs)
    ReadingHours.objects.bulk_create([ReadingHours(radiologist=profile, weekday=d, starts=time(*s), ends=time(*e))
                                      for days, s, e in windows for d in days])
    return profile


EVERY_DAY = range(7)


def counts(data, day: date) -> dict[int, int | None]:
    return {h.hour: h.count for d in data.days if d.day == day for h in d.hours}


def test_a_chicago_night_shift_moves_an_hour_later_in_phoenix_when_chicago_falls_back(center, admin):
    # 22:00–06:00 Chicago is 20:00–04:00 Phoenix in daylight time (UTC-5) and 21:00–05:00 in standard time (UTC-6);
    # the night of Sunday 1 November 2026 is an hour longer (22:00 CDT to 06:00 CST).
    reader("Ada Quinn", "America/Chicago", [(EVERY_DAY, (22, 0), (6, 0))])
    data = coverage_map(actor=actor(admin), center=center, modality="CT",
                        at=datetime(2026, 10, 29, 12, tzinfo=PHOENIX))
    thu, fri, sat = date(2026, 10, 29), date(2026, 10, 30), date(2026, 10, 31)
    sun, mon = date(2026, 11, 1), date(2026, 11, 2)
    assert [d.day for d in data.days] == [thu, fri, sat, date(2026, 11, 1), mon, date(2026, 11, 3), date(2026, 11, 4)]
    assert (counts(data, thu)[19], counts(data, thu)[20], counts(data, thu)[23]) == (0, 1, 1)
    assert (counts(data, fri)[3], counts(data, fri)[4]) == (1, 0)
    assert counts(data, sat)[20] == 1  # Saturday 22:00 CDT
    assert (counts(data, sun)[4], counts(data, sun)[5]) == (1, 0)  # … until 06:00 CST, 05:00 in Phoenix
    assert (counts(data, sun)[20], counts(data, sun)[21]) == (0, 1)  # Sunday 22:00 CST
    assert (counts(data, mon)[4], counts(data, mon)[5]) == (1, 0)
    assert data.hours[20].radiologists == ["Ada Quinn"]


def test_a_sydney_day_shift_moves_an_hour_later_in_phoenix_when_sydney_falls_back(center, admin):
    # 09:00–17:00 Sydney is 15:00–23:00 Phoenix the day before in daylight time (UTC+11), 16:00–24:00 in standard
    # time (UTC+10); Sydney falls back on Sunday 4 April 2027 at 03:00. Chicago (daylight time since March)
    # keeps 20:00–04:00 Phoenix all week.
    reader("Bo Sydney", "Australia/Sydney", [(EVERY_DAY, (9, 0), (17, 0))])
    reader("Ada Quinn", "America/Chicago", [(EVERY_DAY, (22, 0), (6, 0))])
    data = coverage_map(actor=actor(admin), center=center, modality="CT", at=datetime(2027, 4, 1, 8, tzinfo=PHOENIX))
    fri, sat = counts(data, date(2027, 4, 2)), counts(data, date(2027, 4, 3))  # Sydney's Saturday and Sunday
    assert (fri[14], fri[15], fri[19], fri[20], fri[22], fri[23]) == (0, 1, 1, 2, 2, 1)
    assert (sat[15], sat[16], sat[23]) == (0, 1, 2)
    assert (sat[19], sat[20], sat[3]) == (1, 2, 1)  # the Chicago night joins at 20:00, and ran until 04:00
    assert [h.radiologists for h in data.days[2].hours if h.hour == 20] == [["Ada Quinn", "Bo Sydney"]]


def test_a_spring_forward_hour_the_clock_skips_is_not_a_gap(admin):
    denver = OrganizationFactory(name="Summit", slug="summit-x", region="AZ", time_zone="America/Denver")
    MembershipFactory(user=admin, organization=denver, roles=["admin"])
    data = coverage_map(actor=actor(admin), center=denver, modality="CT",
                        at=datetime(2027, 3, 14, 1, tzinfo=ZoneInfo("America/Denver")))
    assert counts(data, date(2027, 3, 14))[2] is None
    assert data.gaps == ["Sun 00:00–Sun 00:00: no CT reader licensed in US-AZ"]  # the whole week, 167 hours


def test_the_gap_list_of_a_known_schedule_set(center, admin):
    # Monday 4 January 2027, Phoenix. Days 06:00–18:00 (Ada), evenings 17:00–22:00 (Bo, off on Wednesday
    # evening), and an extra Saturday night for Ada (22:00–02:00).
    ada = reader("Ada Quinn", "America/Phoenix", [(EVERY_DAY, (6, 0), (18, 0))])
    bo = reader("Bo Evans", "America/Phoenix", [(EVERY_DAY, (17, 0), (22, 0))])
    TimeOff.objects.create(radiologist=bo, starts_at=datetime(2027, 1, 6, 17, tzinfo=PHOENIX),
                           ends_at=datetime(2027, 1, 6, 22, tzinfo=PHOENIX))
    ExtraShift.objects.create(radiologist=ada, starts_at=datetime(2027, 1, 9, 22, tzinfo=PHOENIX),
                              ends_at=datetime(2027, 1, 10, 2, tzinfo=PHOENIX))
    data = coverage_map(actor=actor(admin), center=center, modality="CT", at=datetime(2027, 1, 4, 9, tzinfo=PHOENIX))
    assert data.gaps == [
        "Mon 00:00–06:00: no CT reader licensed in US-AZ",
        "Mon 22:00–Tue 06:00: no CT reader licensed in US-AZ",
        "Tue 22:00–Wed 06:00: no CT reader licensed in US-AZ",
        "Wed 18:00–Thu 06:00: no CT reader licensed in US-AZ",
        "Thu 22:00–Fri 06:00: no CT reader licensed in US-AZ",
        "Fri 22:00–Sat 06:00: no CT reader licensed in US-AZ",
        "Sun 02:00–06:00: no CT reader licensed in US-AZ",
        "Sun 22:00–24:00: no CT reader licensed in US-AZ",
    ]
    assert data.thin_spots[:3] == ["Mon 06:00–17:00: one CT reader (Ada Quinn)",
                                   "Mon 18:00–22:00: one CT reader (Bo Evans)",
                                   "Tue 06:00–17:00: one CT reader (Ada Quinn)"]
    assert "Wed 06:00–18:00: one CT reader (Ada Quinn)" in data.thin_spots
    assert "Sat 22:00–Sun 02:00: one CT reader (Ada Quinn)" in data.thin_spots
    assert {h.level for h in data.hours} == {"gap", "thin", "few"}


def test_subspecialty_mammography_and_a_blocked_reader_narrow_the_count(center, admin):
    reader("Ada Quinn", "America/Phoenix", [(EVERY_DAY, (0, 0), (0, 0))], subspecialties=("neuro",), mqsa=True)
    reader("Bo Evans", "America/Phoenix", [(EVERY_DAY, (0, 0), (0, 0))], subspecialties=("body",))
    blocked = reader("Cy Blocked", "America/Phoenix", [(EVERY_DAY, (0, 0), (0, 0))], subspecialties=("neuro",))
    CenterSettings.objects.create(center=center).blocked_radiologists.add(blocked)
    at = datetime(2027, 1, 4, 9, tzinfo=PHOENIX)
    assert {h.count for h in coverage_map(actor=actor(admin), center=center, modality="CT", at=at).hours} == {2}
    neuro = coverage_map(actor=actor(admin), center=center, modality="CT", subspecialty="neuro", at=at)
    assert {tuple(h.radiologists) for h in neuro.hours} == {("Ada Quinn",)}
    mammo = coverage_map(actor=actor(admin), center=center, modality="MG", at=at)
    assert {tuple(h.radiologists) for h in mammo.hours} == {("Ada Quinn",)}  # the only one with MQSA
    assert mammo.thin_spots == ["Mon 00:00–Mon 00:00: one MG reader (Ada Quinn)"]


def test_a_license_ending_wednesday_removes_its_reader_from_thursday_on(center, admin):
    # Dates of credentials are compared with the UTC day (the eligibility rule, as matching asks it): the AZ
    # license ending Wednesday 6 January counts until Thursday 00:00 UTC, Wednesday 17:00 in Phoenix.
    reader("Ada Quinn", "America/Phoenix", [(EVERY_DAY, (0, 0), (0, 0))], license_expires=date(2027, 1, 6))
    reader("Bo Evans", "America/Phoenix", [(EVERY_DAY, (0, 0), (0, 0))])
    data = coverage_map(actor=actor(admin), center=center, modality="CT", at=datetime(2027, 1, 4, 9, tzinfo=PHOENIX))
    wed, thu = counts(data, date(2027, 1, 6)), counts(data, date(2027, 1, 7))
    assert counts(data, date(2027, 1, 4)) == dict.fromkeys(range(24), 2)
    assert (wed[16], wed[17]) == (2, 1)
    assert thu == dict.fromkeys(range(24), 1)
    assert data.thin_spots == ["Wed 17:00–Mon 00:00: one CT reader (Bo Evans)"]


def _crowd(n: int, start: int) -> None:
    zones = ["America/Chicago", "Australia/Sydney", "Europe/Berlin", "America/Phoenix"]
    for i in range(start, start + n):
        profile = reader(f"Reader {i:03d}", zones[i % 4], [(EVERY_DAY, (i % 24, 0), ((i + 8) % 24, 0))],
                         mqsa=i % 2 == 0)
        if i % 3 == 0:
            TimeOff.objects.create(radiologist=profile, starts_at=datetime(2027, 1, 5, tzinfo=PHOENIX),
                                   ends_at=datetime(2027, 1, 6, tzinfo=PHOENIX))
        if i % 4 == 0:
            ExtraShift.objects.create(radiologist=profile, starts_at=datetime(2027, 1, 8, 1, tzinfo=PHOENIX),
                                      ends_at=datetime(2027, 1, 8, 5, tzinfo=PHOENIX))


@pytest.mark.parametrize("modality", [None, "MG"])
def test_the_query_count_does_not_grow_with_the_readers(center, admin, modality):
    ingest_study(center, modality="MR")
    at = datetime(2027, 1, 4, 9, tzinfo=PHOENIX)
    _crowd(3, 0)
    with CaptureQueriesContext(connection) as few:
        small = coverage_map(actor=actor(admin), center=center, modality=modality, at=at)
    _crowd(20, 3)
    with CaptureQueriesContext(connection) as many:
        large = coverage_map(actor=actor(admin), center=center, modality=modality, at=at)
    assert len(many) == len(few) <= 7
    assert max(h.count for h in large.hours) > max(h.count for h in small.hours)
    assert large.modality == (modality or "MR")  # the center's own modality when none is chosen


def test_others_get_404_and_bad_choices_name_their_field(center, admin, cast):
    from core.errors import ApplicationError, NotFound

    technologist = MembershipFactory(organization=center, roles=["technologist"]).user
    for outsider in (technologist, cast.center_admin, cast.radiologist):
        with pytest.raises(NotFound):
            coverage_map(actor=actor(outsider), center=center)
    with pytest.raises(ApplicationError) as bad:
        coverage_map(actor=actor(admin), center=center, modality="XX")
    assert set(bad.value.fields) == {"modality"}
    with pytest.raises(ApplicationError) as bad:
        coverage_map(actor=actor(admin), center=center, subspecialty="astrology")
    assert set(bad.value.fields) == {"subspecialty"}


def test_the_api_gives_the_pages_data(center, admin, login):
    reader("Ada Quinn", "America/Chicago", [(EVERY_DAY, (22, 0), (6, 0))])
    reader("Bo Evans", "America/Phoenix", [(range(5), (8, 0), (17, 0))], subspecialties=("neuro",))
    enroll_totp(admin)  # center admins see patient data: two-factor first
    client = login(admin)
    page = client.get(reverse("coverage_map"), {"modality": "CT", "subspecialty": "neuro"})
    api = client.get(reverse("api_coverage"), {"modality": "CT", "subspecialty": "neuro"})
    assert page.status_code == api.status_code == 200
    shown, body = page.context["map"], api.json()
    assert body["gaps"] == shown.gaps
    assert body["thin_spots"] == shown.thin_spots
    assert [[(h["hour"], h["count"], h["radiologists"]) for h in d["hours"]] for d in body["days"]] == \
           [[(h.hour, h.count, h.radiologists) for h in d.hours] for d in shown.days]
    assert (body["time_zone"], body["jurisdiction"]) == ("America/Phoenix", "US-AZ")
    assert any("Bo Evans" in h["radiologists"] for d in body["days"] for h in d["hours"])
    html = page.content.decode()
    assert "no CT neuro reader licensed in US-AZ" in html
    bad = client.get(reverse("api_coverage"), {"modality": "ZZ"})
    assert bad.status_code == 400
    assert "modality" in str(bad.json())


def test_coverage_map_week_starts_today_in_the_centers_zone(center, admin):
    data = coverage_map(actor=actor(admin), center=center, modality="CT",
                        at=datetime(2027, 1, 4, 23, 30, tzinfo=PHOENIX))  # 06:30 UTC on Tuesday
    assert data.days[0].day == date(2027, 1, 4)
    assert data.hours[0].starts_at == datetime(2027, 1, 4, 7, tzinfo=ZoneInfo("UTC"))
    assert data.hours[-1].ends_at - data.hours[0].starts_at == timedelta(days=7)
