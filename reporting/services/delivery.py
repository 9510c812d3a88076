"""Delivery of reports: the ``ReportDocument`` assembled from the models, and its forms built and kept.

A signed report (and each version with more addenda) is delivered in all four forms — PDF, HL7 v2.5.1
ORU^R01, FHIR R4 DiagnosticReport (its presentedForm the same PDF) and a DICOM Basic Text SR — each
stored once as a ``Delivery`` row (unique per report, addenda count and form: a form already built is
skipped, so a retried task adds only what is missing). The SR is also stored into the report's study
through the studies app's ingest, so the center's viewer and DICOMweb clients find it beside the images
(SR is not an imaging modality: matching and quotes ignore it). Which forms a center wants is not a
setting yet: every center gets all four.

A preliminary report is never stored: its text may be released again; its forms are built on request.
Everything is deterministic per version (HL7 control id and times, SR UIDs, PDF bytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from core.errors import ApplicationError, NotFound
from marketplace.ris_models import RisOrder
from marketplace.services.requests import imaging_modalities
from reporting import document as rd
from reporting import selectors, templates
from reporting.delivery import display_name
from reporting.delivery.fhir import diagnostic_report
from reporting.delivery.hl7 import oru_r01
from reporting.delivery.pdf import render_pdf
from reporting.delivery.sr import basic_text_sr
from reporting.models import Delivery, Report
from reporting.quality import overreads
from studies.ingest import Source, audit_ingest, ingest_stream

logger = logging.getLogger(__name__)

Form = Delivery.Form
FORMS = (Form.PDF, Form.HL7, Form.FHIR, Form.SR)  # the PDF first: the FHIR resource embeds it
CONTENT_TYPES = {
    Form.PDF: "application/pdf",
    Form.HL7: "x-application/hl7-v2+er7",
    Form.FHIR: "application/fhir+json",
    Form.SR: "application/dicom",
}
EXTENSIONS = {Form.PDF: "pdf", Form.HL7: "hl7", Form.FHIR: "json", Form.SR: "dcm"}
DOCUMENT_RELATED = ("read_request__center", "read_request__study", "template", "radiologist__user")


# --- the document ---------------------------------------------------------------------------------

def report_document(report: Report, addenda_count: int = 0, *, addenda_rows: list | None = None) -> rd.ReportDocument:
    """The report as delivered: a preliminary's released text, else the signed report with its first
    ``addenda_count`` addenda ("amended" once there is one). ``addenda_rows``: the report's addenda in
    order, when the caller has them already."""
    if report.status == Report.Status.DRAFT:
        raise ApplicationError("A draft report is not delivered.", code="report_not_released")
    preliminary = report.status == Report.Status.PRELIMINARY
    if preliminary and addenda_count:
        raise ApplicationError.for_field("addenda", "A preliminary report has no addenda.")
    read_request, study, profile = report.read_request, report.read_request.study, report.radiologist
    sections_text = (report.preliminary_sections if preliminary else report.sections) or {}
    field_values = (report.preliminary_fields if preliminary else report.fields) or {}
    # A signed report prints the template as it was signed; a preliminary, the template as it is.
    template = report.template_snapshot or {"name": report.template.name, "sections": report.template.sections,
                                            "fields": report.template.fields}
    sections = tuple(rd.Section(code=s["code"], title=s["title"], text=sections_text.get(s["code"], ""))
                     for s in template["sections"] if sections_text.get(s["code"], "").strip())
    has_history_section = any(s.code == "clinical_information" for s in sections)
    order = RisOrder.objects.filter(read_request=read_request).only("placer_order_number", "ordering_physician").first()
    return rd.ReportDocument(
        report_id=str(report.public_id),
        request_id=str(read_request.public_id),
        placer_order_number=order.placer_order_number if order else "",
        status="preliminary" if preliminary else "amended" if addenda_count else "final",
        center=_center(read_request.center),
        radiologist=rd.Person(name=report.signer_name or profile.name,
                              credentials=report.signer_credentials or profile.credentials_line, npi=profile.npi or ""),
        patient=rd.Patient(name=study.patient_name, patient_id=study.patient_id, birth_date=study.patient_birth_date,
                           sex=study.patient_sex if study.patient_sex in ("M", "F", "O") else ""),
        study=rd.Study(study_instance_uid=study.study_instance_uid, accession_number=study.accession_number,
                       study_date=study.study_date,
                       modality="/".join(imaging_modalities(study) or read_request.modalities),
                       description=study.study_description),
        template_name=template["name"],
        sections=sections,
        fields=_fields(template["fields"], field_values),
        # The clinical-information section starts from the request's history; print it once.
        clinical_history="" if has_history_section else read_request.clinical_history.strip(),
        ordering_physician=display_name(study.referring_physician_name or (order.ordering_physician if order else "")),
        signed_at=None if preliminary else report.signed_at,
        content_hash="" if preliminary else report.content_hash,
        addenda=() if preliminary else _addenda(report, addenda_count, profile.npi or "", addenda_rows),
        critical=None if preliminary else _critical(report),
    )


def _center(center) -> rd.Center:
    return rd.Center(name=center.name, timezone=center.time_zone or "UTC", hl7_facility=center.slug.upper()[:20])


def _fields(specs: list[dict], values: dict) -> tuple[rd.Field, ...]:
    """Filled fields in template order: a pick list's value as its label, a number with its unit apart."""
    out = []
    for spec in specs:
        value = str(values.get(spec["code"], "") or "").strip()
        if not value:
            continue
        if spec["kind"] == "choice":
            out.append(rd.Field(spec["code"], spec["label"], templates.choice_label(spec, value)))
        else:
            out.append(rd.Field(spec["code"], spec["label"], value, str(spec.get("unit") or "")))
    return tuple(out)


