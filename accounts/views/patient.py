"""A patient's details (date of birth, where they live): the page every patient fills in before bringing
images (issue 17). Thin: accounts.patients holds the rule and opens their personal space on the first save."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.forms import ApplicationErrorFormMixin
from accounts.patients import patient_details_save, patient_profile
from accounts.views.common import actor_of, page_errors, rule_refusals, safe_next
from core.errors import NotFound


class PatientDetailsForm(ApplicationErrorFormMixin, forms.Form):
    # ISO only: "02/04/1979" is Feb 4 in one country and Apr 2 in another (the date picker sends ISO).
    date_of_birth = forms.DateField(label="Date of birth", input_formats=["%Y-%m-%d"],
                                    widget=forms.DateInput(attrs={"type": "date"}),
                                    error_messages={"required": "Enter your date of birth.",
                                                    "invalid": "Enter your date of birth as YYYY-MM-DD."})
    country = forms.CharField(max_length=2, label="Country where you live",
                              widget=forms.TextInput(attrs={"autocomplete": "country", "placeholder": "US",
                                                            "autocapitalize": "characters"}),
                              help_text="Two-letter code, e.g. US, CA, DE.",
                              error_messages={"required": "Enter the two-letter country code, e.g. US."})
    region = forms.CharField(max_length=3, required=False, label="State / province",
                             widget=forms.TextInput(attrs={"autocomplete": "address-level1", "placeholder": "TX",
                                                           "autocapitalize": "characters"}),
                             help_text="In the US, Canada and Australia: the state or province code, e.g. TX, ON.")


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def patient_details(request):
    """Your details: where you live decides which licenses the reader of your second opinion needs."""
    actor = actor_of(request)
    if not actor.is_patient:
        raise NotFound()
    profile = patient_profile(request.user)
    initial = ({"date_of_birth": profile.date_of_birth, "country": profile.country, "region": profile.region}
               if profile else {})
    form = PatientDetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            patient_details_save(actor=actor, date_of_birth=form.cleaned_data["date_of_birth"],
                                 country=form.cleaned_data["country"], region=form.cleaned_data["region"],
                                 request=request)
        if call.ok:
            messages.success(request, "Your details are saved.")
            return redirect(safe_next(request, request.POST.get("next"), reverse("patient_images")))
    return render(request, "patients/details.html", {"form": form, "profile": profile,
                                                     "next": request.GET.get("next", request.POST.get("next", ""))},
                  status=400 if form.errors else 200)
