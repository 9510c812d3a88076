"""Overflow rules (issue 18) read as sentences, and which studies each rule would post now.

Pure reads: nothing here writes (``marketplace.services.overflow`` posts). Three triggers:
- hours: the study arrived in the rule's local window (22:00–07:00 wraps past midnight; the weekday is the one
  the window started on, so Friday 22:00 – Saturday 07:00 is a Friday night);
- unread: nobody read it locally within N minutes of arrival (the beat);
- backlog: the center's unread studies of the modality exceed N (the beat posts the oldest beyond N).
A study is a candidate only while it has no read request, no "read locally" mark and no automatic posting.
"""

from __future__ import annotations

import time as monotonic
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import Organization
from marketplace.coverage_models import LocalRead, OverflowPosting, OverflowRule
from marketplace.models import ReadRequest
from studies.models import Study

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAYS, WEEKEND = [0, 1, 2, 3, 4], [5, 6]
# Backlog counts what waits in the working worklist, not the center's whole archive of studies read elsewhere.
BACKLOG_WINDOW = timedelta(days=7)
# Per-process cache of each center's active rules (ingest asks for every instance): rule writes in this
# process clear it; other processes see a change within the TTL, and the beat catches any hours-rule study missed.
RULES_TTL_SECONDS = 10.0
_rules_cache: dict[int, tuple[float, list[OverflowRule]]] = {}
# Per-process memory of the (rule, study) pairs the ingest hook has just checked (posted, or not due): a study's
# later instances skip the query for CHECKED_TTL_SECONDS. What a skip misses (a modality that came with a later
# series) the beat's catch-up of hours rules posts within a minute.
CHECKED_TTL_SECONDS = 60.0
CHECKED_MAX = 10_000
_checked: dict[tuple[int, int], float] = {}


# --- sentences --------------------------------------------------------------------------------------------

def _days(weekdays: list[int]) -> str:
    days = sorted(set(weekdays or []))
    if not days or days == list(range(7)):
        return "every day"
    if days == WEEKDAYS:
        return "on weekdays"
    if days == WEEKEND:
        return "at weekends"
    return "on " + ", ".join(WEEKDAY_NAMES[d] for d in days)


def _audience(rule: OverflowRule) -> str:
    return "contract readers first" if rule.audience == "preferred" else "to every eligible reader at once"


def sentence(rule: OverflowRule) -> str:
    """The rule as one readable sentence (the rules page, and the posted request's special instructions)."""
    what = rule.modality or "study"
    priority = rule.get_priority_display().lower() if rule.priority != "stat" else "STAT"
    tail = f"as a {priority} read, {_audience(rule)}"
    if rule.template:
        tail += f", written on the template “{rule.template_name}”"
    if rule.trigger == OverflowRule.Trigger.HOURS:
        return (f"Post every {what} that arrives between {rule.starts:%H:%M} and {rule.ends:%H:%M} "
                f"{_days(rule.weekdays)} {tail}")
    if rule.trigger == OverflowRule.Trigger.UNREAD:
        return f"Post every {what} nobody has read locally within {rule.minutes} minutes of arrival {tail}"
    plural = f"{rule.modality} studies" if rule.modality else "studies"
    return f"When more than {rule.backlog} {plural} wait unread, post the oldest beyond {rule.backlog} {tail}"


# --- which rules -----------------------------------------------------------------------------------------

def active_rules(center_id: int, *, cached: bool = True) -> list[OverflowRule]:
    """The center's unpaused rules (one indexed query on (center, paused); cached briefly per process)."""
    now = monotonic.monotonic()
    hit = _rules_cache.get(center_id) if cached else None
    if hit is not None and hit[0] > now:
        return hit[1]
    rules = list(OverflowRule.objects.filter(center_id=center_id, paused=False).order_by("created_at", "id"))
    _rules_cache[center_id] = (now + RULES_TTL_SECONDS, rules)
    return rules


def forget_rules(center_id: int) -> None:
    """A rule of the center changed: the next ingest reads them again (and checks every study again)."""
    _rules_cache.pop(center_id, None)
    _checked.clear()


def unchecked(rule: OverflowRule, study_ids: list[int]) -> list[int]:
    """The studies the ingest hook has not checked under ``rule`` in the last CHECKED_TTL_SECONDS."""
    now = monotonic.monotonic()
    return [pk for pk in study_ids if _checked.get((rule.pk, pk), 0.0) <= now]