def _addenda(report: Report, count: int, npi: str, rows: list | None) -> tuple[rd.Addendum, ...]:
    if rows is None:
        rows = list(report.addenda.order_by("number")[:count]) if count else []
    rows = rows[:count]
    if len(rows) < count:
        raise NotFound(f"This report has {len(rows)} addend{'um' if len(rows) == 1 else 'a'}, not {count}.")
    return tuple(rd.Addendum(number=a.number, text=a.text, signed_at=a.signed_at,
                             signer=rd.Person(name=a.signer_name, credentials=a.signer_credentials, npi=npi))
                 for a in rows)


def _critical(report: Report) -> rd.CriticalResult | None:
    critical = getattr(report, "critical_result", None)
    if critical is None:
        return None
    return rd.CriticalResult(category=critical.category, contacted=critical.contacted_name,
                             contacted_at=critical.contacted_at, method=critical.get_method_display().lower(),
                             read_back=critical.read_back)


# --- building -----------------------------------------------------------------------------------

def _version_time(report: Report, doc: rd.ReportDocument) -> datetime:
    """When this version was fixed: the last addendum's signature, the report's, or the preliminary's release."""
    if doc.addenda:
        return doc.addenda[-1].signed_at
    return report.signed_at or report.preliminary_at or report.created_at


def control_id(report: Report, doc: rd.ReportDocument) -> str:
    """MSH-10, 20 characters, the same for the same version (a resend is recognisably the same message)."""
    phase = f"p/{report.preliminary_at.isoformat()}" if doc.status == "preliminary" else f"s/{len(doc.addenda)}"
    return "RR" + hashlib.sha256(f"{report.public_id}/{phase}".encode()).hexdigest()[:18].upper()


def _build(form: str, report: Report, doc: rd.ReportDocument, pdf: bytes | None) -> bytes:
    if form == Form.PDF:
        return render_pdf(doc)
    if form == Form.HL7:
        return oru_r01(doc, control_id=control_id(report, doc), now=_version_time(report, doc).astimezone(UTC),
                       sending_application=settings.HL7_SENDING_APPLICATION,
                       sending_facility=settings.HL7_SENDING_FACILITY).encode("utf-8")
    if form == Form.FHIR:
        resource = diagnostic_report(doc, pdf=pdf if pdf is not None else render_pdf(doc))
        return json.dumps(resource, ensure_ascii=False, indent=1).encode("utf-8")
    return basic_text_sr(doc)


def _load(report_id: int) -> Report:
    report = Report.objects.select_related(*DOCUMENT_RELATED, "critical_result").filter(pk=report_id).first()
    if report is None:
        raise NotFound("Report not found.")
    return report


def deliver(report_id: int, addenda_count: int) -> list[str]:
    """Build and keep every form of a signed report's version (with its first ``addenda_count`` addenda)
    that is not built yet, storing the SR into the study first; returns the forms built by this call."""
    report = _load(report_id)
    if report.status != Report.Status.FINAL:
        raise ApplicationError("Only a signed report is delivered.", code="report_not_final")
    built = set(Delivery.objects.filter(report=report, addenda_count=addenda_count).values_list("form", flat=True))
    missing = [form for form in FORMS if form not in built]
    if not missing:
        return []
    doc = report_document(report, addenda_count)
    pdf = None
    if Form.FHIR in missing and Form.PDF not in missing:
        pdf = bytes(Delivery.objects.get(report=report, addenda_count=addenda_count, form=Form.PDF).payload)
    made = []
    for form in missing:
        payload = _build(form, report, doc, pdf)
        if form == Form.PDF:
            pdf = payload
        if form == Form.SR:
            _store_in_study(report, payload, addenda_count)
        if _keep(report, addenda_count, form, payload):
            made.append(str(form))
    logger.info("report %s (+%s addenda) delivered: %s", report.public_id, addenda_count, ", ".join(made) or "-")
    return made


