"""The small settings writes of the marketplace: a radiologist's reading hours, time off and minimum
rates, and a center's marketplace settings (TAT, widen delay, preferred and blocked readers).

Each is validated here (pages and API only check the shape) and audited.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import TIME_ZONE_CHOICES, Organization, RadiologistProfile
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace import policy
from marketplace.coverage_models import ExtraShift
from marketplace.models import CenterSettings, MinimumRate, Priority, ReadingHours, TimeOff
from marketplace.services.offers import profile_of
from marketplace.services.requests import center_settings

MIN_TAT_MINUTES = 5
MAX_TAT_MINUTES = 14 * 24 * 60  # two weeks
MAX_RATE_CENTS = 1_000_000


def _own_profile(actor: Actor) -> RadiologistProfile:
    profile = profile_of(actor)
    if profile is None:
        raise NotFound()
    return profile


def _audit(actor: Actor, action: str, *, obj_type: str, obj_id: str, request: HttpRequest | None,
           organization: Organization | None = None, extra: dict | None = None) -> None:
    audit_record(action=action, actor=actor.user, request=request, organization=organization,
                 object_type=obj_type, object_id=obj_id, extra=extra or {})


# --- a radiologist's own schedule and rates ---------------------------------------------------------------

_KNOWN_ZONES = frozenset(tz for tz, _ in TIME_ZONE_CHOICES)
_WEEK = 7 * 24 * 60  # minutes
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _refuse_overlapping_windows(windows: list[tuple[int, time, time]]) -> None:
    """Weekly windows as minutes of the week (an overnight one runs past midnight, Sunday's into Monday):
    any two that share a minute are refused, naming both."""
    spans = []
    for weekday, starts, ends in windows:
        start = weekday * 24 * 60 + starts.hour * 60 + starts.minute
        length = (ends.hour * 60 + ends.minute) - (starts.hour * 60 + starts.minute)
        spans.append((start, start + (length if length > 0 else length + 24 * 60), weekday, starts, ends))
    spans.sort()
    # Each window against the next one, and the last (shifted back a week) against the first: the week wraps.
    pairs = list(zip(spans, spans[1:], strict=False))
    if len(spans) > 1:
        last = spans[-1]
        pairs.append(((last[0] - _WEEK, last[1] - _WEEK, *last[2:]), spans[0]))
    for earlier, later in pairs:
        if later[0] < earlier[1]:
            raise ApplicationError.for_field(
                "hours", f"{_DAYS[earlier[2]]} {earlier[3]:%H:%M}–{earlier[4]:%H:%M} overlaps "
                         f"{_DAYS[later[2]]} {later[3]:%H:%M}–{later[4]:%H:%M}.")


@transaction.atomic
def reading_hours_set(*, actor: Actor, windows: list[tuple[int, time, time]], zone: str | None = None,
                      request: HttpRequest | None = None) -> list[ReadingHours]:
    """Replace the radiologist's weekly reading hours (wall-clock times in their own zone).

    An end at or before the start runs into the next day (22:00–06:00); 00:00–00:00 is the whole day.
    The same window twice on one weekday, and windows that overlap (a night shift running into the next
    day's window included), are refused. ``zone``, when given, becomes the radiologist's home time zone
    (an IANA name; an unknown one is refused): the windows are read in it.
    """
    profile = _own_profile(actor)
    seen = set()
    for weekday, starts, ends in windows:
        if not 0 <= weekday <= 6:
            raise ApplicationError.for_field("weekday", f"Weekday {weekday} is not 0 (Monday) … 6 (Sunday).")
        if (weekday, starts) in seen:
            raise ApplicationError.for_field("hours", "Two windows start at the same time on one day.")
        if starts == ends and starts != time(0, 0):
            raise ApplicationError.for_field("hours", f"The window {starts:%H:%M}–{ends:%H:%M} is empty; use "
                                                      "00:00–00:00 for the whole day.")
        seen.add((weekday, starts))
    _refuse_overlapping_windows(windows)
    if zone is not None:
        zone = zone.strip()
        if zone not in _KNOWN_ZONES:
            raise ApplicationError.for_field("zone", f"Unknown time zone {zone!r}: use an IANA name such as "
                                                     "America/Chicago.")
        if zone != profile.home_time_zone:
            profile.home_time_zone = zone
            profile.save(update_fields=["home_time_zone"])
    ReadingHours.objects.filter(radiologist=profile).delete()
    rows = ReadingHours.objects.bulk_create([ReadingHours(radiologist=profile, weekday=w, starts=s, ends=e)
                                             for w, s, e in sorted(windows)])
    _audit(actor, "reading_hours.set", obj_type="accounts.radiologistprofile", obj_id=str(profile.public_id),
           request=request, extra={"zone": profile.home_time_zone,
                                   "windows": [f"{w} {s:%H:%M}-{e:%H:%M}" for w, s, e in sorted(windows)]})
    return rows


@transaction.atomic
def time_off_add(*, actor: Actor, starts_at: datetime, ends_at: datetime, note: str = "",
                 request: HttpRequest | None = None) -> TimeOff:
    """A stretch away (aware datetimes, stored in UTC); it must end after it starts and not be over already."""
    profile = _own_profile(actor)
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ApplicationError.for_field("starts_at", "Times need a time zone.")
    if ends_at <= starts_at:
        raise ApplicationError.for_field("ends_at", "The time off ends before it starts.")
    if ends_at <= timezone.now():
        raise ApplicationError.for_field("ends_at", "This time off is already over.")
    row = TimeOff.objects.create(radiologist=profile, starts_at=starts_at, ends_at=ends_at, note=note.strip()[:200])
    _audit(actor, "time_off.added", obj_type="marketplace.timeoff", obj_id=str(row.pk), request=request,
           extra={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    return row


@transaction.atomic
def time_off_remove(*, actor: Actor, time_off_id: int, request: HttpRequest | None = None) -> None:
    """Remove one of the radiologist's own time-off entries (someone else's is 404)."""
    profile = _own_profile(actor)
    row = TimeOff.objects.filter(radiologist=profile, pk=time_off_id).first()
    if row is None:
        raise NotFound("Time off not found.")
    _audit(actor, "time_off.removed", obj_type="marketplace.timeoff", obj_id=str(row.pk), request=request,
           extra={"starts_at": row.starts_at.isoformat(), "ends_at": row.ends_at.isoformat()})
    row.delete()


MAX_EXTRA_SHIFT = timedelta(days=3)


@transaction.atomic
def extra_shift_add(*, actor: Actor, starts_at: datetime, ends_at: datetime, note: str = "",
                    request: HttpRequest | None = None) -> ExtraShift:
    """A one-off reading window beyond the weekly hours (aware datetimes, stored in UTC): it must end after it
    starts, last at most three days, not be over already and not overlap the radiologist's other extra shifts.
    Time off still wins over it."""
    profile = _own_profile(actor)
    RadiologistProfile.objects.select_for_update().filter(pk=profile.pk).first()  # one writer: no overlap by a race
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ApplicationError.for_field("starts_at", "Times need a time zone.")
    if ends_at <= starts_at:
        raise ApplicationError.for_field("ends_at", "The extra shift ends before it starts.")
    if ends_at - starts_at > MAX_EXTRA_SHIFT:
        raise ApplicationError.for_field("ends_at", "An extra shift lasts at most 3 days; add weekly hours instead.")
    if ends_at <= timezone.now():
        raise ApplicationError.for_field("ends_at", "This extra shift is already over.")
    clash = ExtraShift.objects.filter(radiologist=profile, starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if clash is not None:
        zone = ZoneInfo(profile.home_time_zone)
        raise ApplicationError.for_field(
            "starts_at", f"Overlaps your extra shift {clash.starts_at.astimezone(zone):%a %b %d %H:%M}–"
                         f"{clash.ends_at.astimezone(zone):%a %b %d %H:%M} ({profile.home_time_zone}).")
    row = ExtraShift.objects.create(radiologist=profile, starts_at=starts_at, ends_at=ends_at, note=note.strip()[:200])
    _audit(actor, "extra_shift.added", obj_type="marketplace.extrashift", obj_id=str(row.pk), request=request,
           extra={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    return row


@transaction.atomic
def extra_shift_remove(*, actor: Actor, extra_shift_id: int, request: HttpRequest | None = None) -> None:
    """Remove one of the radiologist's own extra shifts (someone else's is 404)."""
    profile = _own_profile(actor)
    row = ExtraShift.objects.filter(radiologist=profile, pk=extra_shift_id).first()
    if row is None:
        raise NotFound("Extra shift not found.")
    _audit(actor, "extra_shift.removed", obj_type="marketplace.extrashift", obj_id=str(row.pk), request=request,
           extra={"starts_at": row.starts_at.isoformat(), "ends_at": row.ends_at.isoformat()})
    row.delete()


@transaction.atomic
def minimum_rate_set(*, actor: Actor, modality: str, priority: str, cents: int | None, currency: str = "USD",
                     request: HttpRequest | None = None) -> MinimumRate | None:
    """The least the radiologist takes for a modality and priority; ``None`` removes it. Audited when it changes."""
    profile = _own_profile(actor)
    modality = (modality or "").strip().upper()
    if not modality.isalnum() or len(modality) > 8:
        raise ApplicationError.for_field("modality", f"{modality!r} is not a modality code.")
    if priority not in Priority.values:
        raise ApplicationError.for_field("priority", f"Choose one of: {', '.join(Priority.values)}.")
    if cents is not None and not 0 <= cents <= MAX_RATE_CENTS:
        raise ApplicationError.for_field("cents", f"A minimum rate is 0 … {MAX_RATE_CENTS} cents.")
    current = MinimumRate.objects.filter(radiologist=profile, modality=modality, priority=priority,
                                         currency=currency).first()
    if (current.cents if current else None) == cents:
        return current
    if cents is None:
        current.delete()
        row = None
    elif current is None:
        row = MinimumRate.objects.create(radiologist=profile, modality=modality, priority=priority, cents=cents,
                                         currency=currency)
    else:
        current.cents = cents
        current.save(update_fields=["cents"])
        row = current
    _audit(actor, "minimum_rate.set", obj_type="accounts.radiologistprofile", obj_id=str(profile.public_id),
           request=request, extra={"modality": modality, "priority": priority, "cents": cents, "currency": currency})
    return row


@transaction.atomic
def minimum_rates_set(*, actor: Actor, rates: dict[tuple[str, str], int | None],
                      request: HttpRequest | None = None) -> None:
    """Several minimum rates at once (the profile grid), all or none."""
    for (modality, priority), cents in rates.items():
        minimum_rate_set(actor=actor, modality=modality, priority=priority, cents=cents, request=request)


# --- a center's marketplace settings ------------------------------------------------------------------------

TAT_FIELDS = ("stat_minutes", "urgent_minutes", "routine_minutes", "second_opinion_minutes")


@transaction.atomic
def center_settings_update(*, actor: Actor, center: Organization, data: dict,
                           request: HttpRequest | None = None) -> CenterSettings:
    """A center admin sets the TAT per priority (5 min … 14 days), the preferred tier's widen delay
    (empty: at 25 % of the time) and its preferred and blocked readers (never both for one reader)."""
    if not policy.can_manage_settings(actor, center):
        raise NotFound()
    for name in TAT_FIELDS:
        value = data.get(name)
        if value is None or not MIN_TAT_MINUTES <= value <= MAX_TAT_MINUTES:
            raise ApplicationError.for_field(name, f"A turnaround is {MIN_TAT_MINUTES} … {MAX_TAT_MINUTES} minutes.")
    widen = data.get("preferred_widen_minutes")
    if widen is not None and not 0 <= widen <= MAX_TAT_MINUTES:
        raise ApplicationError.for_field("preferred_widen_minutes", "The delay is 0 … 20160 minutes, or empty.")
    preferred = list(data.get("preferred_radiologists") or [])
    blocked = list(data.get("blocked_radiologists") or [])
    both = {p.pk for p in preferred} & {p.pk for p in blocked}
    if both:
        names = ", ".join(sorted(p.name for p in preferred if p.pk in both))
        raise ApplicationError.for_field("blocked_radiologists", f"Both preferred and blocked: {names}.")
    row = center_settings(center)
    for name in (*TAT_FIELDS, "preferred_widen_minutes"):
        setattr(row, name, data.get(name))
    row.save()
    row.preferred_radiologists.set(preferred)
    row.blocked_radiologists.set(blocked)
    _audit(actor, "center_settings.updated", obj_type="marketplace.centersettings", obj_id=str(row.pk),
           request=request, organization=center,
           extra={**{name: data.get(name) for name in (*TAT_FIELDS, "preferred_widen_minutes")},
                  "preferred": sorted(p.pk for p in preferred), "blocked": sorted(b.pk for b in blocked)})
    return row
