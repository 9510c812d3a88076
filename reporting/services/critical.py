"""Critical results, closed loop (ACR practice parameter): the center acknowledges; the clock escalates.

The radiologist records the contact when signing (``reports.report_sign``). From then on the center's
admins or technologists acknowledge the result in the app. A result nobody acknowledged escalates on
the clock (``critical_escalate_due``, Celery beat every minute), counted from its signing:

- category 1 (immediate): level 1 at 30 minutes (the center's admins), level 2 at 60 (platform operations);
- category 2 (urgent, "within hours"): level 1 at 4 hours, level 2 at 8 hours — a platform choice, the
  ACR parameter sets no figure for it;
- category 3 (non-urgent): never escalates.

Each step is one conditional UPDATE of ``escalation_level``, so two runs (or two beats at once) notify once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Role
from accounts.policy import Actor
from core.errors import NotFound, PermissionDenied
from core.timefmt import local_time
from marketplace.services import events
from reporting import policy
from reporting.models import CriticalResult

logger = logging.getLogger(__name__)

OBJECT_TYPE = "reporting.criticalresult"
CATEGORY_1_LEVEL_1_MINUTES = 30
CATEGORY_1_LEVEL_2_MINUTES = 60
CATEGORY_2_LEVEL_1_MINUTES = 4 * 60
CATEGORY_2_LEVEL_2_MINUTES = 8 * 60
# category → (minutes to level 1, minutes to level 2); a category not listed never escalates.
ESCALATE_AFTER_MINUTES = {
    CriticalResult.Category.IMMEDIATE: (CATEGORY_1_LEVEL_1_MINUTES, CATEGORY_1_LEVEL_2_MINUTES),
    CriticalResult.Category.URGENT: (CATEGORY_2_LEVEL_1_MINUTES, CATEGORY_2_LEVEL_2_MINUTES),
}
BATCH = 500  # per level and category in one run; the next minute's run takes the rest


@dataclass(frozen=True)
class Acknowledgement:
    """The outcome of an acknowledgement: the row as it now is, and whether this call made it."""

    critical: CriticalResult
    first: bool

    def message_for(self, actor: Actor) -> str:
        critical = self.critical
        if self.first:
            return "Critical result acknowledged."
        who = critical.acknowledged_by.display_name if critical.acknowledged_by else "someone"
        zone = actor.user.time_zone if actor.user else None
        return f"Already acknowledged by {who} at {local_time(critical.acknowledged_at, zone)}."


@transaction.atomic
def critical_acknowledge(*, actor: Actor, critical: CriticalResult,
                         request: HttpRequest | None = None) -> Acknowledgement:
    """The center's admins or technologists confirm they received a critical result. Idempotent: a second
    acknowledgement changes nothing and names who acknowledged it first."""
    if not policy.can_acknowledge(actor, critical.center_id):
        if policy.center_reads_reports(actor, critical.center_id) or policy.is_operations(actor):
            raise PermissionDenied("Only the center's admins and technologists acknowledge critical results.")
        raise NotFound("Critical result not found.")
    now = timezone.now()
    first = bool(CriticalResult.objects.filter(pk=critical.pk, acknowledged_at__isnull=True)
                 .update(acknowledged_at=now, acknowledged_by=actor.user, updated_at=now))
    critical = CriticalResult.objects.select_related(
        "acknowledged_by", "center", "read_request__study", "read_request__assignee__user", "report__radiologist__user",
    ).get(pk=critical.pk)
    if not first:
        return Acknowledgement(critical, first=False)
    read_request = critical.read_request
    audit_record(action="critical_result.acknowledged", actor=actor.user, request=request,
                 organization_id=critical.center_id, object_type=OBJECT_TYPE, object_id=str(critical.public_id),
                 extra={"category": critical.category, "escalation_level": critical.escalation_level,
                        "minutes_open": round((now - critical.created_at).total_seconds() / 60, 1)})
    events.notify([critical.report.radiologist.user],
                  title=f"Critical result acknowledged: {read_request.study.study_description}",
                  body=f"{critical.center.name} acknowledged the category {critical.category} critical result "
                       f"({critical.finding[:200]}).", url=events.request_url(read_request))
    events.webhook_enqueue(read_request, "report.critical_acknowledged",
                           extra={"report": str(critical.report.public_id), "critical_result": {
                               "id": str(critical.public_id), "category": critical.category,
                               "acknowledged_at": now.isoformat()}})
    return Acknowledgement(critical, first=True)


# --- the clock ---------------------------------------------------------------------------------------

@dataclass
class EscalationResult:
    level_1: int = 0
    level_2: int = 0


def _recipients(critical: CriticalResult, level: int) -> list:
    if level == 1:
        return events.center_people(critical.center, Role.ADMIN)
    return events.operations_people()  # the marketplace's operations recipients (offers.read_request_publish)


def _notify(critical: CriticalResult, level: int, minutes: int) -> int:
    study = critical.read_request.study.study_description or "a study"
    title = (f"Critical result unacknowledged for {minutes} min: {study}" if level == 1 else
             f"Critical result at {critical.center.name} unacknowledged for {minutes} min: {study}")
    body = (f"Category {critical.category}: {critical.finding[:300]}. Communicated to {critical.contacted_name}; "
            "nobody has acknowledged it in ReadRoom yet.")
    url = reverse("critical_result_list" if level == 1 else "ops_critical_results")
    return events.notify(_recipients(critical, level), title=title, body=body, url=url)


@transaction.atomic
def _escalate(critical: CriticalResult, level: int, minutes: int, now: datetime) -> bool:
    """Raise one result to ``level`` if it is still unacknowledged below it; False when another run did, or
    it was acknowledged meanwhile (the UPDATE decides, not the list read before it)."""
    if not CriticalResult.objects.filter(pk=critical.pk, acknowledged_at__isnull=True,
                                         escalation_level__lt=level).update(escalation_level=level,
                                                                            escalated_at=now, updated_at=now):
        return False
    critical.escalation_level, critical.escalated_at = level, now
    notified = _notify(critical, level, minutes)
    audit_record(action="critical_result.escalated", actor=None, organization_id=critical.center_id,
                 object_type=OBJECT_TYPE, object_id=str(critical.public_id),
                 reason=f"category {critical.category} not acknowledged within {minutes} minutes",
                 extra={"level": level, "category": critical.category, "notified": notified})
    return True


def critical_escalate_due(*, now: datetime | None = None) -> EscalationResult:
    """One pass of the clock: every unacknowledged critical result past a step's time goes up to that step.
    A result found late (the beat was down) takes level 1 and then level 2 in the same pass."""
    now = now or timezone.now()
    result = EscalationResult()
    for level in (1, 2):
        for category, steps in ESCALATE_AFTER_MINUTES.items():
            minutes = steps[level - 1]
            due = (CriticalResult.objects.filter(category=category, acknowledged_at__isnull=True,
                                                 escalation_level__lt=level,
                                                 created_at__lte=now - timedelta(minutes=minutes))
                   .select_related("center", "read_request__study").order_by("created_at")[:BATCH])
            for critical in due:
                if _escalate(critical, level, minutes, now):
                    setattr(result, f"level_{level}", getattr(result, f"level_{level}") + 1)
    if result.level_1 or result.level_2:
        logger.info("critical results escalated: %s to level 1, %s to level 2", result.level_1, result.level_2)
    return result
