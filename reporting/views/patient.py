"""The patient's second opinion (issue 17): the report panel on the order page, its PDF, the one follow-up
question, and the reader's one answer (from the reading workspace; the worklist lists the waiting ones).

The order page (``opinion_order_detail``) loads the panel by URL name (``patient_report``, an htmx
fragment; a browser without htmx gets it as a page). Anyone but the ordering patient gets 404
(``reporting.patient``). A patient who turned on a second factor confirms a fresh code before the
report is shown or downloaded (``accounts.mfa``); one without has none to confirm.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.mfa import fresh_mfa_url, has_fresh_mfa, has_totp
from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace.services.offers import profile_of
from reporting import patient, selectors
from reporting.models import MAX_PATIENT_QUESTION_CHARS


def _needs_second_factor(request: HttpRequest) -> bool:
    return has_totp(request.user) and not has_fresh_mfa(request)


def _order_page(order) -> str:
    return reverse("opinion_order_detail", args=[order.public_id])


def report_panel_context(request: HttpRequest, order, *, question: str = "", errors: list[str] | None = None) -> dict:
    """What ``reporting/patient_report.html`` shows: ``state`` is ``not_ready``, ``confirm_code`` (the report
    is signed and the patient must confirm a fresh code first: ``mfa_url``) or ``ready`` (``opinion``)."""
    actor = actor_of(request)
    context = {"order": order, "opinion": None, "question": question, "errors": errors or [],
               "max_question_chars": MAX_PATIENT_QUESTION_CHARS}
    if not patient.report_is_ready(actor=actor, order=order):
        return {**context, "state": "not_ready"}
    if _needs_second_factor(request):
        return {**context, "state": "confirm_code", "mfa_url": fresh_mfa_url(_order_page(order))}
    return {**context, "state": "ready", "opinion": patient.patient_report(actor=actor, order=order, request=request)}


def _render_panel(request, order, *, status: int = 200, **kwargs):
    context = report_panel_context(request, order, **kwargs)
    if request.htmx:
        # htmx swaps only 2xx answers: a refused question comes back as the panel with its error shown.
        return render(request, "reporting/patient_report.html", context)
    return render(request, "reporting/patient_report_page.html", context, status=status)


@login_required
@require_http_methods(["GET"])
@page_errors
def patient_report(request, public_id):
    """The signed second opinion for its patient (htmx fragment of the order page, or a page)."""
    order = patient.opinion_order_get(actor=actor_of(request), public_id=public_id)
    if not request.htmx and _needs_second_factor(request) and patient.report_is_ready(actor=actor_of(request),
                                                                                       order=order):
        return redirect(fresh_mfa_url(request.get_full_path()))
    return _render_panel(request, order)


@login_required
@require_http_methods(["GET"])
@page_errors
def patient_report_pdf(request, public_id):
    """The signed report as a PDF for the patient's doctor (audited); a fresh code first if MFA is on."""
    actor = actor_of(request)
    order = patient.opinion_order_get(actor=actor, public_id=public_id)
    if _needs_second_factor(request):
        return redirect(fresh_mfa_url(request.get_full_path()))
    got = patient.patient_report_pdf(actor=actor, order=order, request=request)
    response = FileResponse(iter([got.content]), content_type=got.content_type)
    response["Content-Disposition"] = f'attachment; filename="second-opinion-{order.public_id}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
@page_errors
def patient_question_ask(request, public_id):
    """The patient's one follow-up question; back to the order page, or the panel with the refusal."""
    actor = actor_of(request)
    order = patient.opinion_order_get(actor=actor, public_id=public_id)
    if _needs_second_factor(request):
        return redirect(fresh_mfa_url(_order_page(order)))
    text = request.POST.get("question", "")
    errors: list[str] = []
    with rule_refusals(lambda exc: errors.extend([m for ms in (exc.fields or {}).values() for m in ms]
                                                 or [exc.message])) as call:
        patient.patient_question_ask(actor=actor, order=order, text=text, request=request)
    if not call.ok:
        return _render_panel(request, order, question=text, errors=errors, status=400)
    if request.htmx:
        return _render_panel(request, order)
    messages.success(request, "Your question was sent to the specialist. You will be told when they answer.")
    return redirect(_order_page(order))


@login_required
@require_POST
@page_errors
def patient_question_answer(request, public_id):
    """The reader's one answer to the patient's question, from the reading workspace."""
    actor = actor_of(request)
    read_request = selectors.assigned_request(actor=actor, public_id=public_id)
    with rule_refusals(lambda exc: messages.error(request, exc.message)) as call:
        patient.patient_question_answer(actor=actor, read_request=read_request,
                                        text=request.POST.get("answer", ""), request=request)
    if call.ok:
        messages.success(request, "Your answer was sent to the patient.")
    return redirect("report_workspace", public_id=read_request.public_id)


@login_required
@require_http_methods(["GET"])
@page_errors
def patient_questions_waiting(request):
    """The reader's unanswered patient questions (an htmx fragment of the worklist); 404 for anyone not a reader."""
    actor = actor_of(request)
    if profile_of(actor) is None:
        raise NotFound()
    return render(request, "reporting/patient_questions_waiting.html",
                  {"waiting": list(patient.questions_awaiting_answer(actor=actor))})


urlpatterns = [
    path("my/opinions/<uuid:public_id>/report/", patient_report, name="patient_report"),
    path("my/opinions/<uuid:public_id>/report.pdf", patient_report_pdf, name="patient_report_pdf"),
    path("my/opinions/<uuid:public_id>/question/", patient_question_ask, name="patient_question_ask"),
    path("worklist/reads/<uuid:public_id>/patient-question/", patient_question_answer,
         name="patient_question_answer"),
    path("worklist/patient-questions/", patient_questions_waiting, name="patient_questions_waiting"),
]

__all__ = ["report_panel_context", "urlpatterns"]
