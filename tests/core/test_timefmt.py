"""core.timefmt: a moment as the reader reads it, in their zone with the zone's abbreviation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from core.timefmt import local_time

MOMENT = datetime(2026, 12, 4, 16, 37, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "shown"), [
    ("America/Chicago", "Dec 4, 10:37 CST"),
    ("Australia/Sydney", "Dec 5, 03:37 AEDT"),  # the next day there
    ("Asia/Kolkata", "Dec 4, 22:07 IST"),
    ("Asia/Dubai", "Dec 4, 20:37 UTC+04"),  # no letter abbreviation: the offset, never a bare "+04"
    ("UTC", "Dec 4, 16:37 UTC"),
])
def test_a_moment_reads_in_the_readers_zone_with_its_abbreviation(zone, shown):
    assert local_time(MOMENT, zone).replace(", 2026", "") == shown


def test_summer_time_changes_the_abbreviation():
    assert local_time(datetime(2026, 7, 4, 15, 37, tzinfo=UTC), "America/Chicago").endswith("10:37 CDT")


def test_the_clock_alone_without_the_date():
    assert local_time(MOMENT, "America/Chicago", date=False) == "10:37 CST"


def test_another_years_moment_names_its_year():
    assert local_time(datetime(2031, 1, 10, 14, 0, tzinfo=UTC), "America/Chicago") == "Jan 10, 2031, 08:00 CST"


@pytest.mark.parametrize("zone", [None, "", "Not/AZone"])
def test_no_or_an_unknown_zone_reads_utc_and_says_so(zone):
    assert local_time(MOMENT, zone, date=False) == "16:37 UTC"


def test_every_page_names_the_zone_its_times_are_in_with_the_abbreviation(cast, login):
    cast.technologist.time_zone = "Asia/Tokyo"
    cast.technologist.save(update_fields=["time_zone"])
    page = login(cast.technologist).get(reverse("dashboard")).content.decode()
    assert "<strong>Asia/Tokyo</strong> (JST)" in page
