"""A center's coverage map (issue 18): for the next 7 days, hour by hour in the center's zone, how many
radiologists would be eligible for its studies of one modality (and subspecialty) and on shift.

Eligible is the one rule of ``accounts.credentials.eligibility`` asked for each day the map spans (a license
ending Wednesday removes its reader from the first hour of Thursday on; the rule compares an item's dates
with the UTC day, as matching does), and not blocked by the center. On shift is ``schedule``: weekly hours in
the reader's own zone plus extra shifts minus time off, and a reader counts for an hour only when on shift
and eligible for the whole of it.

Queries are constant in the number of radiologists: the center's modalities (when none was chosen), the
profiles with their weekly hours, their credentials (one query per kind) and their time off and extra
shifts; the rest is worked out in Python per distinct schedule, not per reader and hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.credentials.eligibility import COUNTED, Credentials, EligibilityQuestion, as_text, json_values
from accounts.credentials.vocab import Modality, Subspecialty, parse_jurisdiction
from accounts.models import License, Organization, RadiologistProfile
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace import policy, schedule
from marketplace.models import CenterSettings
from marketplace.services.matching_pool import parse_hours, time_off, weekly_hours
from studies.models import Study

DAYS = 7
NAMES_SHOWN = 12  # per hour; the count is always exact
_EPSILON = timedelta(microseconds=1)


@dataclass
class Hour:
    """One cell: a local hour of the center's day (UTC bounds), and who covers it. ``count`` is None for an
    hour the clock skips (spring forward)."""

    day: date
    hour: int
    starts_at: datetime
    ends_at: datetime
    count: int | None = None
    radiologists: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.day:%a} {self.hour:02d}:00"

    @property
    def level(self) -> str:
        """The heat map's colour class."""
        if self.count is None:
            return "none"
        return "gap" if self.count == 0 else "thin" if self.count == 1 else "few" if self.count < 4 else "many"


@dataclass
class Day:
    day: date
    hours: list[Hour]

    @property
    def label(self) -> str:
        return f"{self.day:%a %b} {self.day.day}"


@dataclass
class CoverageMap:
    center: Organization
    jurisdiction: str
    time_zone: str
    modality: str
    subspecialty: str
    modalities: list[str]  # the center's, from its studies (the chooser)
    days: list[Day]
    gaps: list[str]  # "Sat 02:00–06:00: no MR reader licensed in US-CO"
    thin_spots: list[str]  # "Sun 03:00–05:00: one MR reader (Dr Ada Quinn)"

    @property
    def hours(self) -> list[Hour]:
        return [h for d in self.days for h in d.hours]


def center_modalities(center: Organization) -> list[str]:
    """The modalities of the center's studies (DICOM codes a radiologist reads), in the vocabulary's order."""
    seen = set()
    for text in (Study.objects.filter(organization=center, deleted_at__isnull=True).order_by()
                 .values_list("modalities_in_study", flat=True).distinct()):
        seen.update(code for code in text.replace(",", "\\").split("\\") if code)
    return [m for m in Modality.values if m in seen]


def _cells(zone: ZoneInfo, first: date) -> list[Day]:
    days = []
    for offset in range(DAYS):
        day = first + timedelta(days=offset)
        hours = []
        for hour in range(24):
            starts = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
            end_day, end_hour = (day, hour + 1) if hour < 23 else (day + timedelta(days=1), 0)
            ends = datetime.combine(end_day, time(end_hour), tzinfo=zone).astimezone(UTC)
            hours.append(Hour(day=day, hour=hour, starts_at=starts, ends_at=ends, count=None if ends <= starts else 0))
        days.append(Day(day=day, hours=hours))
    return days


def _mask(cells: list[Hour], intervals: list[tuple[datetime, datetime]]) -> int:
    """Bit i set when cell i lies wholly inside one of ``intervals`` (sorted, merged)."""
    bits, j = 0, 0
    for i, cell in enumerate(cells):
        while j < len(intervals) and intervals[j][1] <= cell.starts_at:
            j += 1
        if cell.count is not None and j < len(intervals) and intervals[j][0] <= cell.starts_at \
                and cell.ends_at <= intervals[j][1]:
            bits |= 1 << i
    return bits


def _boundaries(rid: int, credentials: Credentials) -> set[date]:
    """The days on which one of the reader's credentials starts or stops counting."""
    out = set()
    for kind in (credentials.licenses or {}, credentials.insurance, credentials.mqsa, credentials.privileges):
        for row in kind.get(rid, ()):
            start = getattr(row, "valid_from", None) or getattr(row, "granted_on", None)
            if start:
                out.add(start)
            if row.expires_on:
                out.add(row.expires_on + timedelta(days=1))
    return out


