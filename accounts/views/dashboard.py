"""The home page: one dashboard per role, showing only data that exists."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts import policy, selectors, services
from accounts.dashboard_panels import dashboard_panels
from accounts.models import Role
from accounts.policy import Actor
from accounts.views.common import actor_of, page_errors


def dashboard_kind(actor: Actor) -> str:
    """Which dashboard fits: platform operations or finance, a center/group admin, a radiologist, another
    member, a patient."""
    if policy.can_view_every_organization(actor):
        return "platform"
    roles = actor.active_roles
    if Role.ADMIN in roles:
        return "admin"
    if Role.RADIOLOGIST in roles:
        return "radiologist"
    if roles:
        return "member"
    if actor.is_patient:
        return "patient"
    return "no_organization"


@login_required
@page_errors
def dashboard(request):
    actor = actor_of(request)
    kind = dashboard_kind(actor)
    context: dict = {
        "kind": kind,
        "security": selectors.own_security_summary(actor=actor),
        "memberships": selectors.my_memberships(actor=actor),
    }
    if kind == "platform":
        overview = selectors.platform_overview(actor=actor)
        context["overview"] = overview
        if overview.recent_events:
            services.audit_log_access_record(actor=actor, action="audit_log.viewed", request=request,
                                             extra={"page": "dashboard", "rows": len(overview.recent_events)})
    if actor.active_organization is not None and kind != "platform":
        context["summary"] = selectors.organization_summary(actor=actor, organization=actor.active_organization)
    if Role.RADIOLOGIST in actor.all_roles:
        context["profile"] = selectors.radiologist_profile_own(actor=actor)
    context["panels"] = dashboard_panels(actor)
    return render(request, "accounts/dashboard.html", context)
