"""THE matching rule: who may and should read this request now, ranked, with every reason for everyone left out.

Rules, each adding a reason a center can read when it fails:
- eligibility as ``accounts.credentials.eligibility`` answers it at this moment (license of the
  jurisdiction, modality, subspecialty, MQSA, malpractice cover, the center's privileges);
- the priority is one they take;
- availability: on shift now (weekly reading hours in their own zone, plus extra shifts, minus time off), or next on
  shift early enough to finish before the deadline;
- capacity: fewer active assignments than their maximum;
- conflicts: never the original reader of an overread / second opinion nor anyone of that reader's
  group; never a reader the center blocked; a direct request goes to its one radiologist or group;
- price: their minimum rate for the modality and priority is not above the quote.
Ranked: the center's preferred readers (its list, the request's, its contracts') first, then those on shift,
then one rank score (on-time rate and peer-review quality, weighted 2 to 1), then current load.

Queries are constant in the number of radiologists. The full match: the profiles with their annotations
(weekly hours, peer-review counts), their caseload, one per credential kind the rule needs and the time off
(4 to 7, and the center when the caller did not load it).

Two uses: ``match(..., eligible_only=True)`` is the hot path of posting, the clocks and offers. It reads the
jurisdiction's pool for the day from ``matching_pool`` (active readers with a license covering the day; a
per-process snapshot while nothing it reads has changed, and with it the rule's reasons per question and the
weekly windows), then the request's own parts: its lists (one UNION), the center's privileges when required and
the caseload — 3 to 4 queries with the snapshot standing, 7 to 8 without. Its candidates carry ids
(``load_profiles`` loads the profiles of those a caller acts on), it leaves out readers at capacity without a
reason, and it reports only those. The default explains every reader left out, with the profiles loaded, for
the center's "why not" page, the API's candidate table and the claim's re-check. A candidate's
``rank_reasons`` are worked out only when read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.utils import timezone

from accounts.credentials.eligibility import Credentials, EligibilityQuestion, as_text, json_values, licensed_on
from accounts.credentials.vocab import parse_jurisdiction
from accounts.models import License, Membership, Organization, RadiologistProfile
from billing.models import Contract
from marketplace import schedule
from marketplace.models import Assignment, Audience, CenterSettings, MinimumRate, ReadRequest
from marketplace.services.matching_pool import Pool, parse_hours, pool_for, time_off, weekly_hours

# How long a reader needs once on shift: someone off shift now is available when their next shift
# starts at least this long before the deadline.
READ_ALLOWANCE = {"stat": timedelta(minutes=30), "urgent": timedelta(hours=1), "routine": timedelta(hours=1)}
UNKNOWN_ON_TIME = 0.9  # the rate a reader without finished reads is ranked with
# Quality is peer-review agreement (final RADPEER 1) smoothed toward a prior, as if every reader started with
# PRIOR_REVIEWS reviews at PRIOR_QUALITY: a reader's first one or two reviews cannot swing their place.
PRIOR_QUALITY = 0.9
PRIOR_REVIEWS = 5
# The rank score after preference and shift (issue 16): quality comes after the on-time rate, at half its weight.
ON_TIME_WEIGHT = Fraction(2, 3)
QUALITY_WEIGHT = Fraction(1, 3)
_WEIGHTS = (float(ON_TIME_WEIGHT), float(QUALITY_WEIGHT))  # Fractions are for labels: floats on the hot path
NO_CASELOAD = (0, 0, 0)  # active, finished, on time
# Follow the sun (issue 18): a STAT is offered first to readers for whom it is daytime in their own zone.
DAYTIME_STARTS, DAYTIME_ENDS = time(7), time(19)
# Zones held alive: ``ZoneInfo(key)`` keeps only 8 zones strongly and re-read the tz file of the others on
# nearly every schedule worked out (a dozen zones per call at 10,000 radiologists).
_ZONES: dict[str, ZoneInfo] = {}

@dataclass(eq=False, slots=True)
class Candidate:
    """One radiologist as matching sees them for one request (by id; the profile when it was loaded)."""

    radiologist_id: int
    name: str
    home_time_zone: str
    read_request: ReadRequest
    at: datetime
    profile: RadiologistProfile | None = None
    group_name: str = ""
    reasons: list[str] = field(default_factory=list)  # why not (empty: may read)
    on_shift: bool = False
    available_from: datetime | None = None  # next shift start, for those who can still finish in time
    load: int = 0
    capacity: int = 0
    finished: int = 0
    on_time: int = 0
    reviews: int = 0  # final peer reviews of their reports
    concordant: int = 0  # of which scored RADPEER 1
    preferred: bool = False  # the center's or the request's preferred reader
    rank: int = 0
    daytime: bool | None = None  # STAT only (follow the sun): 07:00–19:00 in the reader's own zone
    local_at: datetime | None = None  # STAT only: the reader's local time at ``at``

    @property
    def radiologist(self) -> RadiologistProfile:
        if self.profile is None:
            raise LookupError("The hot path's candidates carry ids: load their profiles with load_profiles().")
        return self.profile

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.finished if self.finished else None

    @property
    def quality(self) -> float:
        """Peer-review agreement smoothed toward ``PRIOR_QUALITY`` (no reviews: the prior itself)."""
        return (self.concordant + PRIOR_QUALITY * PRIOR_REVIEWS) / (self.reviews + PRIOR_REVIEWS)

    @property
    def rank_score(self) -> float:
        """What orders readers equal in preference and shift: weighted on-time rate and quality."""
        rate = self.on_time_rate
        return _WEIGHTS[0] * (UNKNOWN_ON_TIME if rate is None else rate) + _WEIGHTS[1] * self.quality

    @property
    def rank_reasons(self) -> list[str]:
        """Why this place in the ranking (the explain view shows them; the hot path never reads them)."""
        if self.reasons:
            return []
        reasons = []
        if self.preferred:
            reasons.append(f"preferred by {self.read_request.center.name}")  # its list, the request's or a contract's
        if self.on_shift:
            reasons.append("on shift now")
        else:
            reasons.append(f"on shift from {schedule.local_label(self.available_from, self.home_time_zone, self.at)}")
        if self.daytime is not None and self.local_at is not None:
            place = self.home_time_zone.rsplit("/", 1)[-1].replace("_", " ")
            reasons.append(f"{'daytime' if self.daytime else 'night'} for the reader "
                           f"({self.local_at:%H:%M} in {place})")
        reasons.append(f"on time {round(100 * self.on_time_rate)} % ({self.on_time} of {self.finished})"
                       if self.finished else "no finished reads yet")
        reasons.append(f"peer review {round(100 * self.concordant / self.reviews)} % agreement "
                       f"({self.concordant} of {self.reviews} reviews)" if self.reviews else "no peer reviews yet")
        rate = self.on_time_rate
        on_time = f"{round(100 * rate)} %" if rate is not None else f"{round(100 * UNKNOWN_ON_TIME)} % (assumed)"
        reasons.append(f"rank score {self.rank_score:.2f} = {ON_TIME_WEIGHT} × on time {on_time} "
                       f"+ {QUALITY_WEIGHT} × quality {round(100 * self.quality)} %")
        reasons.append(f"load {self.load} of {self.capacity}")
        return reasons


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

    @property
    def ranking(self) -> str:
        """The ranking rule in words, with the score's weights (the explain page's legend)."""
        return (f"preferred first, then on shift (a STAT: daytime readers first), then rank score "
                f"({ON_TIME_WEIGHT} × on-time rate + "
                f"{QUALITY_WEIGHT} × peer-review quality), then load")


def load_profiles(candidates: list[Candidate]) -> list[Candidate]:
    """Load the profiles (with their users) of ``candidates`` that have none yet, in one query."""
    missing = [c for c in candidates if c.profile is None]
    if missing:
        profiles = RadiologistProfile.objects.select_related("user").in_bulk([c.radiologist_id for c in missing])
        for candidate in missing:
            candidate.profile = profiles[candidate.radiologist_id]
    return candidates


def _load_center(read_request: ReadRequest) -> None:
    """The center (its name in reasons, its privileges rule), unless the caller loaded it already."""
    if not ReadRequest.center.is_cached(read_request):
        read_request.center = Organization.objects.get(pk=read_request.center_id)


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


def _caseload(radiologist_ids: QuerySet) -> dict[int, tuple[int, int, int]]:
    """Active, finished and on-time reads of the pool (``radiologist_ids``, a subquery), in one grouped query.
    As three correlated counts in the profiles' query they cost more, and pushed that query's estimate over
    PostgreSQL's JIT threshold (``jit_above_cost``), whose compiling alone took 200 ms."""
    counts = (Assignment.objects.filter(radiologist_id__in=radiologist_ids).order_by().values("radiologist_id")
              .annotate(load=Count("id", filter=Q(status=Assignment.Status.ACTIVE)),
                        finished=Count("id", filter=Q(on_time__isnull=False)),
                        on_time=Count("id", filter=Q(on_time=True))))
    return {row[0]: row[1:] for row in counts.values_list("radiologist_id", "load", "finished", "on_time")}