def coverage_map(*, actor: Actor, center: Organization, modality: str | None = None, subspecialty: str | None = None,
                 at: datetime | None = None) -> CoverageMap:
    """The center's coverage for 7 days from today (local midnight) for ``modality`` (default: the first of the
    center's modalities, else CT) and optionally ``subspecialty``. Center admins and viewers; others 404."""
    if not policy.can_view_coverage(actor, center):
        raise NotFound()
    modality = (modality or "").strip().upper()
    subspecialty = (subspecialty or "").strip()
    if modality and modality not in Modality.values:
        raise ApplicationError.for_field("modality", f"{modality!r} is not a modality code.")
    if subspecialty and subspecialty not in Subspecialty.values:
        raise ApplicationError.for_field("subspecialty", f"Unknown subspecialty {subspecialty!r}.")
    modalities = center_modalities(center)
    modality = modality or (modalities[0] if modalities else Modality.CT)
    zone = ZoneInfo(center.time_zone)
    days = _cells(zone, (at or timezone.now()).astimezone(zone).date())
    cells = [h for d in days for h in d.hours]
    starts_at, ends_at = cells[0].starts_at, cells[-1].ends_at
    utc_days = [starts_at.date() + timedelta(days=n) for n in range((ends_at.date() - starts_at.date()).days + 1)]

    # The pool: active accounts with a counted license of the jurisdiction that covers some day of the map.
    country, region = parse_jurisdiction(center.jurisdiction)
    licensed = (License.objects.filter(country=country, region=region, status__in=COUNTED, expires_on__gte=utc_days[0])
                .filter(Q(issued_on__isnull=True) | Q(issued_on__lte=utc_days[-1])).order_by().values("radiologist_id"))
    pool = RadiologistProfile.objects.filter(pk__in=licensed, user__is_active=True)
    ids = pool.values("pk")
    blocked = CenterSettings.blocked_radiologists.through.objects.filter(
        centersettings__center_id=center.pk, radiologistprofile_id=OuterRef("pk"))
    rows = list(pool.annotate(full_name=F("user__full_name"), email=F("user__email"), reads=as_text("modalities"),
                              specialties=as_text("subspecialties"), weekly_hours=weekly_hours(),
                              blocked=Exists(blocked))
                .values_list("id", "display_name", "home_time_zone", "full_name", "email", "reads", "specialties",
                             "weekly_hours", "blocked", named=True))
    questions = {day: EligibilityQuestion(jurisdiction=center.jurisdiction, modalities=[modality],
                                          subspecialty=subspecialty or None, center=center, at=day) for day in utc_days}
    credentials = questions[utc_days[0]].credentials(ids)
    off, extra = time_off(ids, starts_at)

    cell_days = [(utc_days.index(c.starts_at.date()), utc_days.index((c.ends_at - _EPSILON).date())) for c in cells]
    shift_masks: dict[tuple, int] = {}
    eligible_masks: dict[tuple[bool, ...], int] = {}
    by_mask: dict[int, list[str]] = {}
    for row in rows:
        if row.blocked:
            continue

        def reasons(day: date, row=row) -> list[str]:
            return questions[day].reasons(row.id, is_active=True, modalities=json_values(row.reads),
                                          subspecialties=json_values(row.specialties), credentials=credentials)

        if reasons(utc_days[0]) and not any(utc_days[0] < d <= utc_days[-1] for d in _boundaries(row.id, credentials)):
            continue  # not eligible, and nothing changes during the week
        if any(utc_days[0] < d <= utc_days[-1] for d in _boundaries(row.id, credentials)):
            eligible_days = tuple(not reasons(day) for day in utc_days)
        else:
            eligible_days = (True,) * len(utc_days)
        if eligible_days not in eligible_masks:
            eligible_masks[eligible_days] = sum(1 << i for i, (a, b) in enumerate(cell_days)
                                                if eligible_days[a] and eligible_days[b])
        hours = parse_hours(row.weekly_hours)
        own_off, own_extra = off.get(row.id, []), extra.get(row.id, [])
        key = (row.home_time_zone, hours) if not own_off and not own_extra else None
        shift = shift_masks.get(key) if key else None
        if shift is None:
            shift = _mask(cells, schedule.on_shift_intervals(hours, row.home_time_zone, own_off, own_extra,
                                                             starts_at, ends_at))
            if key:
                shift_masks[key] = shift
        mask = shift & eligible_masks[eligible_days]
        if mask:
            by_mask.setdefault(mask, []).append(row.display_name or row.full_name or row.email)

    for mask, names in by_mask.items():
        for i, cell in enumerate(cells):
            if mask >> i & 1:
                cell.count += len(names)
                if len(cell.radiologists) < NAMES_SHOWN:
                    cell.radiologists.extend(names)
    for cell in cells:
        cell.radiologists = sorted(cell.radiologists)[:NAMES_SHOWN]
    what = f"{modality} {subspecialty}" if subspecialty else modality
    gaps = [f"{span}: no {what} reader licensed in {center.jurisdiction}" for span, _ in _runs(cells, 0)]
    thin = [f"{span}: one {what} reader ({', '.join(names)})" for span, names in _runs(cells, 1)]
    return CoverageMap(center=center, jurisdiction=center.jurisdiction, time_zone=center.time_zone, modality=modality,
                       subspecialty=subspecialty, modalities=modalities or [modality], days=days, gaps=gaps,
                       thin_spots=thin)


def _runs(cells: list[Hour], count: int) -> list[tuple[str, list[str]]]:
    """Consecutive hours with exactly ``count`` readers, merged, in words (an hour the clock skips joins its
    neighbours); for one reader, a run also keeps to the same reader."""
    runs: list[list[Hour]] = []
    for cell in cells:
        if cell.count is None:
            continue
        if cell.count == count:
            last = runs[-1] if runs else None
            if last and last[-1].ends_at == cell.starts_at and last[-1].radiologists == cell.radiologists:
                last.append(cell)
                continue
            runs.append([cell])
    return [(_span(run[0], run[-1]), run[0].radiologists) for run in runs]


def _span(first: Hour, last: Hour) -> str:
    """``Sat 02:00–06:00``, ``Sat 22:00–24:00``, ``Fri 22:00–Sat 06:00``."""
    end_day, end_hour = last.day, last.hour + 1
    if end_day == first.day:
        return f"{first.label}–{end_hour:02d}:00"
    if end_hour == 24:
        end_day, end_hour = end_day + timedelta(days=1), 0
    return f"{first.label}–{end_day:%a} {end_hour:02d}:00"
