"""A center's coverage map (its admins and viewers) and a radiology group's calendar (its admins)."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.credentials.vocab import Subspecialty
from accounts.views.common import actor_of, page_errors
from core.errors import ApplicationError, NotFound
from marketplace import policy
from marketplace.coverage import coverage_map as build_coverage_map
from marketplace.group_calendar import group_calendar as build_group_calendar


@login_required
@require_GET
@page_errors
def coverage_map(request):
    """The next 7 days × 24 hours for one modality (and subspecialty), with the gaps in words."""
    actor = actor_of(request)
    center = actor.active_organization
    if center is None or not policy.can_view_coverage(actor, center):
        raise NotFound()
    error = ""
    try:
        data = build_coverage_map(actor=actor, center=center, modality=request.GET.get("modality"),
                                  subspecialty=request.GET.get("subspecialty"))
    except NotFound:
        raise
    except ApplicationError as exc:
        error = exc.message
        data = build_coverage_map(actor=actor, center=center)
    return render(request, "marketplace/coverage.html", {
        "map": data, "error": error, "subspecialties": Subspecialty.choices,
        "hour_labels": [f"{h:02d}" for h in range(24)],
    }, status=400 if error else 200)


@login_required
@require_GET
@page_errors
def group_calendar(request):
    """The group's members × the days of one week (``?week=YYYY-MM-DD``), in the group's zone."""
    actor = actor_of(request)
    group = actor.active_organization
    if not policy.can_view_group_calendar(actor, group):
        raise NotFound()
    try:
        week = date.fromisoformat(request.GET["week"]) if request.GET.get("week") else None
    except ValueError:
        week = None
    return render(request, "marketplace/group_calendar.html",
                  {"calendar": build_group_calendar(actor=actor, group=group, week=week)})
