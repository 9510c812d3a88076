"""The radiologist's reading hours, time off and minimum rates page; the center's marketplace settings page."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from marketplace.models import CenterSettings, MinimumRate, ReadingHours, TimeOff
from marketplace.services.requests import turnaround_minutes
from tests.marketplace.helpers import make_radiologist

pytestmark = pytest.mark.django_db


@pytest.fixture
def night_reader(cast):
    """The cast's radiologist in Chicago, with no hours yet."""
    return make_radiologist(user=cast.radiologist, zone="America/Chicago", hours="none", modalities=("CT", "MR"))


def _hours(**windows) -> dict:
    data = {"action": "hours"}
    for day in range(7):
        for slot in range(2):
            data[f"d{day}_{slot}_start"] = data[f"d{day}_{slot}_end"] = ""
    data.update(windows)
    return data


def test_reading_hours_round_trip_with_an_overnight_window_and_a_whole_day(cast, night_reader, login):
    client = login(cast.radiologist)
    page = client.get(reverse("reading_hours")).content.decode()
    assert "America/Chicago" in page
    response = client.post(reverse("reading_hours"), _hours(
        d0_0_start="22:00", d0_0_end="06:00", d2_0_start="08:00", d2_0_end="12:00", d2_1_start="13:00",
        d2_1_end="17:00", d6_0_start="00:00", d6_0_end="00:00"))
    assert response.status_code == 302
    rows = sorted((h.weekday, h.starts, h.ends) for h in ReadingHours.objects.filter(radiologist=night_reader))
    assert rows == [(0, time(22), time(6)), (2, time(8), time(12)), (2, time(13), time(17)), (6, time(0), time(0))]
    page = client.get(reverse("reading_hours")).content.decode()
    assert 'name="d0_0_start" value="22:00"' in page
    assert 'name="d0_0_end" value="06:00"' in page
    assert 'name="d2_1_start" value="13:00"' in page
    assert AuditEvent.objects.filter(action="reading_hours.set", actor=cast.radiologist).exists()


def test_a_window_without_an_end_is_refused_naming_the_day(cast, night_reader, login):
    response = login(cast.radiologist).post(reverse("reading_hours"), _hours(d1_0_start="09:00"))
    assert response.status_code == 400
    assert "Tuesday: give both a start and an end." in response.content.decode()
    assert not ReadingHours.objects.exists()


def test_time_off_is_entered_in_the_readers_zone_and_stored_in_utc(cast, night_reader, login):
    client = login(cast.radiologist)
    response = client.post(reverse("reading_hours"), {"action": "time_off_add", "starts_at": "2031-01-10T08:00",
                                                      "ends_at": "2031-01-12T18:30", "note": "Conference"})
    assert response.status_code == 302
    off = TimeOff.objects.get(radiologist=night_reader)
    assert off.starts_at == datetime(2031, 1, 10, 14, 0, tzinfo=UTC)  # 08:00 CST is 14:00 UTC
    assert off.ends_at == datetime(2031, 1, 13, 0, 30, tzinfo=UTC)
    backwards = client.post(reverse("reading_hours"), {"action": "time_off_add", "starts_at": "2031-02-10T08:00",
                                                       "ends_at": "2031-02-09T08:00"})
    assert backwards.status_code == 400
    assert "The time off ends before it starts." in backwards.content.decode()
    client.post(reverse("reading_hours"), {"action": "time_off_remove", "time_off": off.pk})
    assert not TimeOff.objects.exists()


def test_someone_elses_time_off_cannot_be_removed(cast, night_reader, login):
    other = make_radiologist(name="Dr Other")
    theirs = TimeOff.objects.create(radiologist=other, starts_at=datetime(2031, 1, 1, tzinfo=UTC),
                                    ends_at=datetime(2031, 1, 2, tzinfo=UTC))
    response = login(cast.radiologist).post(reverse("reading_hours"),
                                            {"action": "time_off_remove", "time_off": theirs.pk})
    assert response.status_code == 404
    assert TimeOff.objects.filter(pk=theirs.pk).exists()


def test_minimum_rates_grid_saves_changes_and_clears(cast, night_reader, login):
    client = login(cast.radiologist)
    client.post(reverse("reading_hours"), {"action": "rates", "rate_CT_stat": "5000", "rate_MR_routine": "4200"})
    assert {(r.modality, r.priority, r.cents) for r in MinimumRate.objects.all()} == {
        ("CT", "stat", 5000), ("MR", "routine", 4200)}
    client.post(reverse("reading_hours"), {"action": "rates", "rate_CT_stat": "5500"})
    assert {(r.modality, r.priority, r.cents) for r in MinimumRate.objects.all()} == {("CT", "stat", 5500)}
    refused = client.post(reverse("reading_hours"), {"action": "rates", "rate_CT_stat": "-1"})
    assert refused.status_code == 400


def _settings(**fields) -> dict:
    return {"stat_minutes": "45", "urgent_minutes": "180", "routine_minutes": "720", "second_opinion_minutes": "2880",
            "preferred_widen_minutes": "", **fields}


def test_center_admin_sets_tat_and_preferred_and_blocked_readers(cast, login):
    liked, disliked = make_radiologist(name="Dr Liked"), make_radiologist(name="Dr Disliked")
    client = login(cast.center_admin)
    assert client.get(reverse("center_marketplace_settings")).status_code == 200
    response = client.post(reverse("center_marketplace_settings"), _settings(
        preferred_widen_minutes="20", preferred_radiologists=[liked.pk], blocked_radiologists=[disliked.pk]))
    assert response.status_code == 302
    row = CenterSettings.objects.get(center=cast.center)
    assert (row.stat_minutes, row.preferred_widen_minutes) == (45, 20)
    assert list(row.preferred_radiologists.all()) == [liked]
    assert list(row.blocked_radiologists.all()) == [disliked]
    assert turnaround_minutes(cast.center, priority="stat", kind="primary") == 45
    page = client.get(reverse("center_marketplace_settings")).content.decode()
    assert 'name="stat_minutes" value="45"' in page


def test_a_reader_both_preferred_and_blocked_is_refused_on_the_field(cast, login):
    both = make_radiologist(name="Dr Both")
    response = login(cast.center_admin).post(reverse("center_marketplace_settings"), _settings(
        preferred_radiologists=[both.pk], blocked_radiologists=[both.pk]))
    assert response.status_code == 400
    assert "Both preferred and blocked: Dr Both." in response.content.decode()
    too_fast = login(cast.center_admin).post(reverse("center_marketplace_settings"), _settings(stat_minutes="2"))
    assert too_fast.status_code == 400
    assert not CenterSettings.objects.filter(center=cast.center).exists()
