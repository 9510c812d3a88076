"""The hot path's pool: what matching reads of every radiologist who could read in one jurisdiction on one day,
whatever the request, kept per process while the database's pool version stands still.

Matching's hot path (posting, the clocks, offers) asked PostgreSQL for the same ~2,000 rows of a big state on
every call — the profiles with their weekly hours, groups and minimum rates, the malpractice cover, MQSA and
time off: 13–27 ms in PostgreSQL and ~20 ms of Python building rows at 10,000 radiologists (bench/README.md).
They change rarely. What belongs to the request (the center's lists, the audience, the caseload, the
center's privileges) is still read on every call.

The version (migration 0008) moves when a transaction that wrote a table the pool reads commits. A call reads
it first; an older snapshot is rebuilt and labelled with the version read *before* building, so under read
committed a commit landing meanwhile can only make the data newer than its label (rebuilt next call), never
older. A transaction that wrote one of those tables itself reads the database (its writes are not counted
until it commits), and so does SQLite, which has no counter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Aggregate, F, OuterRef, Subquery, TextField, Value
from django.db.models.functions import Cast, Concat

from accounts.credentials.eligibility import (
    COUNTED,
    InsuranceRow,
    MqsaRow,
    as_text,
    by_radiologist,
    insurance_by_radiologist,
    json_values,
    licensed_on,
)
from accounts.models import MalpracticeInsurance, Membership, MqsaQualification, Organization, RadiologistProfile
from marketplace import schedule
from marketplace.coverage_models import ExtraShift
from marketplace.models import MinimumRate, ReadingHours, TimeOff

KEPT = 64  # snapshots a process keeps (jurisdictions × days), the least recently used dropped first
_SNAPSHOTS: OrderedDict[tuple, Pool] = OrderedDict()
_LOCK = threading.Lock()  # gunicorn's gthread workers share a process's snapshots between threads


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One radiologist as the hot path reads them: active, with a counted license covering the day."""

    id: int
    name: str
    home_time_zone: str
    capacity: int
    reads: frozenset[str]
    specialties: frozenset[str]
    takes: frozenset[str]
    hours: tuple[tuple[int, time, time], ...]
    reviews: int
    concordant: int
    groups: frozenset[int]  # the radiology groups they are an active member of
    rates: tuple[tuple[str, str, str, int], ...]  # their minimum rates: (modality, priority, currency, cents)

    def minimum_rate(self, modalities, priority: str, currency: str) -> int | None:
        """The highest of their minimum rates for any of ``modalities`` at ``priority`` in ``currency``."""
        cents = [c for m, p, cur, c in self.rates if p == priority and cur == currency and m in modalities]
        return max(cents) if cents else None


@dataclass(frozen=True)
class Pool:
    version: int | None  # None: read in a transaction that wrote the pool's tables, or on SQLite (not kept)
    day: date
    rows: tuple[PoolRow, ...]
    insurance: dict[int, list[InsuranceRow]]
    mqsa: dict[int, list[MqsaRow]]
    time_off: dict[int, list[tuple[datetime, datetime]]]  # from the day's start to LOOKAHEAD_DAYS after its end
    extra_shifts: dict[int, list[tuple[datetime, datetime]]]
    # What calls work out from the snapshot alone and keep with it (matching: the rule's reasons by question,
    # the weekly windows by schedule and day): they go when it does.
    memos: dict[str, dict] = field(default_factory=dict, compare=False, repr=False)

    def memo(self, name: str) -> dict:
        return self.memos.setdefault(name, {})

    def time_off_at(self, at: datetime) -> tuple[dict[int, list], dict[int, list]]:
        """Time off and extra shifts as ``matching`` reads them at ``at``: ending after it, starting within the
        look-ahead."""
        horizon = at + timedelta(days=schedule.LOOKAHEAD_DAYS)

        def within(spans: dict[int, list]) -> dict[int, list]:
            kept = {}
            for radiologist_id, rows in spans.items():
                rows = [(s, e) for s, e in rows if e > at and s < horizon]
                if rows:
                    kept[radiologist_id] = rows
            return kept

        return within(self.time_off), within(self.extra_shifts)


def pool_for(jurisdiction: str, at: datetime) -> Pool:
    """The pool of ``jurisdiction`` on ``at``'s day (UTC): this process's snapshot while the version stands
    still, else read now (and kept, unless this transaction wrote the pool's tables)."""
    day = at.astimezone(UTC).date()
    version = _version()
    key = (connection.settings_dict["NAME"], jurisdiction, day)
    if version is not None:
        with _LOCK:
            pool = _SNAPSHOTS.get(key)
            if pool is not None and pool.version == version:
                _SNAPSHOTS.move_to_end(key)
                return pool
    pool = _read(jurisdiction, day, version)  # outside the lock: two threads may both read, the last one kept
    if version is not None:
        with _LOCK:
            _SNAPSHOTS[key] = pool
            while len(_SNAPSHOTS) > KEPT:
                _SNAPSHOTS.popitem(last=False)
    return pool


