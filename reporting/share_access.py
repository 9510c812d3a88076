"""What a patient's doctor reads through a share link, without an account (issue 17, item 5).

The link's token finds the share (constant-time comparison); the 6-digit code opens it; five wrong codes
lock it. An expired, revoked or locked share is refused (``ShareClosed``, 410) before anything is read.
Every opening of the report and every image is audited as a read of patient data before it is returned.
Only the order's own study is reachable: any other instance is 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from core.errors import ApplicationError, NotFound
from reporting import selectors, templates
from reporting.models import PATIENT_SUMMARY, Addendum, Report
from reporting.seed_templates import AGREEMENT
from reporting.share_models import MAX_FAILED_CODES, DoctorShare
from reporting.shares import TOKEN_LOOKUP_CHARS, code_matches, doctor_share_transition, final_report_of, token_matches
from studies import render
from studies.models import Instance, Series
from studies.page_selectors import display_person_name

TOKEN_CHARS = 43  # secrets.token_urlsafe(32)
CODE_DIGITS = 6
Status = DoctorShare.Status

AGREEMENT_SENTENCES = {
    "agrees": "The specialist agrees with the original report.",
    "partly_agrees": "The specialist partly agrees with the original report.",
    "disagrees": "The specialist disagrees with the original report.",
    "no_original": "No original report was given to the specialist.",
}


class ShareClosed(ApplicationError):
    """The link was real but no longer opens anything: expired, revoked, or locked after wrong codes."""

    status_code = 410

    def __init__(self, message: str) -> None:
        super().__init__(message, code="share_closed")


def share_for_token(token: str) -> DoctorShare:
    """The share a link's token names; an unknown or mistyped token: 404 (no hint which part was wrong)."""
    token = token or ""
    share = None
    if len(token) == TOKEN_CHARS:
        share = (DoctorShare.objects.select_related("order__study", "order__patient", "order__read_request")
                 .filter(token_lookup=token[:TOKEN_LOOKUP_CHARS]).first())
    if share is None or not token_matches(share, token):
        raise NotFound("This link is not valid. Check that it was copied in full.")
    return share


def check_open(share: DoctorShare, now: datetime | None = None) -> None:
    """Refuse (410) a share that no longer opens, saying why in plain words."""
    if share.status == Status.REVOKED:
        raise ShareClosed("The patient has withdrawn this link. Ask them for a new one if you still need it.")
    if share.status == Status.LOCKED:
        raise ShareClosed(f"This link is locked: the code was entered wrongly {MAX_FAILED_CODES} times. "
                          "The patient can make a new one.")
    if share.is_expired(now):
        raise ShareClosed("This link has expired. Ask the patient for a new one if you still need it.")


def doctor_share_unlock(*, share: DoctorShare, code, request: HttpRequest | None = None) -> DoctorShare:
    """The doctor enters the code. Right: the share opens (the caller remembers it for the session). Wrong: the
    failure is counted (and kept, though the call is refused), and the fifth wrong code locks the share.
    Anything but six digits is refused without counting."""
    code = "".join(code.split()) if isinstance(code, str) else ""
    if not (len(code) == CODE_DIGITS and code.isascii() and code.isdigit()):
        # Cannot be right: told, not counted (a slip of the finger should not bring the lock nearer).
        raise ApplicationError.for_field("code", f"The code is {CODE_DIGITS} digits, such as 042917.",
                                         code="invalid")
    with transaction.atomic():
        share = DoctorShare.objects.select_for_update().select_related("order__study").get(pk=share.pk)
        check_open(share)
        if code_matches(share, code):
            audit_record(action="doctor_share.unlocked", request=request, obj=share,
                         organization_id=share.order.study.organization_id,
                         extra={"order": str(share.order.public_id), "label": share.label})
            return share
        share.failed_attempts += 1
        share.save(update_fields=["failed_attempts", "updated_at"])
        audit_record(action="doctor_share.code_refused", request=request, obj=share, outcome="denied",
                     organization_id=share.order.study.organization_id,
                     extra={"order": str(share.order.public_id), "failed_attempts": share.failed_attempts})
        left = MAX_FAILED_CODES - share.failed_attempts
        if left <= 0:
            doctor_share_transition(share=share, to=Status.LOCKED, actor=None, request=request,
                                    reason=f"{MAX_FAILED_CODES} wrong codes")
    if left <= 0:
        raise ShareClosed(f"That code was wrong too. After {MAX_FAILED_CODES} wrong codes this link is locked; "
                          "the patient can make a new one.")
    raise ApplicationError.for_field("code", f"That code is not right. {left} "
                                             f"{'try' if left == 1 else 'tries'} left before the link locks.",
                                     code="wrong_code")


