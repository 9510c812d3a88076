"""Reading hours are weekly wall-clock windows in the reader's own zone: overnight windows end the next day,
00:00-00:00 is the whole day, time off inside a window pushes the next start, and a daylight-saving change
keeps the local times (the night is an hour shorter or longer, never shifted)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from marketplace.schedule import availability, local_label, windows

CHICAGO = "America/Chicago"
CT = ZoneInfo(CHICAGO)
MON, SAT, SUN = 0, 5, 6


def local(*args) -> datetime:
    return datetime(*args, tzinfo=CT)


def test_no_hours_means_never_on_shift():
    state = availability([], CHICAGO, [], datetime(2026, 12, 7, tzinfo=UTC))
    assert (state.on_shift, state.has_hours, state.next_start) == (False, False, None)


def test_inside_a_day_window_on_shift_until_its_end():
    hours = [(MON, time(7), time(15))]
    state = availability(hours, CHICAGO, [], local(2026, 12, 7, 7, 0))
    assert state.on_shift
    assert state.until == local(2026, 12, 7, 15, 0)
    assert availability(hours, CHICAGO, [], local(2026, 12, 7, 14, 59)).on_shift


def test_before_a_window_off_shift_with_the_next_start_and_the_end_is_exclusive():
    hours = [(MON, time(7), time(15))]
    before = availability(hours, CHICAGO, [], local(2026, 12, 7, 6, 59))
    assert not before.on_shift
    assert before.next_start == local(2026, 12, 7, 7, 0)
    assert before.has_hours
    after = availability(hours, CHICAGO, [], local(2026, 12, 7, 15, 0))
    assert not after.on_shift
    assert after.next_start == local(2026, 12, 14, 7, 0)


def test_an_overnight_window_ends_the_next_morning():
    hours = [(MON, time(22), time(6))]
    assert availability(hours, CHICAGO, [], local(2026, 12, 7, 23, 30)).on_shift
    early_tuesday = availability(hours, CHICAGO, [], local(2026, 12, 8, 5, 59))
    assert early_tuesday.on_shift
    assert early_tuesday.until == local(2026, 12, 8, 6, 0)
    assert not availability(hours, CHICAGO, [], local(2026, 12, 8, 6, 0)).on_shift
    assert not availability(hours, CHICAGO, [], local(2026, 12, 7, 21, 59)).on_shift


def test_zero_to_zero_is_the_whole_day():
    hours = [(MON, time(0), time(0))]
    assert availability(hours, CHICAGO, [], local(2026, 12, 7, 0, 0)).on_shift
    state = availability(hours, CHICAGO, [], local(2026, 12, 7, 23, 59))
    assert state.on_shift
    assert state.until == local(2026, 12, 8, 0, 0)
    assert not availability(hours, CHICAGO, [], local(2026, 12, 8, 0, 0)).on_shift


def test_the_schedule_is_read_in_the_readers_zone_not_utc():
    hours = [(MON, time(7), time(15))]
    at = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # 08:00 in Chicago, 23:00 in Tokyo
    assert availability(hours, CHICAGO, [], at).on_shift
    assert not availability(hours, "Asia/Tokyo", [], at).on_shift


def test_time_off_inside_a_window_pushes_the_next_start_to_its_end():
    hours = [(d, time(7), time(15)) for d in range(7)]
    off = [(local(2026, 12, 7, 6, 0), local(2026, 12, 7, 10, 0))]
    state = availability(hours, CHICAGO, off, local(2026, 12, 7, 8, 0))
    assert not state.on_shift
    assert state.on_time_off
    assert state.next_start == local(2026, 12, 7, 10, 0)
    assert availability(hours, CHICAGO, off, local(2026, 12, 7, 10, 0)).on_shift


def test_time_off_covering_whole_windows_skips_to_the_first_free_window():
    hours = [(d, time(7), time(15)) for d in range(7)]
    off = [(local(2026, 12, 7, 0, 0), local(2026, 12, 9, 0, 0))]
    state = availability(hours, CHICAGO, off, local(2026, 12, 7, 8, 0))
    assert state.on_time_off
    assert state.next_start == local(2026, 12, 9, 7, 0)


def test_time_off_before_a_window_does_not_count_as_on_time_off():
    hours = [(MON, time(7), time(15))]
    off = [(local(2026, 12, 7, 9, 0), local(2026, 12, 7, 11, 0))]
    state = availability(hours, CHICAGO, off, local(2026, 12, 7, 6, 0))
    assert not state.on_time_off
    assert state.next_start == local(2026, 12, 7, 7, 0)
    assert not availability(hours, CHICAGO, off, local(2026, 12, 7, 9, 30)).on_shift


def test_fall_back_night_keeps_its_wall_times_and_lasts_nine_hours():
    """2026-11-01: clocks go back at 02:00 CDT; Saturday's 22:00-06:00 runs 22:00 CDT to 06:00 CST."""
    (night,) = [w for w in windows([(SAT, time(22), time(6))], CHICAGO, local(2026, 10, 31, 23, 0))
                if w.starts_at.date() == datetime(2026, 11, 1).date()]
    assert night.starts_at == datetime(2026, 11, 1, 3, 0, tzinfo=UTC)  # 22:00 CDT (UTC-5)
    assert night.ends_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # 06:00 CST (UTC-6)
    assert night.ends_at - night.starts_at == timedelta(hours=9)
    assert night.starts_at.astimezone(CT).time() == time(22)
    assert night.ends_at.astimezone(CT).time() == time(6)
    hours = [(SAT, time(22), time(6))]
    assert availability(hours, CHICAGO, [], datetime(2026, 11, 1, 11, 30, tzinfo=UTC)).on_shift  # 05:30 CST
    assert not availability(hours, CHICAGO, [], datetime(2026, 11, 1, 12, 0, tzinfo=UTC)).on_shift


def test_spring_forward_night_keeps_its_wall_times_and_lasts_seven_hours():
    """2026-03-08: clocks jump at 02:00 CST; Saturday's 22:00-06:00 runs 22:00 CST to 06:00 CDT."""
    at = datetime(2026, 3, 8, 4, 30, tzinfo=UTC)  # 22:30 CST on Saturday
    state = availability([(SAT, time(22), time(6))], CHICAGO, [], at)
    assert state.on_shift
    assert state.until == datetime(2026, 3, 8, 11, 0, tzinfo=UTC)
    assert state.until.astimezone(CT).time() == time(6)
    before = availability([(SAT, time(22), time(6))], CHICAGO, [], datetime(2026, 3, 8, 3, 59, tzinfo=UTC))
    assert before.next_start == datetime(2026, 3, 8, 4, 0, tzinfo=UTC)  # 22:00 CST (UTC-6)
    assert before.next_start.astimezone(CT).time() == time(22)


def test_the_same_weekly_window_is_an_hour_later_in_utc_after_the_change():
    hours = [(SUN, time(7), time(8))]
    before = availability(hours, CHICAGO, [], datetime(2026, 10, 25, 0, 0, tzinfo=UTC)).next_start
    after = availability(hours, CHICAGO, [], datetime(2026, 11, 1, 0, 0, tzinfo=UTC)).next_start
    assert before == datetime(2026, 10, 25, 12, 0, tzinfo=UTC)
    assert after == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def test_local_label_names_the_time_in_the_readers_zone_and_the_day_when_not_today():
    at = local(2026, 12, 7, 3, 0)
    assert local_label(local(2026, 12, 7, 7, 0), CHICAGO, at) == "07:00 America/Chicago"
    assert local_label(local(2026, 12, 8, 7, 0), CHICAGO, at) == "Tue 07:00 America/Chicago"