def _annotated(pool: QuerySet, read_request: ReadRequest) -> QuerySet:
    """Conflicts, preference, minimum rate, weekly hours and the group's name (shown): one query with the
    profiles."""
    rate = (MinimumRate.objects.filter(radiologist=OuterRef("pk"), modality__in=read_request.modalities,
                                       priority=read_request.priority, currency=read_request.currency)
            .values("radiologist").annotate(top=Max("cents")).values("top"))
    queryset = pool.annotate(
        reads=as_text("modalities"), specialties=as_text("subspecialties"), takes=as_text("priorities"),
        weekly_hours=weekly_hours(),
        minimum_rate=Subquery(rate, output_field=IntegerField()),
        # A left join on the one-to-one (no row: no reviews), not a correlated subquery: cheaper to plan and run.
        peer_reviews=F("quality__reviews"), peer_concordant=F("quality__concordant"),
    )
    queryset = queryset.annotate(group_name=Subquery(
        Membership.objects.filter(user=OuterRef("user"), is_active=True,
                                  organization__kind=Organization.Kind.RADIOLOGY_GROUP)
        .order_by("organization__name").values("organization__name")[:1]))
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
    # The center's own lists, through its settings row (none: nobody is on them), and the preferred readers of
    # its contracts in force today (billing).
    today = timezone.localdate()
    return queryset.annotate(
        center_preferred=Exists(CenterSettings.preferred_radiologists.through.objects.filter(
            centersettings__center_id=read_request.center_id, radiologistprofile_id=OuterRef("pk"))),
        contract_preferred=Exists(Contract.preferred_readers.through.objects.filter(
            contract__center_id=read_request.center_id, contract__status=Contract.Status.ACTIVE,
            contract__starts_on__lte=today, radiologistprofile_id=OuterRef("pk")).filter(
            Q(contract__ends_on__isnull=True) | Q(contract__ends_on__gte=today))),
        blocked=Exists(CenterSettings.blocked_radiologists.through.objects.filter(
            centersettings__center_id=read_request.center_id, radiologistprofile_id=OuterRef("pk"))))