# --- the report ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SharedSection:
    title: str
    text: str


@dataclass(frozen=True)
class SharedOpinion:
    """The signed second opinion as the doctor reads it, with whose it is."""

    report: Report
    patient_name: str
    patient_birth_date: date | None
    study_description: str
    study_date: date | None
    question: str
    summary: str
    agreement_sentence: str
    sections: tuple[SharedSection, ...]
    fields: tuple[tuple[str, str], ...]
    addenda: tuple[Addendum, ...]


def shared_report(*, share: DoctorShare, request: HttpRequest | None = None) -> SharedOpinion:
    """The order's signed report (the share must be open); the opening is counted and audited before it is
    returned."""
    check_open(share)
    order = share.order
    report = final_report_of(order)
    if report is None:  # a share is only made for a signed report, and a signed report stays
        raise NotFound("The report is not available.")
    signed = report.template_snapshot or {"sections": report.template.sections, "fields": report.template.fields}
    sections = tuple(SharedSection(s["title"], report.sections.get(s["code"], "")) for s in signed["sections"]
                     if s["code"] != PATIENT_SUMMARY and report.sections.get(s["code"], "").strip())
    fields = tuple((f["label"], templates.choice_label(f, str(report.fields.get(f["code"], ""))))
                   for f in signed["fields"] if f["code"] != AGREEMENT and str(report.fields.get(f["code"], "")))
    study = order.study
    audit_record(action="report.viewed_by_doctor", request=request, organization_id=study.organization_id,
                 object_type="reporting.report", object_id=str(report.public_id), phi_read=True,
                 extra={"share": str(share.public_id), "order": str(order.public_id), "label": share.label})
    DoctorShare.objects.filter(pk=share.pk).update(last_opened_at=timezone.now(), times_opened=F("times_opened") + 1)
    return SharedOpinion(
        report=report, patient_name=display_person_name(study.patient_name) or order.patient.display_name,
        patient_birth_date=study.patient_birth_date, study_description=study.study_description,
        study_date=study.study_date,
        question=order.question_text if order.question == "specific" else order.get_question_display(),
        summary=report.sections.get(PATIENT_SUMMARY, "").strip(),
        agreement_sentence=AGREEMENT_SENTENCES.get(str(report.fields.get(AGREEMENT, "")), ""),
        sections=sections, fields=fields, addenda=tuple(selectors.addenda_of(report)))


# --- the images ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SharedSeries:
    """One series of the shared study, with its images in slice order (their SOP Instance UIDs)."""

    series_instance_uid: str
    series_number: int | None
    modality: str
    description: str
    images: tuple[str, ...]


def _image_instances(share: DoctorShare):
    study = share.order.study
    if study.deleted_at is not None:  # the patient deleted their images after the order closed
        return Instance.objects.none()
    return Instance.objects.filter(study=study, pixel_data_offset__isnull=False, rows__gt=0, columns__gt=0)


def shared_series(*, share: DoctorShare) -> list[SharedSeries]:
    """The study's series that have images (two queries); no audit here: each image is audited as fetched."""
    check_open(share)
    by_series: dict[int, list[str]] = {}
    for series_id, sop_uid in (_image_instances(share).order_by("instance_number", "id")
                               .values_list("series_id", "sop_instance_uid")):
        by_series.setdefault(series_id, []).append(sop_uid)
    series = Series.objects.filter(pk__in=by_series).order_by("series_number", "id")
    return [SharedSeries(s.series_instance_uid, s.series_number, s.modality, s.series_description,
                         tuple(by_series[s.pk])) for s in series]


def shared_image(*, share: DoctorShare, sop_uid: str, frame: int = 1, request: HttpRequest | None = None) -> bytes:
    """One image of the order's study as a JPEG; an instance of any other study: 404. Audited before returned."""
    check_open(share)
    instance = _image_instances(share).filter(sop_instance_uid=sop_uid).select_related("study").first()
    if instance is None:
        raise NotFound("Image not found.")
    data = render.render_instance(instance, frame=frame, fmt=render.JPEG)
    audit_record(action="study.accessed", request=request, organization_id=instance.study.organization_id,
                 object_type="studies.study", object_id=instance.study.study_instance_uid, phi_read=True,
                 extra={"level": "full", "fetched": "rendered", "via": "doctor_share", "sop": sop_uid,
                        "frame": frame, "share": str(share.public_id)})
    return data