def _version() -> int | None:
    """The pool's version, or None when it says nothing: SQLite, or this transaction wrote the pool's tables."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT value, current_setting('readroom.pool_dirty', true) FROM readroom_pool_version")
        value, dirty = cursor.fetchone()
    return None if dirty == "1" else value


class _Joined(Aggregate):
    """Text values joined with commas, in no particular order (PostgreSQL's STRING_AGG, SQLite's GROUP_CONCAT)."""

    function = "STRING_AGG"
    template = "%(function)s(%(expressions)s, ',')"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="GROUP_CONCAT", **extra_context)


def _joined(queryset, *parts) -> Subquery:
    """One text per radiologist of ``queryset``'s rows (correlated on ``radiologist``), each row its ``parts``
    joined with spaces: a column of the profiles' query instead of a query of its own."""
    words = [Cast(p, TextField()) if isinstance(p, str) else p for p in parts]
    spaced = [w for word in words for w in (word, Value(" "))][:-1]
    row = Concat(*spaced, output_field=TextField()) if len(spaced) > 1 else spaced[0]
    return Subquery(queryset.order_by().values("radiologist").annotate(joined=_Joined(row)).values("joined"),
                    output_field=TextField())


def weekly_hours() -> Subquery:
    """A radiologist's weekly reading hours as one text (``weekday starts ends`` joined with commas); the few
    dozen distinct schedules are parsed once (``parse_hours``)."""
    return _joined(ReadingHours.objects.filter(radiologist=OuterRef("pk")), "weekday", "starts", "ends")


def parse_hours(text: str | None) -> tuple[tuple[int, time, time], ...]:
    """``weekly_hours``'s text back as (weekday, starts, ends) windows, sorted."""
    if not text:
        return ()
    windows = []
    for item in text.split(","):
        weekday, starts, ends = item.split(" ")
        windows.append((int(weekday), time.fromisoformat(starts), time.fromisoformat(ends)))
    return tuple(sorted(windows))


def _parse_groups(text: str | None) -> frozenset[int]:
    return frozenset(int(g) for g in text.split(",")) if text else frozenset()


def _parse_rates(text: str | None) -> tuple[tuple[str, str, str, int], ...]:
    if not text:
        return ()
    rates = []
    for item in text.split(","):
        modality, priority, currency, cents = item.split(" ")
        rates.append((modality, priority, currency, int(cents)))
    return tuple(rates)


def _read(jurisdiction: str, day: date, version: int | None) -> Pool:
    """The pool as the database has it now: four queries whatever its size."""
    ids = licensed_on(jurisdiction, day)
    groups = Membership.objects.filter(user=OuterRef("user"), is_active=True,
                                       organization__kind=Organization.Kind.RADIOLOGY_GROUP)
    profiles = RadiologistProfile.objects.filter(pk__in=ids, user__is_active=True).values_list(
        "id", "display_name", "user__full_name", "user__email", "home_time_zone", "max_concurrent_cases",
        as_text("modalities"), as_text("subspecialties"), as_text("priorities"), weekly_hours(),
        F("quality__reviews"), F("quality__concordant"),
        Subquery(groups.order_by().values("user").annotate(joined=_Joined(Cast("organization_id", TextField())))
                 .values("joined"), output_field=TextField()),
        _joined(MinimumRate.objects.filter(radiologist=OuterRef("pk")), "modality", "priority", "currency", "cents"))
    schedules: dict[str | None, tuple] = {}
    rows = []
    for (pk, display_name, full_name, email, zone, capacity, reads, specialties, takes, hours, reviews, concordant,
         group_ids, rates) in profiles:
        if hours not in schedules:
            schedules[hours] = parse_hours(hours)
        rows.append(PoolRow(
            id=pk, name=display_name or full_name or email, home_time_zone=zone, capacity=capacity,  # .name
            reads=json_values(reads), specialties=json_values(specialties), takes=json_values(takes),
            hours=schedules[hours], reviews=reviews or 0, concordant=concordant or 0,
            groups=_parse_groups(group_ids), rates=_parse_rates(rates)))
    insurance = insurance_by_radiologist(MalpracticeInsurance.objects.filter(radiologist_id__in=ids,
                                                                             status__in=COUNTED))
    mqsa = by_radiologist(MqsaQualification.objects.filter(radiologist_id__in=ids, status__in=COUNTED), MqsaRow)
    starts = datetime.combine(day, time(), tzinfo=UTC)  # everything that may matter at any moment of the day
    time_off, extra_shifts = spans(ids, starts, starts + timedelta(days=1 + schedule.LOOKAHEAD_DAYS))
    return Pool(version=version, day=day, rows=tuple(rows), insurance=insurance, mqsa=mqsa, time_off=time_off,
                extra_shifts=extra_shifts)


def time_off(ids, at: datetime) -> tuple[dict[int, list], dict[int, list]]:
    """Time off and extra shifts of ``ids`` in the days ``schedule.availability`` looks at from ``at``."""
    return spans(ids, at, at + timedelta(days=schedule.LOOKAHEAD_DAYS))


def spans(ids, starts_at: datetime, horizon: datetime) -> tuple[dict[int, list], dict[int, list]]:
    """Time off and extra shifts of ``ids`` (a subquery or ids) that end after ``starts_at`` and start before
    ``horizon``, as (starts, ends) by radiologist: one query (a UNION), so extra shifts cost no query of their
    own."""
    off: dict[int, list] = {}
    extra: dict[int, list] = {}

    def rows(model, kind: int):
        return model.objects.filter(radiologist_id__in=ids, ends_at__gt=starts_at, starts_at__lt=horizon
                                    ).order_by().values_list("radiologist_id", "starts_at", "ends_at", Value(kind))

    for radiologist_id, starts, ends, kind in rows(TimeOff, 0).union(rows(ExtraShift, 1), all=True):
        (extra if kind else off).setdefault(radiologist_id, []).append((starts, ends))
    return off, extra
