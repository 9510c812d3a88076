"""When a radiologist reads: weekly reading hours in their own time zone, plus extra shifts, minus time off.

Windows are built from wall-clock times in the radiologist's zone with ``zoneinfo``, so a shift
from 22:00 to 06:00 stays 22:00 to 06:00 local across a daylight-saving change (it is an hour
shorter or longer that night), never a fixed UTC offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOOKAHEAD_DAYS = 8  # a weekly schedule repeats: a week and a day always finds the next window


@dataclass(frozen=True)
class Window:
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC


@dataclass(frozen=True)
class Availability:
    """Whether the reader is on shift at ``at``, until when, and else when they are next."""

    on_shift: bool
    until: datetime | None  # end of the current window (on shift)
    next_start: datetime | None  # start of the next window outside time off (off shift)
    has_hours: bool
    on_time_off: bool


def windows(hours: Iterable[tuple[int, time, time]], zone: str, around: datetime) -> list[Window]:
    """The reading windows (UTC) from a day before ``around`` to ``LOOKAHEAD_DAYS`` after it."""
    tz = ZoneInfo(zone)
    local_day = around.astimezone(tz).date()
    out = []
    for offset in range(-1, LOOKAHEAD_DAYS):
        day = local_day + timedelta(days=offset)
        for weekday, starts, ends in hours:
            if day.weekday() != weekday:
                continue
            end_day = day + timedelta(days=1) if ends <= starts else day
            start_at = datetime.combine(day, starts, tzinfo=tz).astimezone(UTC)
            end_at = datetime.combine(end_day, ends, tzinfo=tz).astimezone(UTC)
            if end_at > start_at:
                out.append(Window(start_at, end_at))
    out.sort(key=lambda w: w.starts_at)
    return out


def availability(hours: list[tuple[int, time, time]], zone: str, time_off: list[tuple[datetime, datetime]],
                 at: datetime, extra: Iterable[tuple[datetime, datetime]] = (),
                 weekly: list[Window] | None = None) -> Availability:
    """Is the reader on shift at ``at`` (and not on time off)? Else when do they next start?

    ``extra``: one-off shifts (UTC) that count as on shift even outside the weekly hours, never during time off.
    ``weekly``: ``windows(hours, zone, at)`` when the caller already has them (the same for every moment of
    ``at``'s local day).
    """
    extra = [Window(starts_at, ends_at) for starts_at, ends_at in extra]
    if not hours and not extra:
        return Availability(False, None, None, has_hours=False, on_time_off=False)

    def off_at(moment: datetime) -> datetime | None:
        """The end of the time off that covers ``moment``, if any."""
        for starts_at, ends_at in time_off:
            if starts_at <= moment < ends_at:
                return ends_at
        return None

    on_time_off = off_at(at) is not None
    if weekly is None:
        weekly = windows(hours, zone, at)
    for window in sorted([*weekly, *extra], key=lambda w: w.starts_at) if extra else weekly:
        if window.ends_at <= at:
            continue
        moment = max(window.starts_at, at)
        # Skip past time off inside this window.
        while (back := off_at(moment)) is not None and moment < window.ends_at:
            moment = back
        if moment >= window.ends_at:
            continue
        if moment == at and window.starts_at <= at:
            return Availability(True, window.ends_at, None, has_hours=True, on_time_off=False)
        return Availability(False, None, moment, has_hours=True, on_time_off=on_time_off)
    return Availability(False, None, None, has_hours=True, on_time_off=on_time_off)


def on_shift_intervals(hours: Iterable[tuple[int, time, time]], zone: str,
                       time_off: Iterable[tuple[datetime, datetime]], extra: Iterable[tuple[datetime, datetime]],
                       starts_at: datetime, ends_at: datetime) -> list[tuple[datetime, datetime]]:
    """The stretches (UTC, merged, sorted) between ``starts_at`` and ``ends_at`` (at most a week apart) when
    the reader is on shift: weekly windows and extra shifts, minus time off."""
    spans = sorted([(w.starts_at, w.ends_at) for w in windows(hours, zone, starts_at)] + list(extra))
    merged: list[list[datetime]] = []
    for start, end in spans:
        start, end = max(start, starts_at), min(end, ends_at)
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for off_start, off_end in sorted(time_off):
        cut = []
        for start, end in merged:
            if off_end <= start or off_start >= end:
                cut.append([start, end])
                continue
            if start < off_start:
                cut.append([start, off_start])
            if off_end < end:
                cut.append([off_end, end])
        merged = cut
    return [(start, end) for start, end in merged]


def local_label(moment: datetime, zone: str, at: datetime) -> str:
    """``07:00 America/Chicago`` today, else ``Mon 07:00 America/Chicago`` (the reader's own zone)."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    same_day = local.date() == at.astimezone(tz).date()
    return f"{local:%H:%M} {zone}" if same_day else f"{local:%a %H:%M} {zone}"
