"""The center's read-request pages: post (from one or several studies), the worklist with its SLA clocks,
a request's page (history, offers, cancel) and the explain page (who can read it, and why not the others).

Thin: the shape of the input in ``marketplace.forms``, one service or selector call, a template.
Access is decided by ``marketplace.policy`` through the selectors and services (404 otherwise).
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile
from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace import policy, pricing, selectors
from marketplace.forms import ReadRequestForm, ReasonForm, RequestFilterForm, WhyNotForm
from marketplace.models import Kind, Priority, Status
from marketplace.services.matching import match
from marketplace.services.requests import PostData, default_deadline, imaging_modalities, read_request_post
from marketplace.services.requests import read_request_cancel as cancel_service
from studies import selectors as study_selectors

PAGE_SIZE = 50


def _center(actor) -> Organization:
    """The active organization when it is an imaging center whose requests the actor sees; else 404."""
    center = actor.active_organization
    if center is None or center.kind != Organization.Kind.IMAGING_CENTER \
            or not policy.can_view_center_requests(actor, center):
        raise NotFound()
    return center


# --- the worklist -------------------------------------------------------------------------------------

def _rows_context(request, actor, center) -> dict:
    filters = RequestFilterForm(request.GET or None)
    queryset = selectors.read_request_filter(selectors.read_request_list(actor=actor, center=center),
                                             **filters.values())
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    return {"filters": filters, "page_obj": page, "rows": rows, "open_offers": selectors.open_offer_counts(rows),
            "query": request.GET.urlencode()}


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_list(request):
    """All the active center's read requests, soonest deadline first, with their SLA clocks; filterable."""
    actor = actor_of(request)
    center = _center(actor)
    return render(request, "marketplace/read_request_list.html", {
        **_rows_context(request, actor, center), "center": center, "can_post": policy.can_post(actor, center)})


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_rows(request):
    """The table body alone, re-fetched by htmx every 15 s."""
    actor = actor_of(request)
    center = _center(actor)
    return render(request, "marketplace/_read_request_rows.html", _rows_context(request, actor, center))


# --- posting ------------------------------------------------------------------------------------------

def _studies(actor, center, ids: list[str]):
    """The center's studies named by public id (each fully visible to the actor), or 404 for any other."""
    try:
        wanted = list(dict.fromkeys(uuid.UUID(value) for value in ids))
    except ValueError:
        raise NotFound("Study not found.") from None
    found = {s.public_id: s for s in study_selectors.study_list(actor=actor).filter(
        organization=center, public_id__in=wanted).prefetch_related("series")}
    if len(found) != len(wanted):
        raise NotFound("Study not found.")
    return [found[public_id] for public_id in wanted]


def _quotes(center, studies, kind: str) -> list[dict]:
    """The quote and deadline each study would get, per priority (what posting will lock)."""
    now = timezone.now()
    rows = []
    for study in studies:
        modalities = imaging_modalities(study)
        rows.append({"study": study, "modalities": modalities, "by_priority": [
            {"priority": label,
             "quote": pricing.format_money(*_quote(center, modalities, value, kind)),
             "deadline": default_deadline(center, priority=value, kind=kind, now=now)}
            for value, label in Priority.choices]})
    return rows


def _quote(center, modalities, priority, kind) -> tuple[int, str]:
    quote = pricing.quote_for(center=center, modalities=modalities, priority=priority, kind=kind)
    return quote.cents, quote.currency


