"""The patient's side of a second opinion (issue 17): reading the signed report, and the one follow-up question.

- ``patient_report``: the signed second opinion as its patient reads it — the plain-language summary
  first, a sentence on agreement with the original report, the signed sections and fields, the addenda,
  and the original report when one was given. None until the report is final; NotFound for anyone but
  the ordering patient; every read is audited as a read of patient data before anything is returned.
- ``patient_report_pdf``: the delivered PDF (with the summary section), for the patient's doctor.
- One follow-up question: the patient asks once (at most 1,000 characters) within 7 days of signing;
  the reader answers once. This is the only way a reader reaches the patient: the request's message
  thread is closed on second opinions (``reporting.services.messages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace.models import Kind, ReadRequest, SecondOpinionOrder
from marketplace.services import events
from marketplace.services.offers import profile_of
from reporting import selectors, templates
from reporting.models import (
    MAX_PATIENT_ANSWER_CHARS,
    MAX_PATIENT_QUESTION_CHARS,
    PATIENT_SUMMARY,
    Addendum,
    PatientQuestion,
    Report,
)
from reporting.seed_templates import AGREEMENT
from reporting.services import delivery

FOLLOW_UP_DAYS = 7

AGREEMENT_SENTENCES = {
    "agrees": "The specialist agrees with your original report.",
    "partly_agrees": "The specialist partly agrees with your original report: the summary says where they differ.",
    "disagrees": "The specialist disagrees with your original report: the summary says what they found instead.",
    "no_original": "No original report was given, so the specialist did not compare their reading with one.",
}


# --- who may see which order ------------------------------------------------------------------------

def _check_patient(actor: Actor, order: SecondOpinionOrder) -> None:
    """Only the patient who ordered it; anyone else (another patient, the reader, a center) gets 404."""
    if actor.user is None or order is None or order.patient_id != actor.user.pk:
        raise NotFound("Order not found.")


def opinion_order_get(*, actor: Actor, public_id) -> SecondOpinionOrder:
    """One of the actor's own second-opinion orders (404 for anyone else's or a missing one)."""
    order = (SecondOpinionOrder.objects.select_related("study", "read_request")
             .filter(public_id=public_id).first())
    _check_patient(actor, order)
    return order


def _final_report(order: SecondOpinionOrder) -> Report | None:
    if order.read_request_id is None:
        return None
    return (Report.objects.select_related(*selectors.REPORT_RELATED)
            .filter(read_request_id=order.read_request_id, status=Report.Status.FINAL).first())


def report_is_ready(*, actor: Actor, order: SecondOpinionOrder) -> bool:
    """Whether the second opinion is signed (no patient data: the order page decides what to offer)."""
    _check_patient(actor, order)
    return order.read_request_id is not None and Report.objects.filter(
        read_request_id=order.read_request_id, status=Report.Status.FINAL).exists()


# --- the report as the patient reads it -------------------------------------------------------------

@dataclass(frozen=True)
class ReportSection:
    title: str
    text: str


@dataclass(frozen=True)
class FollowUp:
    """The follow-up question's state: the question and answer if any, and whether one may still be asked."""

    question: PatientQuestion | None
    ask_until: datetime
    can_ask: bool
    refusal: str  # why not, in the patient's words ("" when they can ask)


@dataclass(frozen=True)
class PatientReport:
    order: SecondOpinionOrder
    report: Report
    summary: str
    agreement: str  # a code of seed_templates.AGREEMENT_CHOICES ("" if the template had none)
    agreement_sentence: str
    sections: tuple[ReportSection, ...]
    fields: tuple[tuple[str, str], ...]  # (label, value as read)
    addenda: tuple[Addendum, ...]
    original: object | None  # studies.OriginalReport, when the patient gave one
    follow_up: FollowUp


def original_report_of(study) -> object | None:
    """The original report the patient gave with the study (the latest), or None."""
    try:
        model = apps.get_model("studies", "OriginalReport")
    except LookupError:  # the studies app keeps no original reports in this installation
        return None
    return model.objects.filter(study=study).order_by("-uploaded_at").first()


