"""The studies' panel on the dashboard (registered with ``accounts.dashboard_panels`` in ``StudiesConfig.ready``):
the center's most recent studies and their state, for the people who send them (admins and technologists).

The panel shows no patient data (no name, ID, accession, description or study date), so that opening the
dashboard is not a read of patient data to audit; each row links to the study's page, which is."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.dashboard_panels import DashboardPanel
from accounts.policy import Actor
from studies import page_selectors, policy, selectors

TEMPLATE = "studies/_dashboard_panel.html"
RECENT = 5


def recent_studies_panel(actor: Actor) -> DashboardPanel | None:
    """None for anyone who does not send studies for the active organization (finance, radiologists, staff)."""
    center = actor.active_organization
    if center is None or actor.user is None or not policy.can_send_studies(actor, center):
        return None
    studies = selectors.study_list(actor=actor).filter(organization=center)
    now = timezone.now()
    recent = list(studies.select_related("organization").order_by("-received_at")[:RECENT])
    rows = [page_selectors.study_row(study, policy.FULL, now=now) for study in recent]
    return DashboardPanel(template=TEMPLATE, context={
        "center": center.name,
        "rows": rows,
        "this_week": studies.filter(received_at__gte=now - timedelta(days=7)).count(),
    })