def _conflict_and_audience_reasons(read_request: ReadRequest, radiologist_id: int, *, in_original_group: bool,
                                   blocked: bool, in_direct_group: bool, group_name: str = "") -> list[str]:
    reasons = []
    if read_request.original_reader_id and radiologist_id == read_request.original_reader_id:
        reasons.append("original reader of this study")
    elif in_original_group:  # the group's name is loaded to be shown: not on the hot path
        reasons.append(f"in the original reader's group ({group_name})" if group_name
                       else "in the original reader's group")
    if blocked:
        reasons.append(f"blocked by {read_request.center.name}")
    if read_request.audience == Audience.DIRECT:
        if read_request.direct_radiologist_id and radiologist_id != read_request.direct_radiologist_id:
            reasons.append("sent directly to another radiologist")
        elif read_request.direct_group_id and not in_direct_group:
            reasons.append("sent directly to another group")
    return reasons


def _availability(hours: tuple, off, zone: str, read_request: ReadRequest, at: datetime,
                  seen: dict, extra=(), weekly: dict | None = None) -> tuple[bool, datetime | None, str | None]:
    """(on shift now, next shift start if they can still finish in time, else the reason)."""
    # Readers without time off or extra shifts who share a weekly schedule and a zone share the answer: ``seen``
    # keeps it for one call (thousands of readers, a few dozen distinct schedules).
    key = (zone, hours) if not off and not extra else None
    answer = seen.get(key) if key is not None else None
    if answer is None:
        tz = _ZONES.setdefault(zone, ZoneInfo(zone))
        windows = None
        if weekly is not None:  # a schedule's windows are the same all its local day: kept with the snapshot
            day_key = (zone, hours, at.astimezone(tz).date())
            windows = weekly.get(day_key)
            if windows is None:
                windows = weekly[day_key] = schedule.windows(hours, zone, at)
        answer = _availability_of(schedule.availability(list(hours), zone, off, at, extra, windows), zone,
                                  read_request, at)
        if key is not None:
            seen[key] = answer
    return answer


