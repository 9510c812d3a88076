"""Quality figures per reader and modality over a period (issue 16, item 3): reads, on-time rate, median
turnaround, final RADPEER reviews and their scores; a monthly trend; and operations' outliers.

Every selector runs a fixed number of queries however many readers there are (aggregates grouped by reader
and modality, plus one list of turnaround times: SQLite has no portable median). A read is a completed
assignment whose request is not a peer review, counted when its request was reported in ``[start, end)``;
a review counts once final (after arbitration where it was needed), when its ``final_at`` is in the period.
A read's modality is its request's first, "OT" when none (as ``reporting.quality.sampling`` stratifies).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from django.db.models import CharField, Count, DateField, Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, TruncMonth

from accounts.models import Membership, Organization, RadiologistProfile
from marketplace.models import Assignment, Kind
from reporting.quality_models import PeerReview, Score

ALL_MODALITIES = ""  # the modality of a reader's overall row
DISCREPANCIES = (Score.TWO_A, Score.TWO_B, Score.THREE_A, Score.THREE_B)
SIGNIFICANT = (Score.TWO_B, Score.THREE_A, Score.THREE_B)  # likely significant or should have been made
DEFAULT_MIN_REVIEWS = 10  # fewer reviews say too little to call anyone an outlier


def rate(part: int, whole: int) -> float | None:
    """``part / whole``, None when nothing was counted (no rate rather than a misleading 0 %)."""
    return part / whole if whole else None


@dataclass
class ReaderRow:
    """One reader's figures for one modality (``ALL_MODALITIES``: every modality together)."""

    reader_id: int
    reader_name: str
    modality: str
    reads: int = 0
    on_time: int = 0
    median_turnaround_minutes: float | None = None
    reviews: int = 0
    scores: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Score.values, 0))

    @property
    def is_overall(self) -> bool:
        return self.modality == ALL_MODALITIES

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.on_time, self.reads)

    @property
    def agreement_rate(self) -> float | None:
        return rate(self.scores[Score.CONCUR], self.reviews)

    @property
    def discrepancy_rates(self) -> dict[str, float | None]:
        return {score: rate(self.scores[score], self.reviews) for score in DISCREPANCIES}

    @property
    def significant_rate(self) -> float | None:
        return rate(sum(self.scores[score] for score in SIGNIFICANT), self.reviews)


def _read_modality():
    return Coalesce(KeyTextTransform("0", "read_request__modalities"), Value("OT"), output_field=CharField())


def _member_reader_ids(group: Organization) -> QuerySet:
    return RadiologistProfile.objects.filter(user__memberships__organization=group,
                                             user__memberships__is_active=True).values("pk")


def _reads(*, readers, center, group, start: datetime, end: datetime) -> QuerySet[Assignment]:
    reads = Assignment.objects.filter(status=Assignment.Status.COMPLETED, read_request__reported_at__gte=start,
                                      read_request__reported_at__lt=end).exclude(read_request__kind=Kind.PEER_REVIEW)
    if readers is not None:
        reads = reads.filter(radiologist_id__in=readers)
    if center is not None:
        reads = reads.filter(read_request__center=center)
    if group is not None:
        reads = reads.filter(radiologist_id__in=_member_reader_ids(group))
    return reads


def _reviews(*, readers, center, group, start: datetime, end: datetime) -> QuerySet[PeerReview]:
    reviews = PeerReview.objects.filter(status=PeerReview.Status.FINAL, final_at__gte=start, final_at__lt=end)
    if readers is not None:
        reviews = reviews.filter(reader_id__in=readers)
    if center is not None:
        reviews = reviews.filter(center=center)
    if group is not None:
        reviews = reviews.filter(reader_id__in=_member_reader_ids(group))
    return reviews


def _names(reader_ids) -> dict[int, str]:
    return {p.pk: p.name for p in RadiologistProfile.objects.filter(pk__in=set(reader_ids)).select_related("user")}


def _reader_ids(readers) -> list[int] | None:
    if readers is None:
        return None
    return [r if isinstance(r, int) else r.pk for r in readers]


def reader_stats(*, readers=None, center: Organization | None = None, group: Organization | None = None,
                 start: datetime, end: datetime) -> list[ReaderRow]:
    """Per reader: an overall row, then one per modality (alphabetical); readers by name. ``readers``
    (profiles or ids) are listed even with nothing in the period; otherwise those with a read or a review.
    Four queries whatever the number of readers."""
    ids = _reader_ids(readers)
    scope = {"readers": ids, "center": center, "group": group, "start": start, "end": end}
    rows: dict[tuple[int, str], ReaderRow] = {}

    def row(reader_id: int, modality: str) -> ReaderRow:
        return rows.setdefault((reader_id, modality), ReaderRow(reader_id, "", modality))

    reads = _reads(**scope).annotate(modality=_read_modality())
    for item in reads.values("radiologist_id", "modality").annotate(
            count=Count("id"), on_time_count=Count("id", filter=Q(on_time=True))).order_by():
        for modality in (item["modality"], ALL_MODALITIES):
            target = row(item["radiologist_id"], modality)
            target.reads += item["count"]
            target.on_time += item["on_time_count"]
    minutes: dict[tuple[int, str], list[float]] = defaultdict(list)
    for reader_id, modality, published, reported in reads.filter(read_request__published_at__isnull=False) \
            .values_list("radiologist_id", "modality", "read_request__published_at", "read_request__reported_at"):
        taken = (reported - published).total_seconds() / 60
        minutes[reader_id, modality].append(taken)
        minutes[reader_id, ALL_MODALITIES].append(taken)
    for key, values in minutes.items():
        row(*key).median_turnaround_minutes = statistics.median(values)
    score_counts = {f"score_{code}": Count("id", filter=Q(final_score=code)) for code in Score.values}
    for item in _reviews(**scope).values("reader_id", "modality").annotate(count=Count("id"), **score_counts) \
            .order_by():
        for modality in (item["modality"], ALL_MODALITIES):
            target = row(item["reader_id"], modality)
            target.reviews += item["count"]
            for code in Score.values:
                target.scores[code] += item[f"score_{code}"]
    for reader_id in ids or ():
        row(reader_id, ALL_MODALITIES)
    names = _names(reader_id for reader_id, _ in rows)
    for (reader_id, _), target in rows.items():
        target.reader_name = names.get(reader_id, "")
    return sorted(rows.values(), key=lambda r: (r.reader_name.casefold(), r.reader_id, not r.is_overall, r.modality))


