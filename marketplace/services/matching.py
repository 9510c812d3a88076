"""THE matching rule: who may and should read this request now, ranked, with every reason for everyone left out.

Rules, each adding a reason a center can read when it fails:
- eligibility as ``accounts.credentials.eligibility`` answers it at this moment (license of the
  jurisdiction, modality, subspecialty, MQSA, malpractice cover, the center's privileges);
- the priority is one they take;
- availability: on shift now (weekly reading hours in their own zone, minus time off), or next on
  shift early enough to finish before the deadline;
- capacity: fewer active assignments than their maximum;
- conflicts: never the original reader of an overread / second opinion nor anyone of that reader's
  group; never a reader the center blocked; a direct request goes to its one radiologist or group;
- price: their minimum rate for the modality and priority is not above the quote.
Ranked: the center's preferred readers first, then on-time rate, then current load.

Queries are constant in the number of radiologists: the profiles with their annotations, one per
credential kind the eligibility rule needs, the reading hours and the time off (at most 8).

Two uses: ``match(..., eligible_only=True)`` is the hot path of posting, the clocks and offers — it
narrows the pool in SQL to those who could be eligible (active, a license covering today, under
capacity) and reports only the eligible; the default also explains every reader left out, for the
center's "why not" page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Exists, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.credentials.eligibility import eligibility_bulk, may_be_eligible
from accounts.credentials.vocab import modality_read_by, parse_jurisdiction
from accounts.models import License, Membership, Organization, RadiologistProfile
from marketplace import schedule
from marketplace.models import (
    Assignment,
    Audience,
    CenterSettings,
    MinimumRate,
    ReadingHours,
    ReadRequest,
    TimeOff,
)

# How long a reader needs once on shift: someone off shift now is available when their next shift
# starts at least this long before the deadline.
READ_ALLOWANCE = {"stat": timedelta(minutes=30), "urgent": timedelta(hours=1), "routine": timedelta(hours=1)}
UNKNOWN_ON_TIME = 0.9  # the rate a reader without finished reads is ranked with


@dataclass
class Candidate:
    """One radiologist as matching sees them for one request."""

    radiologist: RadiologistProfile
    group_name: str = ""
    reasons: list[str] = field(default_factory=list)  # why not (empty: may read)
    on_shift: bool = False
    available_from: datetime | None = None  # next shift start, for those who can still finish in time
    load: int = 0
    capacity: int = 0
    finished: int = 0
    on_time: int = 0
    preferred: bool = False  # the center's or the request's preferred reader
    rank: int = 0
    rank_reasons: list[str] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.finished if self.finished else None

    @property
    def name(self) -> str:
        return self.radiologist.name


@dataclass
class MatchResult:
    read_request: ReadRequest
    at: datetime
    candidates: list[Candidate]  # eligible, ranked
    excluded: list[Candidate]  # with reasons, by name

    @property
    def on_shift(self) -> list[Candidate]:
        return [c for c in self.candidates if c.on_shift]

    def reasons_seen(self) -> set[str]:
        return {reason for c in self.excluded for reason in c.reasons}


def _center_settings(read_request: ReadRequest) -> CenterSettings | None:
    if not ReadRequest.center.is_cached(read_request):  # the center and its settings in one query
        read_request.center = Organization.objects.select_related("marketplace_settings").get(
            pk=read_request.center_id)
    try:
        return read_request.center.marketplace_settings
    except CenterSettings.DoesNotExist:
        return None


def _group_memberships(organizations) -> QuerySet[Membership]:
    return Membership.objects.filter(is_active=True, organization__kind=Organization.Kind.RADIOLOGY_GROUP,
                                     organization__in=organizations)


def _pool(read_request: ReadRequest, *, radiologist_ids: list[int] | None, everyone: bool) -> QuerySet:
    """The radiologists considered: those with a license (any status) in the jurisdiction, plus the
    request's named readers; or exactly ``radiologist_ids``; or ``everyone``."""
    profiles = RadiologistProfile.objects.all()
    if radiologist_ids is not None:
        return profiles.filter(pk__in=radiologist_ids)
    if everyone:
        return profiles
    country, region = parse_jurisdiction(read_request.jurisdiction)
    licensed = License.objects.filter(country=country, region=region).values("radiologist_id")
    named = Q(pk__in=licensed)
    if read_request.direct_radiologist_id:
        named |= Q(pk=read_request.direct_radiologist_id)
    return profiles.filter(named)


def _audience_only(pool: QuerySet, read_request: ReadRequest) -> QuerySet:
    """A direct request's pool is its one reader or its group's members (the rule would refuse everyone else)."""
    if read_request.audience != Audience.DIRECT:
        return pool
    if read_request.direct_radiologist_id:
        return pool.filter(pk=read_request.direct_radiologist_id)
    return pool.filter(user__in=_group_memberships([read_request.direct_group_id]).values("user"))


