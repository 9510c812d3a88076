"""Delivery builders: a signed ``ReportDocument`` in the forms a center's systems speak.

Each builder is a pure function of the document (and of explicit arguments such as the message
control id and clock), so re-delivering the same content yields the same bytes. They import no
model and read no settings; the reporting services assemble the document, call the builders and
store or send what they return.

- ``pdf.render_pdf``: the printable report (reportlab).
- ``hl7.oru_r01``: HL7 v2.5.1 ORU^R01 (hl7apy).
- ``fhir.diagnostic_report``: FHIR R4 DiagnosticReport JSON (validated with fhir.resources R4B).
- ``sr.basic_text_sr``: DICOM Basic Text SR in the report's study (pydicom).

This module holds the few rules they share: which statuses exist, how a DICOM person name splits,
and the check that every time is timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.errors import ApplicationError
from reporting.document import ReportDocument

PRELIMINARY = "preliminary"
FINAL = "final"
AMENDED = "amended"
STATUSES = (PRELIMINARY, FINAL, AMENDED)

# LOINC codes of the IHE MRRT / RSNA report sections, shared by HL7 OBX-3 and FHIR.
LOINC_DIAGNOSTIC_IMAGING = ("18748-4", "Diagnostic imaging study")
SECTION_LOINC = {
    "clinical_information": ("55752-0", "Clinical information"),
    "comparison": ("18834-2", "Radiology Comparison study (narrative)"),
    "technique": ("55111-9", "Current imaging procedure descriptions"),
    "findings": ("59776-5", "Procedure findings"),
    "impression": ("19005-8", "Radiology Imaging study [Impression] (narrative)"),
    "other": ("18782-3", "Radiology Study observation (narrative)"),
}
LOINC_ADDENDUM = ("55107-7", "Addendum")


def invalid(field: str, message: str) -> ApplicationError:
    """The document cannot be delivered as it stands; ``field`` names the offending attribute."""
    return ApplicationError.for_field(field, message, code="invalid_report_document")


def check_document(doc: ReportDocument) -> None:
    """Refuse a document no builder can deliver faithfully (unknown status, unsigned final, naive times)."""
    if doc.status not in STATUSES:
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}, not {doc.status!r}")
    if doc.status != PRELIMINARY and doc.signed_at is None:
        raise invalid("signed_at", f"a {doc.status} report must carry its signing time")
    if doc.status == AMENDED and not doc.addenda:
        raise invalid("addenda", "an amended report must carry at least one addendum")
    if not doc.patient.patient_id:
        raise invalid("patient.patient_id", "the patient id is required")
    if not doc.study.study_instance_uid:
        raise invalid("study.study_instance_uid", "the study instance UID is required")
    if doc.signed_at is not None:
        utc(doc.signed_at, "signed_at")
    for index, addendum in enumerate(doc.addenda):
        utc(addendum.signed_at, f"addenda[{index}].signed_at")
    if doc.critical is not None:
        utc(doc.critical.contacted_at, "critical.contacted_at")


def utc(moment: datetime, field: str) -> datetime:
    """``moment`` in UTC; a naive time is refused because its zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise invalid(field, f"{field} must be timezone-aware")
    return moment.astimezone(UTC)


def name_parts(pn: str) -> list[str]:
    """A DICOM PN's five components (family, given, middle, prefix, suffix) of its first non-empty
    group: the alphabetic one, or the ideographic/phonetic one when only that was written."""
    groups = [group for group in pn.split("=") if group.strip("^ ")]
    parts = (groups[0] if groups else "").split("^")
    return [part.strip() for part in (parts + [""] * 5)[:5]]


def display_name(pn: str) -> str:
    """``Doe^Jane^Q^Dr^Jr`` read as ``Dr Jane Q Doe Jr``."""
    family, given, middle, prefix, suffix = name_parts(pn)
    return " ".join(part for part in (prefix, given, middle, family, suffix) if part)
