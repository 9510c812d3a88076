"""Presentation helpers of the marketplace pages: money, the SLA clock, the marketplace navigation links.

No queries beyond what the policy functions read from the actor already loaded; no business rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone

from accounts.models import Organization
from billing.services.ledger import fee_cents
from marketplace import policy, pricing
from marketplace.models import ACTIVE_STATES, Status
from studies.page_selectors import display_person_name

register = template.Library()

AT_RISK_FRACTION = 0.8  # the clock's 80 % mark (marketplace.services.clock)


@register.filter
def money(read_request) -> str:
    """A request's (or offer's request's) locked quote as ``$35.00``."""
    return pricing.format_money(read_request.quoted_cents, read_request.currency)


@register.filter
def earning(read_request) -> str:
    """What the reader earns of a request's locked quote: the quote minus the locked platform fee."""
    fee = fee_cents(read_request.quoted_cents, read_request.fee_basis_points)
    return pricing.format_money(read_request.quoted_cents - fee, read_request.currency)


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


@register.filter
def remaining(deadline: datetime | None) -> str:
    """``2 h 05 min left`` or ``12 min late``."""
    if deadline is None:
        return "—"
    seconds = (deadline - timezone.now()).total_seconds()
    return f"{_span(seconds)} left" if seconds >= 0 else f"{_span(seconds)} late"


@register.filter
def sla_state(read_request) -> str:
    """``ok``, ``at-risk`` (80 % of the time gone, or flagged by the clock), ``late``, or ``done`` when finished."""
    if read_request.status not in ACTIVE_STATES and read_request.status != Status.RELEASED:
        return "done"
    now = timezone.now()
    if read_request.deadline <= now or read_request.late_at:
        return "late"
    if read_request.at_risk_at or read_request.no_on_shift_reader or read_request.fraction_elapsed(now) >= \
            AT_RISK_FRACTION:
        return "at-risk"
    return "ok"


@register.filter
def person_name(value: str) -> str:
    """A DICOM person name as the study pages show it: "Rivera^Ana" → "Rivera, Ana"."""
    return display_person_name(value)


@register.filter
def status_label(value: str) -> str:
    """``in_progress`` → ``In progress`` (a read request's state as people read it)."""
    return Status(value).label if value in Status.values else value


@register.filter
def lookup(mapping, key):
    """``counts|lookup:rr.pk``: a value of a dict computed once for the page."""
    return (mapping or {}).get(key)


@register.filter
def iso(value: datetime | None) -> str:
    """UTC ISO 8601 for ``data-deadline`` (the countdown script)."""
    return "" if value is None else value.astimezone(UTC).isoformat()


@register.simple_tag(takes_context=True)
def marketplace_nav(context) -> dict:
    """Which marketplace links the actor gets: read requests (center people), worklist (radiologists),
    reads at risk (operations), marketplace settings with the overflow rules (center admins), the coverage map
    (those of the center who may open it) and the group calendar (group admins)."""
    actor = context.get("actor")
    if actor is None or actor.user is None:
        return {}
    org = actor.active_organization
    return {
        "reads": org is not None and org.kind == Organization.Kind.IMAGING_CENTER
        and policy.can_view_center_requests(actor, org),
        "worklist": policy.is_radiologist(actor),
        "ops": policy.is_operations(actor),
        "settings": org is not None and policy.can_manage_settings(actor, org),
        "coverage": org is not None and policy.can_view_coverage(actor, org),
        "calendar": policy.can_view_group_calendar(actor, org),
    }
