"""A radiology group's calendar: its members' schedules for one week, member × day, in the group's zone.

Each cell lists when the member is on shift that day (weekly hours in their own zone, plus extra shifts, minus
time off: the rule matching reads), with the extra shifts and the time off marked. Queries are constant in
the number of members: the profiles with their weekly hours, then their time off and extra shifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import F
from django.utils import timezone

from accounts.models import Organization, RadiologistProfile
from accounts.policy import Actor
from core.errors import NotFound
from marketplace import policy, schedule
from marketplace.services.matching_pool import parse_hours, time_off, weekly_hours


@dataclass
class MemberWeek:
    name: str
    home_time_zone: str
    days: list[dict]  # per day: {"on": [...], "extra": [...], "off": [...]} as "HH:MM–HH:MM" in the group's zone


@dataclass
class GroupCalendar:
    group: Organization
    time_zone: str
    week: date  # its Monday
    days: list[date]
    members: list[MemberWeek]

    @property
    def previous_week(self) -> date:
        return self.week - timedelta(days=7)

    @property
    def next_week(self) -> date:
        return self.week + timedelta(days=7)


def _by_day(spans, zone: ZoneInfo, days: list[date]) -> list[list[str]]:
    """``spans`` (UTC) cut at the group's local midnights, as ``HH:MM–HH:MM`` per day (24:00 for midnight)."""
    out: list[list[str]] = [[] for _ in days]
    for i, day in enumerate(days):
        day_start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        for start, end in spans:
            start, end = max(start, day_start), min(end, day_end)
            if end > start:
                end_label = "24:00" if end == day_end else f"{end.astimezone(zone):%H:%M}"
                out[i].append(f"{start.astimezone(zone):%H:%M}–{end_label}")
    return out


def group_calendar(*, actor: Actor, group: Organization, week: date | None = None) -> GroupCalendar:
    """The members' schedules for the week holding ``week`` (default: this one). The group's admins; else 404."""
    if not policy.can_view_group_calendar(actor, group):
        raise NotFound()
    zone = ZoneInfo(group.time_zone)
    anchor = week or timezone.now().astimezone(zone).date()
    monday = anchor - timedelta(days=anchor.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    starts_at = datetime.combine(monday, time(0), tzinfo=zone).astimezone(UTC)
    ends_at = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone).astimezone(UTC)
    pool = RadiologistProfile.objects.filter(user__memberships__organization=group, user__memberships__is_active=True,
                                             user__is_active=True)
    rows = list(pool.annotate(full_name=F("user__full_name"), email=F("user__email"), weekly_hours=weekly_hours())
                .values_list("id", "display_name", "home_time_zone", "full_name", "email", "weekly_hours", named=True))
    off, extra = time_off(pool.values("pk"), starts_at)
    members = []
    for row in rows:
        own_off, own_extra = off.get(row.id, []), extra.get(row.id, [])
        on = schedule.on_shift_intervals(parse_hours(row.weekly_hours), row.home_time_zone, own_off, own_extra,
                                         starts_at, ends_at)
        cells = zip(_by_day(on, zone, days), _by_day(own_extra, zone, days), _by_day(own_off, zone, days), strict=True)
        members.append(MemberWeek(name=row.display_name or row.full_name or row.email,
                                  home_time_zone=row.home_time_zone,
                                  days=[{"on": a, "extra": b, "off": c} for a, b, c in cells]))
    members.sort(key=lambda m: m.name)
    return GroupCalendar(group=group, time_zone=group.time_zone, week=monday, days=days, members=members)