def follow_up_state(report: Report, now: datetime | None = None) -> FollowUp:
    now = now or timezone.now()
    question = PatientQuestion.objects.filter(report=report).select_related("answered_by").first()
    ask_until = report.signed_at + timedelta(days=FOLLOW_UP_DAYS)
    if question is not None:
        refusal = "You have asked your one follow-up question about this report."
    elif now > ask_until:
        refusal = (f"The {FOLLOW_UP_DAYS} days for a follow-up question ended on "
                   f"{ask_until:%B} {ask_until.day}, {ask_until:%Y at %H:%M} UTC.")
    else:
        refusal = ""
    return FollowUp(question=question, ask_until=ask_until, can_ask=not refusal, refusal=refusal)


def summary_review(report: Report) -> dict:
    """What the reader confirms at the sign step: the summary and agreement as the patient will read them."""
    agreement = str(report.fields.get(AGREEMENT, ""))
    return {"summary": report.sections.get(PATIENT_SUMMARY, "").strip(),
            "agreement_sentence": AGREEMENT_SENTENCES.get(agreement, "")}


def patient_report(*, actor: Actor, order: SecondOpinionOrder,
                   request: HttpRequest | None = None) -> PatientReport | None:
    """The ordering patient's signed second opinion (None until it is final); audited before it is returned."""
    _check_patient(actor, order)
    report = _final_report(order)
    if report is None:
        return None
    signed = report.template_snapshot or {"sections": report.template.sections, "fields": report.template.fields}
    sections = tuple(ReportSection(s["title"], report.sections.get(s["code"], "")) for s in signed["sections"]
                     if s["code"] != PATIENT_SUMMARY and report.sections.get(s["code"], "").strip())
    fields = tuple((f["label"], templates.choice_label(f, str(report.fields.get(f["code"], ""))))
                   for f in signed["fields"] if f["code"] != AGREEMENT and str(report.fields.get(f["code"], "")))
    agreement = str(report.fields.get(AGREEMENT, ""))
    audit_record(action="report.viewed_by_patient", actor=actor.user, request=request,
                 organization_id=report.read_request.center_id, object_type="reporting.report",
                 object_id=str(report.public_id), phi_read=True, extra={"order": str(order.public_id)})
    return PatientReport(order=order, report=report, summary=report.sections.get(PATIENT_SUMMARY, "").strip(),
                         agreement=agreement, agreement_sentence=AGREEMENT_SENTENCES.get(agreement, ""),
                         sections=sections, fields=fields, addenda=tuple(selectors.addenda_of(report)),
                         original=original_report_of(order.study), follow_up=follow_up_state(report))


def patient_report_pdf(*, actor: Actor, order: SecondOpinionOrder,
                       request: HttpRequest | None = None) -> delivery.Download:
    """The signed second opinion as delivered (PDF with the summary and the addenda so far), for the
    patient's doctor; 404 until it is final. Audited as a download before the bytes are handed out."""
    _check_patient(actor, order)
    report = _final_report(order)
    if report is None:
        raise NotFound("The report is not ready yet.")
    return delivery.report_download(actor=actor, report=report, form=delivery.Form.PDF, addenda_count=None,
                                    request=request, via="patient")


# --- the one follow-up question ---------------------------------------------------------------------

def _clean(field: str, value, limit: int, what: str) -> str:
    if not isinstance(value, str):
        raise ApplicationError.for_field(field, f"Your {what} must be text.")
    if "\x00" in value:
        raise ApplicationError.for_field(field, f"Your {what} contains a NUL character, which it cannot hold.")
    value = value.replace("\r\n", "\n").strip()
    if not value:
        raise ApplicationError.for_field(field, f"Write your {what}.", code="required")
    if len(value) > limit:
        raise ApplicationError.for_field(field, f"Your {what} can be at most {limit:,} characters (this one has "
                                                f"{len(value):,}).", code="too_long")
    return value