def _availability_of(state: schedule.Availability, zone: str, read_request: ReadRequest,
                     at: datetime) -> tuple[bool, datetime | None, str | None]:
    if state.on_shift:
        return True, None, None
    if not state.has_hours:
        return False, None, "no reading hours entered"
    if state.next_start is None:  # time off covering every window of the week says so (the more useful reason)
        return False, None, ("on time off through the coming week" if state.on_time_off
                             else "no reading hours in the coming week")
    allowance = READ_ALLOWANCE.get(read_request.priority, timedelta(hours=1))
    if state.next_start + allowance <= read_request.deadline:
        return False, state.next_start, None
    label = schedule.local_label(state.next_start, zone, at)
    return False, None, f"on time off until {label}" if state.on_time_off else f"off shift until {label}"


def follow_the_sun(candidates: list[Candidate], read_request: ReadRequest, at: datetime) -> None:
    """A STAT goes first to readers for whom it is daytime (issue 18): mark each with their local time and
    whether it is day (07:00–19:00 in their own zone). Other priorities are left unmarked. No query: the zone
    is on the row; one conversion per distinct zone."""
    if read_request.priority != "stat":
        return
    local_by_zone: dict[str, datetime] = {}
    for c in candidates:
        local = local_by_zone.get(c.home_time_zone)
        if local is None:
            zone = _ZONES.setdefault(c.home_time_zone, ZoneInfo(c.home_time_zone))
            local = local_by_zone[c.home_time_zone] = at.astimezone(zone)
        c.local_at, c.daytime = local, DAYTIME_STARTS <= local.time() < DAYTIME_ENDS


def _rank(candidates: list[Candidate]) -> None:
    def key(c: Candidate):
        # ``daytime`` is None except for STAT: then the day readers come before the night ones on shift.
        return (not c.preferred, not c.on_shift, c.daytime is False, -c.rank_score, c.load / max(c.capacity, 1),
                c.name)

    candidates.sort(key=key)
    for position, c in enumerate(candidates, 1):
        c.rank = position


@dataclass
class _Judge:
    """One call's verdict on each radiologist: the eligibility rule's reasons, then the request's own (priority,
    conflicts, capacity, price, hours), with what the ranking reads."""

    read_request: ReadRequest
    at: datetime
    question: EligibilityQuestion
    credentials: Credentials
    off: dict[int, list]
    extra: dict[int, list]
    seen: dict = field(default_factory=dict)  # availability by (zone, hours), for readers with no time off
    rule: dict[int, tuple[str, ...]] | None = None  # the rule's reasons by reader, when the snapshot keeps them
    weekly: dict | None = None  # weekly windows by (zone, hours, local day), kept with the snapshot

    def candidate(self, radiologist_id: int, counts: tuple[int, int, int], *, name: str, zone: str, capacity: int,
                  is_active: bool, reads: frozenset[str], specialties: frozenset[str], takes: frozenset[str],
                  hours: tuple, minimum_rate: int | None, reviews: int, concordant: int, preferred: bool,
                  conflicts: list[str], profile: RadiologistProfile | None = None,
                  group_name: str = "") -> Candidate:
        read_request = self.read_request
        load, finished, on_time = counts
        candidate = Candidate(
            radiologist_id=radiologist_id, name=name, home_time_zone=zone, read_request=read_request, at=self.at,
            profile=profile, group_name=group_name,
            reasons=list(self.rule[radiologist_id]) if self.rule is not None else self.question.reasons(
                radiologist_id, is_active=is_active, modalities=reads, subspecialties=specialties,
                credentials=self.credentials),
            load=load, capacity=capacity, finished=finished, on_time=on_time, reviews=reviews,
            concordant=concordant, preferred=preferred)
        if read_request.priority not in takes:
            candidate.reasons.append(f"does not take {read_request.get_priority_display()} reads")
        candidate.reasons += conflicts
        if load >= capacity:
            candidate.reasons.append(f"at capacity ({load} of {capacity})")
        if minimum_rate is not None and minimum_rate > read_request.quoted_cents:
            candidate.reasons.append(f"minimum rate {minimum_rate} cents above quote {read_request.quoted_cents}")
        candidate.on_shift, candidate.available_from, reason = _availability(
            hours, self.off.get(radiologist_id, []), zone, read_request, self.at, self.seen,
            self.extra.get(radiologist_id, ()), self.weekly)
        if reason:
            candidate.reasons.append(reason)
        return candidate