def _annotated(pool: QuerySet, read_request: ReadRequest, settings: CenterSettings | None) -> QuerySet:
    """Load, on-time record, group, conflicts, preference and minimum rate: one query with the profiles."""
    active = (Assignment.objects.filter(radiologist=OuterRef("pk"), status=Assignment.Status.ACTIVE)
              .values("radiologist").annotate(n=Count("id")).values("n"))
    finished = (Assignment.objects.filter(radiologist=OuterRef("pk"), on_time__isnull=False)
                .values("radiologist").annotate(n=Count("id")).values("n"))
    on_time = (Assignment.objects.filter(radiologist=OuterRef("pk"), on_time=True)
               .values("radiologist").annotate(n=Count("id")).values("n"))
    group_name = (Membership.objects.filter(user=OuterRef("user"), is_active=True,
                                            organization__kind=Organization.Kind.RADIOLOGY_GROUP)
                  .order_by("organization__name").values("organization__name")[:1])
    rate = (MinimumRate.objects.filter(radiologist=OuterRef("pk"), modality__in=read_request.modalities,
                                       priority=read_request.priority, currency=read_request.currency)
            .values("radiologist").annotate(top=Max("cents")).values("top"))
    zero = Value(0, output_field=IntegerField())
    queryset = pool.annotate(
        load=Coalesce(Subquery(active, output_field=IntegerField()), zero),
        finished=Coalesce(Subquery(finished, output_field=IntegerField()), zero),
        on_time_count=Coalesce(Subquery(on_time, output_field=IntegerField()), zero),
        group_name=Subquery(group_name),
        minimum_rate=Subquery(rate, output_field=IntegerField()),
    )
    if read_request.original_reader_id:
        reader_groups = _group_memberships(Organization.objects.all()).filter(
            user__radiologist_profile=read_request.original_reader_id).values("organization")
        queryset = queryset.annotate(in_original_group=Exists(
            _group_memberships(reader_groups).filter(user=OuterRef("user"))))
    if read_request.audience == Audience.DIRECT and read_request.direct_group_id:
        queryset = queryset.annotate(in_direct_group=Exists(
            _group_memberships([read_request.direct_group_id]).filter(user=OuterRef("user"))))
    if read_request.audience == Audience.PREFERRED:
        queryset = queryset.annotate(
            named_reader=Exists(ReadRequest.preferred_radiologists.through.objects.filter(
                readrequest_id=read_request.pk, radiologistprofile_id=OuterRef("pk"))),
            in_named_group=Exists(_group_memberships(
                ReadRequest.preferred_groups.through.objects.filter(readrequest_id=read_request.pk)
                .values("organization_id")).filter(user=OuterRef("user"))))
    if settings is not None:
        queryset = queryset.annotate(
            center_preferred=Exists(CenterSettings.preferred_radiologists.through.objects.filter(
                centersettings_id=settings.pk, radiologistprofile_id=OuterRef("pk"))),
            blocked=Exists(CenterSettings.blocked_radiologists.through.objects.filter(
                centersettings_id=settings.pk, radiologistprofile_id=OuterRef("pk"))))
    return queryset


def _hours_and_time_off(pool: QuerySet, at: datetime):
    """Reading hours and time off of the pool, as plain tuples (two queries, no model instances)."""
    hours: dict[int, list] = {}
    for radiologist_id, weekday, starts, ends in ReadingHours.objects.filter(
            radiologist__in=pool.values("pk")).values_list("radiologist_id", "weekday", "starts", "ends"):
        hours.setdefault(radiologist_id, []).append((weekday, starts, ends))
    off: dict[int, list] = {}
    horizon = at + timedelta(days=schedule.LOOKAHEAD_DAYS)
    for radiologist_id, starts_at, ends_at in TimeOff.objects.filter(
            radiologist__in=pool.values("pk"), ends_at__gt=at, starts_at__lt=horizon).values_list(
            "radiologist_id", "starts_at", "ends_at"):
        off.setdefault(radiologist_id, []).append((starts_at, ends_at))
    return hours, off


def _conflict_and_audience_reasons(profile, read_request: ReadRequest) -> list[str]:
    reasons = []
    if read_request.original_reader_id and profile.pk == read_request.original_reader_id:
        reasons.append("original reader of this study")
    elif getattr(profile, "in_original_group", False):
        reasons.append(f"in the original reader's group ({profile.group_name})")
    if getattr(profile, "blocked", False):
        reasons.append(f"blocked by {read_request.center.name}")
    if read_request.audience == Audience.DIRECT:
        if read_request.direct_radiologist_id and profile.pk != read_request.direct_radiologist_id:
            reasons.append("sent directly to another radiologist")
        elif read_request.direct_group_id and not getattr(profile, "in_direct_group", False):
            reasons.append("sent directly to another group")
    return reasons