def _keep(report: Report, addenda_count: int, form: str, payload: bytes) -> bool:
    """Store one form; a concurrent run that stored it first wins (the bytes are the same)."""
    try:
        with transaction.atomic():
            Delivery.objects.create(report=report, addenda_count=addenda_count, form=form,
                                    content_type=CONTENT_TYPES[form], payload=payload,
                                    sha256=hashlib.sha256(payload).hexdigest())
    except IntegrityError:
        return False
    return True


def _store_in_study(report: Report, payload: bytes, addenda_count: int) -> None:
    """The SR into the study, through the one ingest service (the same bytes again: a duplicate, no-op)."""
    study = report.read_request.study
    if study.deleted_at is not None:
        # Storing into a deleted study would bring it back (ingest clears deleted_at): the center deleted it.
        logger.warning("report %s: study %s is deleted; its SR is kept as a delivery only", report.public_id,
                       study.study_instance_uid)
        return
    outcome = ingest_stream(organization=study.organization, stream=io.BytesIO(payload),
                            filename=f"report-{report.public_id}-{addenda_count}.dcm", source=Source.REPORT,
                            expected_study_uid=study.study_instance_uid,
                            jurisdiction=(study.jurisdiction_country, study.jurisdiction_region))
    if not outcome.ok:
        # A conflict or refusal here is our bug, not the center's: fail the task loudly (it is retried).
        raise RuntimeError(f"the report's SR was not stored in study {study.study_instance_uid}: "
                           f"{outcome.status} {outcome.code} {outcome.reason}")
    audit_ingest([outcome], organization=study.organization, source=Source.REPORT,
                 extra={"report": str(report.public_id), "addenda": addenda_count})


# --- reading what was delivered -------------------------------------------------------------------

@dataclass(frozen=True)
class Download:
    """One form of one version of a report, ready to send."""

    form: str
    content: bytes
    content_type: str
    filename: str
    addenda_count: int
    preliminary: bool


def latest_version(report: Report) -> int:
    """How many addenda the newest version of a report holds (0 for a preliminary)."""
    return report.addenda.count() if report.status == Report.Status.FINAL else 0


def download(report: Report, form: str, addenda_count: int | None = None) -> Download:
    """A released report in ``form``: a signed version as delivered (built now if the delivery task has
    not run yet), a preliminary built from its released text. ``addenda_count`` None: the latest version."""
    if form not in CONTENT_TYPES:
        raise ApplicationError.for_field("form", f"Choose one of {', '.join(CONTENT_TYPES)}.")
    if report.status == Report.Status.DRAFT:
        raise NotFound("Report not found.")
    count = latest_version(report) if addenda_count is None else addenda_count
    if count < 0:
        raise ApplicationError.for_field("addenda", "The number of addenda cannot be negative.")
    if report.status == Report.Status.PRELIMINARY:
        if count:
            raise NotFound("A preliminary report has no addenda.")
        doc = report_document(report)
        content = _build(form, report, doc, render_pdf(doc) if form == Form.FHIR else None)
        return Download(form, content, CONTENT_TYPES[form], _filename(report, form, count, True), count, True)
    row = Delivery.objects.filter(report=report, addenda_count=count, form=form).first()
    if row is None:
        if count > latest_version(report):
            raise NotFound(f"This report has {latest_version(report)} addenda, not {count}.")
        deliver(report.pk, count)
        row = Delivery.objects.get(report=report, addenda_count=count, form=form)
    return Download(form, bytes(row.payload), row.content_type, _filename(report, form, count, False), count, False)


def released_report(*, actor, read_request) -> Report:
    """The report of a request the caller fetched through ``marketplace.selectors.read_request_get``, once
    released (preliminary or final) and visible to the actor; 404 otherwise (a draft is nobody's business)."""
    report = selectors.visible_report(actor=actor, read_request=read_request)
    if report is None or report.status == Report.Status.DRAFT:
        raise NotFound("No report has been released for this read request.")
    if overreads.is_held(report) and report.radiologist.user_id != getattr(actor.user, "pk", None):
        raise NotFound("This two-level read's report is released once its second reader signs.")
    return report


def report_download(*, actor, report: Report, form: str, addenda_count: int | None, request=None,
                    via: str) -> Download:
    """``download`` for a person or key, recorded in the audit log before the bytes are handed out."""
    got = download(report, form, addenda_count)
    extra = {"form": got.form, "addenda": got.addenda_count, "preliminary": got.preliminary, "via": via}
    if getattr(actor, "api_key", None) is not None:
        extra["api_key"] = actor.api_key.prefix
    audit_record(action="report.downloaded", actor=actor.user, request=request,
                 organization_id=report.read_request.center_id, object_type="reporting.report",
                 object_id=str(report.public_id), phi_read=True, extra=extra)
    return got


def _filename(report: Report, form: str, count: int, preliminary: bool) -> str:
    study = report.read_request.study
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", study.accession_number or str(report.read_request.public_id))
    suffix = "-preliminary" if preliminary else f"-addendum{count}" if count else ""
    return f"report-{stem}{suffix}.{EXTENSIONS[form]}"