def _result(read_request: ReadRequest, at: datetime, judged: list[Candidate]) -> MatchResult:
    candidates = [c for c in judged if not c.reasons]
    excluded = sorted((c for c in judged if c.reasons), key=lambda c: c.name)
    follow_the_sun(candidates, read_request, at)
    _rank(candidates)
    return MatchResult(read_request=read_request, at=at, candidates=candidates, excluded=excluded)


def match(read_request: ReadRequest, *, at: datetime | None = None, radiologist_ids: list[int] | None = None,
          everyone: bool = False, eligible_only: bool = False) -> MatchResult:
    """Every considered radiologist for ``read_request`` at ``at``: the eligible ranked, the rest with reasons.

    ``eligible_only``: the same ranked candidates, by id (no profile loaded), and ``excluded`` holds only
    those who got past the pool's narrowing (active, licensed today, under capacity) — for callers that never
    show reasons."""
    at = at or timezone.now()
    _load_center(read_request)
    if eligible_only:
        return _match_pool(read_request, at, radiologist_ids)
    pool = _pool(read_request, radiologist_ids=radiologist_ids, everyone=everyone)
    ids = pool.values("pk")
    rows = list(_annotated(pool, read_request).select_related("user"))
    question = _question(read_request, at)
    caseload = _caseload(ids)
    judge = _Judge(read_request, at, question, question.credentials(ids), *time_off(ids, at))
    schedules: dict[str | None, tuple] = {}
    judged = []
    for row in rows:
        if row.weekly_hours not in schedules:
            schedules[row.weekly_hours] = parse_hours(row.weekly_hours)
        judged.append(judge.candidate(
            row.id, caseload.get(row.id, NO_CASELOAD), name=row.name, zone=row.home_time_zone,
            capacity=row.max_concurrent_cases, is_active=row.user.is_active, reads=json_values(row.reads),
            specialties=json_values(row.specialties), takes=json_values(row.takes),
            hours=schedules[row.weekly_hours], minimum_rate=row.minimum_rate, reviews=row.peer_reviews or 0,
            concordant=row.peer_concordant or 0,
            preferred=bool(row.center_preferred or getattr(row, "named_reader", False)
                           or getattr(row, "in_named_group", False) or row.contract_preferred),
            conflicts=_conflict_and_audience_reasons(
                read_request, row.id, in_original_group=getattr(row, "in_original_group", False),
                blocked=row.blocked, in_direct_group=getattr(row, "in_direct_group", False),
                group_name=row.group_name or ""),
            profile=row, group_name=row.group_name or ""))
    return _result(read_request, at, judged)


def _question(read_request: ReadRequest, at: datetime) -> EligibilityQuestion:
    return EligibilityQuestion(jurisdiction=read_request.jurisdiction, modalities=read_request.modalities,
                               subspecialty=read_request.subspecialty or None, center=read_request.center, at=at)


