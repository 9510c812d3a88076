"""A center admin's marketplace settings: turnaround per priority, the preferred tier's widen delay,
preferred and blocked readers; the webhooks section below comes from ``marketplace.webhooks``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace import policy, webhooks
from marketplace.forms import CenterSettingsForm
from marketplace.models import CenterSettings
from marketplace.services.profile import center_settings_update


def _initial(center) -> dict:
    row = CenterSettings.objects.filter(center=center).first()
    if row is None:
        row = CenterSettings(center=center)
        return {**{name: getattr(row, name) for name in ("stat_minutes", "urgent_minutes", "routine_minutes",
                                                          "second_opinion_minutes", "preferred_widen_minutes")}}
    return CenterSettingsForm.initial_from(row)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def center_marketplace_settings(request):
    actor = actor_of(request)
    center = actor.active_organization
    if center is None or not policy.can_manage_settings(actor, center):
        raise NotFound()
    form = CenterSettingsForm(request.POST or None, initial=_initial(center))
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            center_settings_update(actor=actor, center=center, data=form.cleaned_data, request=request)
        if call.ok:
            messages.success(request, "Marketplace settings saved.")
            return redirect("center_marketplace_settings")
    # The webhooks part is the webhooks module's: one call, its template only when it answers.
    webhooks_context = (webhooks.webhooks_context(actor=actor, center=center)
                        if hasattr(webhooks, "webhooks_context") else None)
    return render(request, "marketplace/center_settings.html", {
        **(webhooks_context or {}), "form": form, "center": center, "show_webhooks": webhooks_context is not None,
    }, status=400 if form.is_bound and form.errors else 200)