def mark_checked(rule: OverflowRule, study_ids: list[int]) -> None:
    if len(_checked) >= CHECKED_MAX:
        _checked.clear()  # a crude bound: forgetting costs one query per study, never a missed posting
    until = monotonic.monotonic() + CHECKED_TTL_SECONDS
    _checked.update(((rule.pk, pk), until) for pk in study_ids)


def in_hours(rule: OverflowRule, at: datetime, zone: str) -> bool:
    """Whether ``at`` falls in the hours rule's window (the center's local time)."""
    local = at.astimezone(ZoneInfo(zone))
    now = local.time()
    starts, ends = rule.starts or time(0), rule.ends or time(0)
    if starts < ends:
        inside, start_day = starts <= now < ends, local.date()
    else:  # wraps past midnight (or the whole day when equal)
        inside = now >= starts or now < ends
        start_day = local.date() if now >= starts else local.date() - timedelta(days=1)
    return inside and (not rule.weekdays or start_day.weekday() in rule.weekdays)


# --- which studies ---------------------------------------------------------------------------------------

def unposted(center_id: int) -> QuerySet[Study]:
    """The center's studies no rule may skip yet: no read request, no "read locally" mark, never posted."""
    # Filtered by ~Exists, not annotated then filtered: each subquery is planned once (the ingest hook runs this
    # per STOW request, where planning was most of its cost).
    return Study.objects.filter(~Exists(ReadRequest.objects.filter(study=OuterRef("pk"))),
                                ~Exists(LocalRead.objects.filter(study=OuterRef("pk"))),
                                ~Exists(OverflowPosting.objects.filter(study=OuterRef("pk"))),
                                organization_id=center_id, deleted_at__isnull=True)


def _of_modality(studies: QuerySet[Study], modality: str) -> QuerySet[Study]:
    # modalities_in_study is "\CT\SR\": one contains lookup matches a modality exactly.
    return studies.filter(modalities_in_study__contains=f"\\{modality}\\") if modality else studies


def _arrived(rule: OverflowRule, study_ids: list[int]) -> QuerySet[Study]:
    """The just-ingested studies of the rule's center and modality, by a plain query: building ``unposted``'s
    three NOT EXISTS costs the ORM 2.7 ms of CPU (bench/overflow_ingest.py), more than issue 18's 2 ms budget
    per instance, so it is built only for studies that could be posted."""
    studies = Study.objects.filter(pk__in=study_ids, organization_id=rule.center_id, deleted_at__isnull=True)
    return _of_modality(studies, rule.modality).only("pk", "received_at").order_by()


def hours_due(rule: OverflowRule, center: Organization, *, study_ids: list[int] | None = None,
              since: datetime | None = None) -> list[Study]:
    """Studies that arrived in the rule's hours (``study_ids``: just ingested; else arrivals since ``since``)."""
    if study_ids is not None:  # the ingest hook, once per STOW request: the plain look first (see _arrived)
        study_ids = [s.pk for s in _arrived(rule, study_ids) if in_hours(rule, s.received_at, center.time_zone)]
        if not study_ids:
            return []
    studies = _of_modality(unposted(rule.center_id), rule.modality)
    if study_ids is not None:  # the two columns it needs (posting locks and reads the row again)
        studies = studies.filter(pk__in=study_ids).only("pk", "received_at")
    if since is not None:
        studies = studies.filter(received_at__gte=max(since, rule.created_at))
    return [s for s in studies.order_by("received_at", "id") if in_hours(rule, s.received_at, center.time_zone)]


def unread_due(rule: OverflowRule, now: datetime) -> list[Study]:
    """Studies unread N minutes after arrival. Only those that came due while the rule existed: making a rule
    does not post the center's archive."""
    waited = timedelta(minutes=rule.minutes or 0)
    return list(_of_modality(unposted(rule.center_id), rule.modality)
                .filter(received_at__lte=now - waited, received_at__gte=rule.created_at - waited)
                .order_by("received_at", "id"))


def backlog_due(rule: OverflowRule, now: datetime) -> list[Study]:
    """The oldest unread studies beyond the rule's N (of the last ``BACKLOG_WINDOW``)."""
    waiting = list(_of_modality(unposted(rule.center_id), rule.modality)
                   .filter(received_at__gte=now - BACKLOG_WINDOW).order_by("received_at", "id"))
    excess = len(waiting) - (rule.backlog or 0)
    return waiting[:excess] if excess > 0 else []