@dataclass(frozen=True)
class MonthPoint:
    month: date  # the first day of the month, in the period's time zone
    reads: int
    reviews: int
    concur: int

    @property
    def agreement_rate(self) -> float | None:
        return rate(self.concur, self.reviews)


def _months(start: datetime, end: datetime, zone: ZoneInfo) -> list[date]:
    """The first day of every month that ``[start, end)`` touches, in ``zone``."""
    month = start.astimezone(zone).date().replace(day=1)
    last = (end - timedelta(microseconds=1)).astimezone(zone).date().replace(day=1)
    months = []
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def monthly_trend(*, readers=None, center: Organization | None = None, group: Organization | None = None,
                  start: datetime, end: datetime, zone: str = "UTC") -> list[MonthPoint]:
    """Reads, final reviews and the agreement rate per calendar month of ``zone`` (months with nothing
    included, so a chart shows the gaps). Two queries."""
    tz = ZoneInfo(zone)
    scope = {"readers": _reader_ids(readers), "center": center, "group": group, "start": start, "end": end}
    reads = dict(_reads(**scope).annotate(
        month=TruncMonth("read_request__reported_at", output_field=DateField(), tzinfo=tz))
        .values("month").annotate(count=Count("id")).order_by().values_list("month", "count"))
    reviews = {item["month"]: item for item in _reviews(**scope).annotate(
        month=TruncMonth("final_at", output_field=DateField(), tzinfo=tz)).values("month").annotate(
        count=Count("id"), concur=Count("id", filter=Q(final_score=Score.CONCUR))).order_by()}
    return [MonthPoint(month=month, reads=reads.get(month, 0), reviews=reviews.get(month, {}).get("count", 0),
                       concur=reviews.get(month, {}).get("concur", 0)) for month in _months(start, end, tz)]


@dataclass(frozen=True)
class OutlierRow:
    """A reader whose confirmed significant-discrepancy rate exceeds their baseline's by more than the margin."""

    reader_id: int
    reader_name: str
    baseline: str  # the group's name, or "Platform" for an independent reader
    reviews: int
    significant: int
    baseline_reviews: int
    baseline_significant: int

    @property
    def rate(self) -> float:
        return self.significant / self.reviews

    @property
    def baseline_rate(self) -> float:
        return rate(self.baseline_significant, self.baseline_reviews) or 0.0

    @property
    def excess(self) -> Fraction:
        """Exact (fractions, not floats), so that a rate exactly at the margin is never flagged by rounding."""
        return Fraction(self.significant, self.reviews) - Fraction(self.baseline_significant, self.baseline_reviews)


PLATFORM_BASELINE = "Platform"


def outliers(*, start: datetime, end: datetime, margin: float = 0.05,
             min_reviews: int = DEFAULT_MIN_REVIEWS) -> list[OutlierRow]:
    """Readers (with at least ``min_reviews`` final reviews in the period) whose rate of confirmed 2b, 3a and
    3b scores is above their group's pooled rate (every member's reviews, theirs included) by more than
    ``margin``; a reader in no group is compared with the platform's. A reader in two groups is compared
    with each. Largest excess first. Three queries."""
    per_reader = {item["reader_id"]: (item["count"], item["significant"]) for item in
                  _reviews(readers=None, center=None, group=None, start=start, end=end).values("reader_id")
                  .annotate(count=Count("id"), significant=Count("id", filter=Q(final_score__in=SIGNIFICANT)))
                  .order_by()}
    groups: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for reader_id, group_id, group_name in Membership.objects.filter(
            is_active=True, organization__kind=Organization.Kind.RADIOLOGY_GROUP,
            user__radiologist_profile__in=list(per_reader)).values_list(
            "user__radiologist_profile", "organization_id", "organization__name"):
        groups[reader_id].append((group_id, group_name))
    pooled: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])  # None: the whole platform
    for reader_id, (count, significant) in per_reader.items():
        for key in [None, *(group_id for group_id, _ in groups[reader_id])]:
            pooled[key][0] += count
            pooled[key][1] += significant
    found = []
    for reader_id, (count, significant) in per_reader.items():
        if count < min_reviews:
            continue
        for group_id, group_name in groups[reader_id] or [(None, PLATFORM_BASELINE)]:
            candidate = OutlierRow(reader_id, "", group_name, count, significant, *pooled[group_id])
            if candidate.excess > Fraction(str(margin)):
                found.append(candidate)
    names = _names(row.reader_id for row in found)
    return sorted((OutlierRow(**{**row.__dict__, "reader_name": names.get(row.reader_id, "")}) for row in found),
                  key=lambda r: (-r.excess, r.reader_name.casefold(), r.baseline))
