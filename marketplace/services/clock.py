"""The SLA clocks, run by Celery beat every minute (``marketplace.sla_tick``). Idempotent: each step is
a conditional update of its own timestamp, so a second run (or two beats at once) changes nothing.

For every open request: new readers who came on shift are offered it; the preferred tier widens
on time; at 50 % of the time to deadline without a claim it widens and the center is told; at
80 % operations see it at risk and the center's admins are alerted; past the deadline it expires.
An assigned request past its deadline stays assigned and is marked late. A patient's paid second
opinion still unclaimed at half its time is cancelled and refunded instead of widened (issue 17).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError
from marketplace.models import ASSIGNED_STATES, Assignment, Audience, Offer, ReadRequest, Status
from marketplace.services import events, orders
from marketplace.services.offers import end_access, offers_sync, read_request_widen, widen_due
from marketplace.services.requests import read_request_transition

logger = logging.getLogger(__name__)
HALF, AT_RISK = 0.5, 0.8


@dataclass
class TickResult:
    offered: int = 0
    widened: int = 0
    half_time: int = 0
    at_risk: int = 0
    expired: int = 0
    late: int = 0
    refunded: int = 0
    ids: dict[str, list[str]] = field(default_factory=dict)


def _mark(read_request: ReadRequest, column: str, at: datetime) -> bool:
    """Set ``column`` once (None → at); False when another run already did."""
    done = ReadRequest.objects.filter(pk=read_request.pk, **{f"{column}__isnull": True}).update(**{column: at})
    if done:
        setattr(read_request, column, at)
    return bool(done)


@transaction.atomic
def read_request_expire(read_request: ReadRequest) -> ReadRequest:
    """Open → expired at the deadline: its offers expire, their previews end, the center is told."""
    read_request_transition(read_request=read_request, to=Status.EXPIRED, actor=None,
                            reason="no radiologist claimed it before its deadline")
    end_access(read_request, offer_status=Offer.Status.EXPIRED, assignment_status=Assignment.Status.CANCELLED)
    events.notify(events.center_people(read_request.center), title="Read request expired unclaimed",
                  body=f"{'/'.join(read_request.modalities)} {read_request.get_priority_display()} passed its "
                       "deadline without a reader.", url=events.request_url(read_request))
    return read_request


@transaction.atomic
def _tick_open(read_request: ReadRequest, at: datetime, result: TickResult) -> None:
    if read_request.deadline <= at:
        read_request_expire(read_request)
        result.expired += 1
        return
    if orders.unclaimed_refund_due(read_request, at):
        orders.order_refund_unclaimed(read_request)
        result.refunded += 1
        return
    fraction = read_request.fraction_elapsed(at)
    if widen_due(read_request, at) and read_request_widen(read_request=read_request, at=at,
                                                          reason="preferred readers' time passed"):
        result.widened += 1
    if fraction >= HALF and _mark(read_request, "half_time_at", at):
        # A preferred audience the center said never to widen stays with its named readers.
        never = read_request.audience == Audience.PREFERRED and read_request.widen_after_minutes is None
        if not never and read_request_widen(read_request=read_request, at=at,
                                            reason="half the time to deadline passed unclaimed"):
            result.widened += 1
        events.notify(events.center_people(read_request.center), title="Read still unclaimed at half its time",
                      body="It stays with your preferred readers." if never else
                      "It is now offered to every eligible radiologist.", url=events.request_url(read_request))
        events.webhook_enqueue(read_request, "read_request.escalated", extra={"level": "half_time"})
        result.half_time += 1
    if fraction >= AT_RISK and _mark(read_request, "at_risk_at", at):
        events.notify(events.center_people(read_request.center, "admin"), title="Read at risk of missing its deadline",
                      body=f"Unclaimed with {100 - round(100 * fraction)} % of its time left.",
                      url=events.request_url(read_request))
        events.webhook_enqueue(read_request, "read_request.escalated", extra={"level": "at_risk"})
        result.at_risk += 1
    result.offered += len(offers_sync(read_request=read_request, at=at))


@transaction.atomic
def _tick_assigned(read_request: ReadRequest, at: datetime, result: TickResult) -> None:
    if _mark(read_request, "late_at", at):
        events.notify(events.center_people(read_request.center, "admin")
                      + ([read_request.assignee.user] if read_request.assignee else []),
                      title="Read past its deadline", body="It stays with its reader and is marked late.",
                      url=events.request_url(read_request))
        events.webhook_enqueue(read_request, "read_request.late")
        result.late += 1


def sla_tick(*, at: datetime | None = None, limit: int = 500) -> TickResult:
    """One pass of the clocks over the active requests (most urgent first)."""
    at = at or timezone.now()
    result = TickResult()
    open_requests = (ReadRequest.objects.filter(status=Status.OPEN).select_related("center__marketplace_settings",
                                                                                   "study").order_by("deadline")[:limit])
    for read_request in open_requests:
        _one(_tick_open, read_request, at, result)
    late = (ReadRequest.objects.filter(status__in=ASSIGNED_STATES, deadline__lte=at, late_at__isnull=True)
            .select_related("center", "assignee__user")[:limit])
    for read_request in late:
        _one(_tick_assigned, read_request, at, result)
    return result


def _one(step, read_request: ReadRequest, at: datetime, result: TickResult) -> None:
    """One request's step in its own transaction: a move refused because a claim or a cancel landed since
    the list was read leaves that request to the next tick and never stops the others."""
    try:
        step(read_request, at, result)
    except ApplicationError as exc:
        logger.info("sla_tick skipped read request %s: %s", read_request.public_id, exc.message)