def _post_data(study, cleaned: dict) -> PostData:
    return PostData(
        study=study, kind=cleaned["kind"], priority=cleaned["priority"], subspecialty=cleaned["subspecialty"],
        clinical_history=cleaned["clinical_history"], reason_for_exam=cleaned["reason_for_exam"],
        special_instructions=cleaned["special_instructions"],
        comparison_studies=list(cleaned.get("comparison_studies") or []), audience=cleaned["audience"],
        preferred_radiologists=list(cleaned["preferred_radiologists"]),
        preferred_groups=list(cleaned["preferred_groups"]), widen_after_minutes=cleaned["widen_after"],
        direct_radiologist=cleaned["direct_radiologist"], direct_group=cleaned["direct_group"],
        original_request=cleaned.get("original_request"), levels=cleaned.get("levels") or 1)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def read_request_create(request):
    """Ask for a read of one study (from its page) or several (ticked in the study list): one request each."""
    actor = actor_of(request)
    center = actor.active_organization
    if center is None or not policy.can_post(actor, center):
        raise NotFound()
    source = request.POST if request.method == "POST" else request.GET
    studies = _studies(actor, center, source.getlist("study"))
    single = studies[0] if len(studies) == 1 else None
    comparison = original = None
    if single is not None:
        comparison = (study_selectors.study_list(actor=actor).filter(organization=center,
                                                                     patient_id=single.patient_id)
                      .exclude(pk=single.pk).order_by("-study_date", "-id") if single.patient_id else None)
        original = selectors.read_request_list(actor=actor, center=center).filter(
            study=single, status__in=(Status.REPORTED, Status.CLOSED))
    # "Request an overread" on a reported read's page links here with the kind and the read filled in.
    initial = {key: request.GET[key] for key in ("kind", "original_request") if request.GET.get(key)}
    form = ReadRequestForm(request.POST if request.method == "POST" else None, comparison_queryset=comparison,
                           original_queryset=original, initial=initial)
    if request.method == "POST" and studies and form.is_valid():
        created = []
        with rule_refusals(form.add_application_error) as call, transaction.atomic():
            for study in studies:
                read_request, _ = read_request_post(actor=actor, center=center,
                                                    data=_post_data(study, form.cleaned_data), request=request)
                created.append(read_request)
        if call.ok:
            messages.success(request, f"{len(created)} read request{'s' if len(created) > 1 else ''} posted.")
            if len(created) == 1:
                return redirect("read_request_detail", public_id=created[0].public_id)
            return redirect("read_request_list")
    kind = form.data.get("kind") if form.is_bound else Kind.PRIMARY
    return render(request, "marketplace/read_request_create.html", {
        "form": form, "studies": studies, "center": center,
        "quotes": _quotes(center, studies, kind if kind in Kind.values else Kind.PRIMARY),
    }, status=400 if form.is_bound and form.errors else 200)


# --- one request --------------------------------------------------------------------------------------

def _detail_context(actor, read_request, **extra) -> dict:
    center_side = selectors.can_explain(actor, read_request)
    assignment = selectors.assignment_list(actor=actor).filter(read_request=read_request).first()
    return {
        "rr": read_request,
        "history": list(selectors.read_request_history(read_request=read_request)),
        "offers": list(selectors.offers_of(read_request)) if center_side else [],
        "comparison_studies": list(read_request.comparison_studies.all()),
        "center_side": center_side,
        "can_cancel": policy.can_cancel(actor, read_request.center_id) and read_request.status in (
            Status.DRAFT, Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS, Status.RELEASED),
        "assignment": assignment,
        "cancel_form": extra.pop("cancel_form", None) or ReasonForm(),
        **extra,
    }


def _audit_viewed(actor, read_request, request) -> None:
    """The page shows clinical history: a read of patient data."""
    audit_record(action="read_request.viewed", actor=actor.user, request=request,
                 organization_id=read_request.center_id, object_type="marketplace.readrequest",
                 object_id=str(read_request.public_id), phi_read=True)


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_detail(request, public_id):
    """Everything about one request: its clinical data, status history, offers, assignee and clock."""
    actor = actor_of(request)
    read_request = selectors.read_request_get(actor=actor, public_id=public_id)
    _audit_viewed(actor, read_request, request)
    return render(request, "marketplace/read_request_detail.html", _detail_context(actor, read_request))


@login_required
@require_POST
@page_errors
def read_request_cancel(request, public_id):
    """The center withdraws a request, with a reason; a refusal shows on the form."""
    actor = actor_of(request)
    read_request = selectors.read_request_get(actor=actor, public_id=public_id)
    form = ReasonForm(request.POST)
    if form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            cancel_service(actor=actor, read_request=read_request, reason=form.cleaned_data["reason"],
                           request=request)
        if call.ok:
            messages.success(request, "Read request cancelled.")
            return redirect("read_request_detail", public_id=read_request.public_id)
    read_request.refresh_from_db()
    _audit_viewed(actor, read_request, request)
    return render(request, "marketplace/read_request_detail.html",
                  _detail_context(actor, read_request, cancel_form=form), status=400)


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_explain(request, public_id):
    """The candidate table: the eligible ranked with their reasons, everyone left out with every reason,
    and "why not Dr X?" for any radiologist."""
    actor = actor_of(request)
    read_request = selectors.read_request_get(actor=actor, public_id=public_id)
    if not selectors.can_explain(actor, read_request):
        raise NotFound()
    result = match(read_request, everyone=False)
    why_form = WhyNotForm(request.GET if "radiologist" in request.GET else None)
    why = None
    if why_form.is_bound and why_form.is_valid():
        single = match(read_request, radiologist_ids=[why_form.cleaned_data["radiologist"].pk])
        why = (single.candidates or single.excluded or [None])[0]
    considered = len(result.candidates) + len(result.excluded)
    return render(request, "marketplace/read_request_explain.html", {
        "rr": read_request, "result": result, "why_form": why_form, "why": why,
        "not_considered": max(RadiologistProfile.objects.count() - considered, 0),
    })