def _refused(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=409, fields={"question": [message]})


@transaction.atomic
def patient_question_ask(*, actor: Actor, order: SecondOpinionOrder, text: str, request: HttpRequest | None = None,
                         now: datetime | None = None) -> PatientQuestion:
    """The patient's one follow-up question to the reader, within 7 days of signing (``now``: the clock);
    the reader is told (the notice carries no text: it may hold health details)."""
    _check_patient(actor, order)
    report = _final_report(order)
    if report is None:
        raise _refused("You can ask a follow-up question once the report is ready.", "report_not_ready")
    state = follow_up_state(report, now)
    if not state.can_ask:
        raise _refused(state.refusal, "already_asked" if state.question else "follow_up_closed")
    text = _clean("question", text, MAX_PATIENT_QUESTION_CHARS, "question")
    try:
        with transaction.atomic():
            question = PatientQuestion.objects.create(report=report, asked_by=actor.user, question=text)
    except IntegrityError:  # a second tab asked at the same moment: one question per report
        raise _refused("You have asked your one follow-up question about this report.", "already_asked") from None
    read_request = report.read_request
    audit_record(action="patient_question.asked", actor=actor.user, request=request,
                 organization_id=read_request.center_id, object_type="reporting.report",
                 object_id=str(report.public_id), extra={"order": str(order.public_id), "chars": len(text)})
    events.notify([report.radiologist.user], title="A patient asked a follow-up question about your second opinion",
                  body="Answer it once, in the reading workspace.",
                  url=reverse("report_workspace", args=[read_request.public_id]))
    return question


def question_for_reader(*, actor: Actor, read_request: ReadRequest) -> PatientQuestion | None:
    """The patient's question on a second opinion the actor signed (the caller fetched the request
    through ``reporting.selectors.assigned_request``)."""
    profile = profile_of(actor)
    if profile is None or read_request.kind != Kind.SECOND_OPINION:
        return None
    return PatientQuestion.objects.filter(report__read_request=read_request, report__radiologist=profile).first()


def questions_awaiting_answer(*, actor: Actor):
    """The actor's unanswered patient questions, oldest first (for the reader's worklist)."""
    profile = profile_of(actor)
    if profile is None:
        return PatientQuestion.objects.none()
    return (PatientQuestion.objects.filter(report__radiologist=profile, answered_at__isnull=True)
            .select_related("report__read_request__study").order_by("created_at", "id"))


@transaction.atomic
def patient_question_answer(*, actor: Actor, read_request: ReadRequest, text: str,
                            request: HttpRequest | None = None) -> PatientQuestion:
    """The reader's one answer to the patient's question; the patient is told where to read it."""
    profile = profile_of(actor)
    question = (PatientQuestion.objects.select_for_update(of=("self",))
                .select_related("report__read_request").filter(report__read_request=read_request).first())
    if profile is None or question is None or question.report.radiologist_id != profile.pk:
        raise NotFound("Question not found.")
    if question.answered_at is not None:
        message = "You have answered this question already: a second opinion has one question and one answer."
        raise ApplicationError(message, code="already_answered", status_code=409, fields={"answer": [message]})
    question.answer = _clean("answer", text, MAX_PATIENT_ANSWER_CHARS, "answer")
    question.answered_by, question.answered_at = actor.user, timezone.now()
    question.save(update_fields=["answer", "answered_by", "answered_at", "updated_at"])
    audit_record(action="patient_question.answered", actor=actor.user, request=request,
                 organization_id=read_request.center_id, object_type="reporting.report",
                 object_id=str(question.report.public_id), extra={"chars": len(question.answer)})
    order = SecondOpinionOrder.objects.filter(read_request=read_request).select_related("patient").first()
    if order is not None:
        events.notify([order.patient], title="The specialist answered your follow-up question",
                      body="Read the answer with your second opinion in ReadRoom.",
                      url=reverse("opinion_order_detail", args=[order.public_id]))
    return question
