"""The marketplace's panel on the dashboard (registered with ``accounts.dashboard_panels``): what waits for
this person — a radiologist's offers and reads, a center's requests by state, operations' watch list.
One aggregate query per section, whatever the number of requests."""

from __future__ import annotations

from django.db.models import Count, Min, Q

from accounts.dashboard_panels import DashboardPanel
from accounts.policy import Actor
from marketplace import policy, selectors
from marketplace.models import ASSIGNED_STATES, Priority, ReadRequest, Status

TEMPLATE = "marketplace/_dashboard_panel.html"


def _reader(actor: Actor) -> dict | None:
    if not policy.is_radiologist(actor):
        return None
    offers = selectors.offer_list(actor=actor).aggregate(n=Count("id"), stat=Count(
        "id", filter=Q(read_request__priority=Priority.STAT)))
    reads = selectors.assignment_list(actor=actor).aggregate(n=Count("id"), due=Min("read_request__deadline"))
    return {"offers": offers["n"], "stat_offers": offers["stat"], "reads": reads["n"], "next_due": reads["due"]}


def _center(actor: Actor) -> dict | None:
    center = actor.active_organization
    if center is None or center.kind != center.Kind.IMAGING_CENTER:
        return None
    if not policy.can_view_center_requests(actor, center):
        return None
    counts = selectors.read_request_list(actor=actor, center=center).aggregate(
        open=Count("id", filter=Q(status=Status.OPEN)),
        assigned=Count("id", filter=Q(status__in=ASSIGNED_STATES)),
        at_risk=Count("id", filter=Q(status=Status.OPEN, at_risk_at__isnull=False)),
        late=Count("id", filter=Q(status__in=ASSIGNED_STATES, late_at__isnull=False)))
    return {"center": center.name, **counts, "can_post": policy.can_post(actor, center)}


def _operations(actor: Actor) -> dict | None:
    if not policy.is_operations(actor):
        return None
    return ReadRequest.objects.aggregate(
        at_risk=Count("id", filter=Q(status=Status.OPEN, at_risk_at__isnull=False)),
        unclaimed_stat=Count("id", filter=Q(status=Status.OPEN, priority=Priority.STAT)),
        no_reader=Count("id", filter=Q(status=Status.OPEN, no_on_shift_reader=True)),
        late=Count("id", filter=Q(status__in=ASSIGNED_STATES, late_at__isnull=False)))


def marketplace_panel(actor: Actor) -> DashboardPanel | None:
    """None when the marketplace has nothing for this person (finance, patients, group admins)."""
    context = {"reader": _reader(actor), "center": _center(actor), "operations": _operations(actor)}
    if not any(context.values()):
        return None
    return DashboardPanel(template=TEMPLATE, context=context)

