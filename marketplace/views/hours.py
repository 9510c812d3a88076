"""The radiologist's own reading hours (weekly, in their zone), extra shifts, time off and minimum rates."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace.forms import MinimumRatesForm, TimeOffForm, TimeOffRemoveForm
from marketplace.models import MinimumRate
from marketplace.schedule_forms import ExtraShiftForm, ExtraShiftRemoveForm, ReadingHoursZoneForm
from marketplace.services import profile as services
from marketplace.services.offers import profile_of


def _rates_initial(profile) -> dict:
    return {f"rate_{r.modality}_{r.priority}": r.cents
            for r in MinimumRate.objects.filter(radiologist=profile, currency="USD")}


def _modalities(profile) -> list[str]:
    rated = MinimumRate.objects.filter(radiologist=profile).values_list("modality", flat=True)
    return sorted({*(m.upper() for m in profile.modalities), *rated})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def reading_hours(request):
    """Small forms on one page, told apart by ``action``: hours (and zone), extra shifts and time off
    (add/remove), rates."""
    actor = actor_of(request)
    profile = profile_of(actor)
    if profile is None:
        raise NotFound()
    zone = profile.home_time_zone
    action = request.POST.get("action", "") if request.method == "POST" else ""
    posted = request.POST if action else None
    hours_form = ReadingHoursZoneForm(posted if action == "hours" else None,
                                      initial={**ReadingHoursZoneForm.initial_from(profile.reading_hours.all()),
                                               "zone": zone})
    time_off_form = TimeOffForm(posted if action == "time_off_add" else None, zone=zone)
    extra_form = ExtraShiftForm(posted if action == "extra_shift_add" else None, zone=zone)
    rates_form = MinimumRatesForm(posted if action == "rates" else None, modalities=_modalities(profile),
                                  initial=_rates_initial(profile))
    saved = None
    if action == "hours" and hours_form.is_valid():
        with rule_refusals(hours_form.add_application_error) as call:
            services.reading_hours_set(actor=actor, windows=hours_form.cleaned_data["windows"],
                                       zone=hours_form.cleaned_data["zone"] or None, request=request)
        saved = call.ok and "Reading hours saved."
    elif action == "time_off_add" and time_off_form.is_valid():
        with rule_refusals(time_off_form.add_application_error) as call:
            services.time_off_add(actor=actor, starts_at=time_off_form.cleaned_data["starts_at"],
                                  ends_at=time_off_form.cleaned_data["ends_at"],
                                  note=time_off_form.cleaned_data["note"], request=request)
        saved = call.ok and "Time off added."
    elif action == "extra_shift_add" and extra_form.is_valid():
        with rule_refusals(extra_form.add_application_error) as call:
            services.extra_shift_add(actor=actor, starts_at=extra_form.cleaned_data["starts_at"],
                                     ends_at=extra_form.cleaned_data["ends_at"], note=extra_form.cleaned_data["note"],
                                     request=request)
        saved = call.ok and "Extra shift added."
    elif action == "extra_shift_remove":
        remove = ExtraShiftRemoveForm(request.POST)
        if not remove.is_valid():
            raise NotFound()
        services.extra_shift_remove(actor=actor, extra_shift_id=remove.cleaned_data["extra_shift"], request=request)
        saved = "Extra shift removed."
    elif action == "time_off_remove":
        remove = TimeOffRemoveForm(request.POST)
        if not remove.is_valid():
            raise NotFound()
        services.time_off_remove(actor=actor, time_off_id=remove.cleaned_data["time_off"], request=request)
        saved = "Time off removed."
    elif action == "rates" and rates_form.is_valid():
        with rule_refusals(rates_form.add_application_error) as call:
            services.minimum_rates_set(actor=actor, rates=rates_form.rates(), request=request)
        saved = call.ok and "Minimum rates saved."
    if saved:
        messages.success(request, saved)
        return redirect("reading_hours")
    return render(request, "marketplace/reading_hours.html", {
        "profile": profile, "zone": zone, "hours_form": hours_form, "time_off_form": time_off_form,
        "rates_form": rates_form, "time_off": list(profile.time_off.order_by("starts_at")),
        "extra_form": extra_form, "extra_shifts": list(profile.extra_shifts.order_by("starts_at")),
        "priorities": ["STAT", "Urgent", "Routine"],
    }, status=400 if action else 200)