def _availability_reason(candidate: Candidate, hours, off, zone: str, read_request: ReadRequest,
                         at: datetime, seen: dict | None = None) -> str | None:
    # Readers without time off who share a weekly schedule and a zone share the answer: ``seen`` keeps it
    # for one call (thousands of readers, a few dozen distinct schedules).
    key = (zone, tuple(sorted(hours))) if seen is not None and not off else None
    state = seen.get(key) if key is not None else None
    if state is None:
        state = schedule.availability(hours, zone, off, at)
        if key is not None:
            seen[key] = state
    if state.on_shift:
        candidate.on_shift = True
        return None
    if not state.has_hours:
        return "no reading hours entered"
    if state.next_start is None:
        return "no reading hours in the coming week"
    allowance = READ_ALLOWANCE.get(read_request.priority, timedelta(hours=1))
    if state.next_start + allowance <= read_request.deadline:
        candidate.available_from = state.next_start
        return None
    label = schedule.local_label(state.next_start, zone, at)
    return f"on time off until {label}" if state.on_time_off else f"off shift until {label}"


def _rank(candidates: list[Candidate], read_request: ReadRequest, at: datetime) -> None:
    def key(c: Candidate):
        rate = c.on_time_rate if c.on_time_rate is not None else UNKNOWN_ON_TIME
        return (not c.preferred, not c.on_shift, -rate, c.load / max(c.capacity, 1), c.name)

    candidates.sort(key=key)
    for position, c in enumerate(candidates, 1):
        c.rank = position
        reasons = []
        if c.preferred:
            reasons.append(f"preferred by {read_request.center.name}")
        if c.on_shift:
            reasons.append("on shift now")
        else:
            starts = schedule.local_label(c.available_from, c.radiologist.home_time_zone, at)
            reasons.append(f"on shift from {starts}")
        reasons.append(f"on time {round(100 * c.on_time_rate)} % ({c.on_time} of {c.finished})"
                       if c.finished else "no finished reads yet")
        reasons.append(f"load {c.load} of {c.capacity}")
        c.rank_reasons = reasons


def match(read_request: ReadRequest, *, at: datetime | None = None, radiologist_ids: list[int] | None = None,
          everyone: bool = False, eligible_only: bool = False) -> MatchResult:
    """Every considered radiologist for ``read_request`` at ``at``: the eligible ranked, the rest with reasons.

    ``eligible_only``: the same ranked candidates, but ``excluded`` holds only those who got past the
    SQL narrowing (active, licensed today, under capacity) — for callers that never show reasons."""
    at = at or timezone.now()
    settings = _center_settings(read_request)
    pool = _pool(read_request, radiologist_ids=radiologist_ids, everyone=everyone)
    if eligible_only:
        pool = may_be_eligible(_audience_only(pool, read_request), jurisdiction=read_request.jurisdiction, at=at)
    queryset = _annotated(pool, read_request, settings)
    if eligible_only:
        queryset = queryset.filter(load__lt=F("max_concurrent_cases"))
    answers = eligibility_bulk(queryset, jurisdiction=read_request.jurisdiction, modalities=read_request.modalities,
                               subspecialty=read_request.subspecialty or None, center=read_request.center, at=at)
    hours, off = _hours_and_time_off(pool, at)
    candidates, excluded, seen = [], [], {}
    for profile_id, answer in answers.items():
        profile = answer.radiologist
        candidate = Candidate(
            radiologist=profile, group_name=profile.group_name or "", reasons=list(answer.reasons),
            load=profile.load, capacity=profile.max_concurrent_cases, finished=profile.finished,
            on_time=profile.on_time_count,
            preferred=bool(getattr(profile, "center_preferred", False) or getattr(profile, "named_reader", False)
                           or getattr(profile, "in_named_group", False)))
        if read_request.priority not in (profile.priorities or []):
            candidate.reasons.append(f"does not take {read_request.get_priority_display()} reads")
        candidate.reasons += _conflict_and_audience_reasons(profile, read_request)
        if profile.load >= profile.max_concurrent_cases:
            candidate.reasons.append(f"at capacity ({profile.load} of {profile.max_concurrent_cases})")
        if profile.minimum_rate is not None and profile.minimum_rate > read_request.quoted_cents:
            candidate.reasons.append(f"minimum rate {profile.minimum_rate} cents above quote "
                                     f"{read_request.quoted_cents}")
        reason = _availability_reason(candidate, hours.get(profile_id, []), off.get(profile_id, []),
                                      profile.home_time_zone, read_request, at, seen)
        if reason:
            candidate.reasons.append(reason)
        (excluded if candidate.reasons else candidates).append(candidate)
    _rank(candidates, read_request, at)
    excluded.sort(key=lambda c: c.name)
    return MatchResult(read_request=read_request, at=at, candidates=candidates, excluded=excluded)


def reads_modalities(profile: RadiologistProfile, modalities: list[str]) -> bool:
    return all(modality_read_by(m, profile.modalities) for m in modalities)