def _match_pool(read_request: ReadRequest, at: datetime, radiologist_ids: list[int] | None) -> MatchResult:
    """The hot path: the jurisdiction's pool (``matching_pool``: active, licensed on the day; a snapshot while
    nothing it reads has changed) with the request's own parts read now — its lists, the caseload and the
    center's privileges. Readers at capacity are left out without a reason."""
    pool = pool_for(read_request.jurisdiction, at)
    rows = pool.rows
    if radiologist_ids is not None:
        wanted = set(radiologist_ids)
        rows = [row for row in rows if row.id in wanted]
    if read_request.audience == Audience.DIRECT:  # its one reader or its group's members: the rule refuses others
        rows = [row for row in rows if row.id == read_request.direct_radiologist_id
                or (not read_request.direct_radiologist_id and read_request.direct_group_id in row.groups)]
    few = radiologist_ids is not None or read_request.audience == Audience.DIRECT
    ids = [row.id for row in rows] if few else licensed_on(read_request.jurisdiction, at)  # a superset, as a subquery
    lists = _request_lists(read_request)
    question = _question(read_request, at)
    credentials = Credentials(licenses=None, insurance=pool.insurance, mqsa=pool.mqsa,
                              privileges=question.privileges(ids))
    caseload = _caseload(ids)
    judge = _Judge(read_request, at, question, credentials, *pool.time_off_at(at),
                   rule=_rule_reasons(pool, question, credentials), weekly=pool.memo("weekly windows"))
    preferred = lists["center_preferred"] | lists["contract_preferred"] | lists["named_reader"]
    modalities, priority, currency = read_request.modalities, read_request.priority, read_request.currency
    judged = []
    for row in rows:
        counts = caseload.get(row.id, NO_CASELOAD)
        if counts[0] >= row.capacity:
            continue  # at capacity: the hot path reports only who is left after the narrowing
        judged.append(judge.candidate(
            row.id, counts, name=row.name, zone=row.home_time_zone, capacity=row.capacity, is_active=True,
            reads=row.reads, specialties=row.specialties, takes=row.takes, hours=row.hours,
            minimum_rate=row.minimum_rate(modalities, priority, currency), reviews=row.reviews,
            concordant=row.concordant,
            preferred=row.id in preferred or not lists["named_group"].isdisjoint(row.groups),
            conflicts=_conflict_and_audience_reasons(
                read_request, row.id, in_original_group=not lists["original_group"].isdisjoint(row.groups),
                blocked=row.id in lists["blocked"],
                in_direct_group=read_request.direct_group_id in row.groups)))
    return _result(read_request, at, judged)


def _rule_reasons(pool: Pool, question: EligibilityQuestion, credentials: Credentials) -> dict | None:
    """The eligibility rule's reasons for every reader of the pool, kept with the snapshot for each question
    (modalities, subspecialty): everything the rule reads is in the snapshot, which is of one day. Not when the
    center requires its own privileges (read for each call)."""
    if question.needs_privileges:
        return None
    kept = pool.memo("rule reasons")
    key = (tuple(question.modalities), question.subspecialty)
    if key not in kept:
        kept[key] = {row.id: tuple(question.reasons(row.id, is_active=True, modalities=row.reads,
                                                    subspecialties=row.specialties, credentials=credentials))
                     for row in pool.rows}
    return kept[key]


LISTS = ("center_preferred", "contract_preferred", "blocked", "named_reader", "named_group", "original_group")


def _request_lists(read_request: ReadRequest) -> dict[str, frozenset[int]]:
    """The request's own lists, in one query (a UNION): the center's preferred and blocked readers and its
    contracts' preferred readers in force today (profile ids); a preferred request's named readers (profile ids)
    and groups (organization ids); the original reader's groups (organization ids)."""
    today = timezone.localdate()
    center = read_request.center_id
    parts = [
        ("center_preferred", CenterSettings.preferred_radiologists.through.objects.filter(
            centersettings__center_id=center), "radiologistprofile_id"),
        ("contract_preferred", Contract.preferred_readers.through.objects.filter(
            contract__center_id=center, contract__status=Contract.Status.ACTIVE, contract__starts_on__lte=today)
         .filter(Q(contract__ends_on__isnull=True) | Q(contract__ends_on__gte=today)), "radiologistprofile_id"),
        ("blocked", CenterSettings.blocked_radiologists.through.objects.filter(centersettings__center_id=center),
         "radiologistprofile_id"),
    ]
    if read_request.audience == Audience.PREFERRED:
        parts += [
            ("named_reader", ReadRequest.preferred_radiologists.through.objects.filter(
                readrequest_id=read_request.pk), "radiologistprofile_id"),
            ("named_group", ReadRequest.preferred_groups.through.objects.filter(readrequest_id=read_request.pk),
             "organization_id")]
    if read_request.original_reader_id:
        parts.append(("original_group", _group_memberships(Organization.objects.all()).filter(
            user__radiologist_profile=read_request.original_reader_id), "organization_id"))
    queries = [queryset.order_by().annotate(list=Value(LISTS.index(name)), member=F(column))
               .values_list("list", "member") for name, queryset, column in parts]
    lists: dict[str, set[int]] = {name: set() for name in LISTS}
    for index, member in queries[0].union(*queries[1:], all=True):
        lists[LISTS[index]].add(member)
    return {name: frozenset(members) for name, members in lists.items()}
