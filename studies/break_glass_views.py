"""Platform operations' emergency (break-glass) access page. Rules: studies.break_glass; access:
studies.policy.ROUTES. A fresh second factor is asked before the page opens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.mfa import fresh_mfa_required
from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from core.errors import NotFound
from core.timefmt import local_time
from studies import break_glass
from studies.forms import BreakGlassForm


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def study_break_glass(request):
    actor = actor_of(request)
    if not break_glass.can_break_glass(actor):
        raise NotFound()
    return _break_glass_page(request, actor)


@fresh_mfa_required
def _break_glass_page(request, actor):
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            grant = break_glass.break_glass_start(actor=actor, organization=form.cleaned_data["organization"],
                                                  study=form.cleaned_data["study"],
                                                  reason=form.cleaned_data["reason"], request=request)
        if call.ok:
            until = local_time(grant.expires_at, request.user.time_zone, date=False)
            messages.warning(request, f"Emergency access open until {until}. "
                                      "The center's admins have been told.")
            return redirect("study_break_glass")
    now = timezone.now()
    grants = list(break_glass.break_glass_list(actor=actor)[:50])
    return render(request, "studies/break_glass.html", {
        "form": form,
        "open_grants": [g for g in grants if g.is_active(now)],
        "past_grants": [g for g in grants if not g.is_active(now)],
        "minutes": settings.BREAK_GLASS_MINUTES,
    }, status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def study_break_glass_end(request, public_id):
    actor = actor_of(request)
    grant = break_glass.break_glass_get(actor=actor, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        break_glass.break_glass_end(actor=actor, grant=grant, request=request)
    if call.ok:
        messages.success(request, "Emergency access ended.")
    return redirect("study_break_glass")
