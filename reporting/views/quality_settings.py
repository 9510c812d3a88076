"""The peer-review programme's settings page: sampling rate and QA radiologists (a center's or group's admins),
with how many reports each modality has had sampled so far."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.views.common import actor_of, page_errors, rule_refusals
from marketplace.forms import ProfileMultipleChoiceField, radiologists
from reporting.quality import sampling
from reporting.quality import settings as programme


class QualitySettingsForm(forms.Form):
    review_percent = forms.DecimalField(min_value=Decimal(0), max_value=Decimal(100), decimal_places=2,
                                        label="Share of signed reports peer reviewed (%)",
                                        help_text="Sampled per modality; 2.5 % is the default for a center.")
    qa_radiologists = ProfileMultipleChoiceField(queryset=None, required=False, label="QA radiologists",
                                                 help_text="They arbitrate scores of 2b, 3a and 3b.",
                                                 widget=forms.SelectMultiple(attrs={"size": 8}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["qa_radiologists"].queryset = radiologists()


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def quality_settings(request):
    actor = actor_of(request)
    organization = programme.programme_of(actor)
    row = programme.current(organization)
    initial = {"review_percent": Decimal(row.review_basis_points) / 100,
               "qa_radiologists": list(row.qa_radiologists.all()) if row.pk else []}
    form = QualitySettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(lambda exc: form.add_error(None, exc.message)) as call:
            programme.quality_settings_update(
                actor=actor, basis_points=int(form.cleaned_data["review_percent"] * 100),
                qa_radiologists=list(form.cleaned_data["qa_radiologists"]), request=request)
        if call.ok:
            messages.success(request, "Peer-review settings saved.")
            return redirect("quality_settings")
    return render(request, "reporting/quality/settings.html", {
        "form": form, "organization": organization, "strata": sampling.reviewed_share(organization.pk)},
        status=400 if form.is_bound and form.errors else 200)


urlpatterns = [path("quality/settings/", quality_settings, name="quality_settings")]
