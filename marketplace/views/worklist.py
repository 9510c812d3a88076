"""The radiologist's worklist: offers (de-identified: no patient data, no clinical history) to claim or
decline, and "my reads" by deadline with open-in-viewer and release.

A lost claim race (the service's 409) is a message on the worklist, never an error page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from core.errors import NotFound
from marketplace import policy, selectors
from marketplace.forms import DeclineForm, ReasonForm
from marketplace.services import offers as offer_services


def _radiologist(request):
    actor = actor_of(request)
    if not policy.is_radiologist(actor) or offer_services.profile_of(actor) is None:
        raise NotFound()
    return actor


def _rows_context(actor) -> dict:
    return {"offers": list(selectors.offer_list(actor=actor)),
            "reads": list(selectors.assignment_list(actor=actor))}


@login_required
@require_http_methods(["GET"])
@page_errors
def radiologist_worklist(request):
    """Offers to take and the reads taken, soonest deadline first; the rows refresh themselves."""
    actor = _radiologist(request)
    return render(request, "marketplace/worklist.html", _rows_context(actor))


@login_required
@require_http_methods(["GET"])
@page_errors
def radiologist_worklist_rows(request):
    actor = _radiologist(request)
    return render(request, "marketplace/_worklist_rows.html", _rows_context(actor))


@login_required
@require_POST
@page_errors
def offer_claim(request, public_id):
    """Take the read. The first claim wins; a later one says why it lost ("already claimed", "expired" …)."""
    actor = actor_of(request)
    offer = selectors.offer_get(actor=actor, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        offer_services.offer_claim(actor=actor, offer=offer, request=request)
    if call.ok:
        messages.success(request, "The read is yours: it is under My reads. Open it in the viewer to start.")
    return redirect("radiologist_worklist")


@login_required
@require_POST
@page_errors
def offer_decline(request, public_id):
    actor = actor_of(request)
    offer = selectors.offer_get(actor=actor, public_id=public_id)
    form = DeclineForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The reason is at most 500 characters.")
        return redirect("radiologist_worklist")
    with rule_refusals(message_refusal(request)) as call:
        offer_services.offer_decline(actor=actor, offer=offer, reason=form.cleaned_data["reason"], request=request)
    if call.ok:
        messages.success(request, "Offer declined.")
    return redirect("radiologist_worklist")


@login_required
@require_POST
@page_errors
def assignment_open(request, public_id):
    """Start reading (assigned → in progress) and go to the reading workspace (the viewer beside the report)."""
    actor = actor_of(request)
    assignment = selectors.assignment_get(actor=actor, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        offer_services.assignment_start(actor=actor, assignment=assignment, request=request)
    if not call.ok:
        return redirect("radiologist_worklist")
    return redirect("report_workspace", public_id=assignment.read_request.public_id)  # reporting's page, by name


@login_required
@require_POST
@page_errors
def assignment_release(request, public_id):
    """Give a read back with a reason; it reopens for the others."""
    actor = actor_of(request)
    assignment = selectors.assignment_get(actor=actor, public_id=public_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why you give this read back.")
        return redirect("radiologist_worklist")
    with rule_refusals(message_refusal(request)) as call:
        offer_services.assignment_release(actor=actor, assignment=assignment, reason=form.cleaned_data["reason"],
                                          request=request)
    if call.ok:
        messages.success(request, "Read released: it is offered to the other readers again.")
    return redirect("radiologist_worklist")
