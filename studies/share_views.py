"""The center's side of patients' share requests: the admins see them, approve (choosing the study) or decline,
and revoke a share. Thin: studies.shares holds the workflow and its rules."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from studies import page_selectors, policy, shares


class ShareDeclineForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)


@login_required
@require_http_methods(["GET"])
@page_errors
def share_request_list(request):
    """The active center's share requests: open ones with the studies that match, then the answered ones."""
    actor = actor_of(request)
    requests_ = list(shares.share_requests_of_center(actor=actor))
    open_requests = [{"share": s, "candidates": [page_selectors.study_row(study, policy.FULL)
                                                 for study in shares.share_candidate_studies(share=s)]}
                     for s in requests_ if s.status == shares.Status.REQUESTED]
    answered = [s for s in requests_ if s.status != shares.Status.REQUESTED]
    return render(request, "patients/share_requests.html", {"open_requests": open_requests, "answered": answered,
                                                            "center": actor.active_organization})


@login_required
@require_POST
@page_errors
def share_request_approve(request, public_id):
    actor = actor_of(request)
    share = shares.share_get(actor=actor, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        shares.share_request_approve(actor=actor, share=share, study_public_id=request.POST.get("study"),
                                     request=request)
    if call.ok:
        messages.success(request, f"The study is shared with {share.patient.display_name}.")
    return redirect("share_request_list")


@login_required
@require_POST
@page_errors
def share_request_decline(request, public_id):
    actor = actor_of(request)
    share = shares.share_get(actor=actor, public_id=public_id)
    form = ShareDeclineForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    with rule_refusals(message_refusal(request)) as call:
        shares.share_request_decline(actor=actor, share=share, reason=reason, request=request)
    if call.ok:
        messages.success(request, "The request is declined; the patient sees your reason.")
    return redirect("share_request_list")


@login_required
@require_POST
@page_errors
def share_request_revoke(request, public_id):
    actor = actor_of(request)
    share = shares.share_get(actor=actor, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        shares.share_revoke(actor=actor, share=share, request=request)
    if call.ok:
        messages.success(request, f"The study is no longer shared with {share.patient.display_name}.")
    return redirect("share_request_list")
