"""Critical results as pages: the active center's list (open ones first, highlighted, with their age and an
Acknowledge button) and operations' dashboard of open results across centers with their escalation level.

Thin: access is decided by ``reporting.selectors`` (404) and ``reporting.services.critical`` (403 for a
center person who sees the list but may not acknowledge).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, page_errors, safe_next
from reporting import policy, selectors
from reporting.services.critical import ESCALATE_AFTER_MINUTES, critical_acknowledge

OPS_LIMIT = 200


@login_required
@require_http_methods(["GET"])
@page_errors
def critical_result_list(request):
    """The active center's critical results: open ones (category 1 first, oldest first), then the latest
    acknowledged."""
    actor = actor_of(request)
    center = actor.active_organization
    lists = selectors.critical_results_of_center(actor=actor, center=center)
    return render(request, "reporting/critical_results.html", {
        "center": center, "open": list(lists["open"]), "acknowledged": list(lists["acknowledged"]),
        "can_acknowledge": policy.can_acknowledge(actor, center.pk), "steps": ESCALATE_AFTER_MINUTES,
    })


@login_required
@require_POST
@page_errors
def critical_result_acknowledge(request, public_id):
    """Acknowledge one result (idempotent: a second click says who acknowledged it first)."""
    actor = actor_of(request)
    critical = selectors.critical_result_get(actor=actor, public_id=public_id)
    outcome = critical_acknowledge(actor=actor, critical=critical, request=request)
    (messages.success if outcome.first else messages.info)(request, outcome.message_for(actor))
    # Back where the button was (this list, or the request's page), never to another site.
    return redirect(safe_next(request, request.POST.get("next"), reverse("critical_result_list")))


@login_required
@require_http_methods(["GET"])
@page_errors
def ops_critical_results(request):
    """Operations: every open critical result across centers, most escalated first, with its age."""
    rows = list(selectors.open_critical_results(actor=actor_of(request))[:OPS_LIMIT])
    return render(request, "reporting/critical_ops.html", {"rows": rows, "limit": OPS_LIMIT})


urlpatterns = [
    path("critical-results/", critical_result_list, name="critical_result_list"),
    path("critical-results/<uuid:public_id>/acknowledge/", critical_result_acknowledge,
         name="critical_result_acknowledge"),
    path("ops/critical-results/", ops_critical_results, name="ops_critical_results"),
]
