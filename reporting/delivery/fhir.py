"""FHIR R4 DiagnosticReport JSON for a report, validated with fhir.resources (R4B) before it leaves.

The patient and the radiologist travel as contained resources (the receiver need not know our ids);
the read request is a ``basedOn`` identifier reference; the study is an ``imagingStudy`` reference
to our ImagingStudy when the caller has one, else an identifier reference by its DICOM UID.
``presentedForm`` carries the signed PDF with its SHA-1 (FHIR's Attachment.hash).
"""

from __future__ import annotations

import base64
import hashlib

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from reporting.delivery import (
    AMENDED,
    LOINC_DIAGNOSTIC_IMAGING,
    PRELIMINARY,
    check_document,
    invalid,
    name_parts,
    utc,
)
from reporting.document import ReportDocument

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
URI_SYSTEM = "urn:ietf:rfc:3986"
DICOM_UID_SYSTEM = "urn:dicom:uid"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
GENDER = {"M": "male", "F": "female", "O": "other"}


def diagnostic_report(
    doc: ReportDocument, *, pdf: bytes, imaging_study_id: str | None = None, base_url: str = ""
) -> dict:
    """The report as a FHIR R4 DiagnosticReport (a JSON-ready dict), validated against R4B."""
    check_document(doc)
    if not pdf.startswith(b"%PDF-"):
        raise invalid("pdf", "pdf must be the report's PDF bytes")
    resource = {
        "resourceType": "DiagnosticReport",
        "id": doc.report_id,
        "contained": [_patient(doc), _practitioner("radiologist", doc.radiologist)],
        "identifier": _identifiers(doc),
        "basedOn": [
            {"type": "ServiceRequest", "identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{doc.request_id}"}}
        ],
        "status": doc.status,
        "category": [{"coding": [{"system": V2_0074, "code": "RAD", "display": "Radiology"}]}],
        "code": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": LOINC_DIAGNOSTIC_IMAGING[0],
                    "display": LOINC_DIAGNOSTIC_IMAGING[1],
                }
            ],
            "text": doc.template_name or LOINC_DIAGNOSTIC_IMAGING[1],
        },
        "subject": {"reference": "#patient"},
        "performer": [{"reference": "#radiologist", "display": doc.radiologist.name}],
        "resultsInterpreter": [{"reference": "#radiologist", "display": doc.radiologist.name}],
        "imagingStudy": [_imaging_study(doc, imaging_study_id, base_url)],
        "presentedForm": [_attachment(doc, pdf)],
    }
    if doc.study.study_date:
        resource["effectiveDateTime"] = doc.study.study_date.isoformat()
    issued = _issued(doc)
    if issued:
        resource["issued"] = issued
    if doc.impression:
        resource["conclusion"] = doc.impression
    # Fails loudly (pydantic ValidationError naming the element) rather than send an invalid resource.
    DiagnosticReport.model_validate(resource)
    return resource


def _identifiers(doc: ReportDocument) -> list[dict]:
    identifiers = [{"system": URI_SYSTEM, "value": f"urn:uuid:{doc.report_id}"}]
    if doc.study.accession_number:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203, "code": "ACSN", "display": "Accession ID"}]},
                "value": doc.study.accession_number,
            }
        )
    return identifiers


def _patient(doc: ReportDocument) -> dict:
    patient = doc.patient
    family, given, middle, prefix, suffix = name_parts(patient.name)
    name: dict = {"text": " ".join(part for part in (prefix, given, middle, family, suffix) if part) or patient.name}
    if family:
        name["family"] = family
    if given or middle:
        name["given"] = [part for part in (given, middle) if part]
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = [suffix]
    identifier: dict = {"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "value": patient.patient_id}
    if patient.issuer:
        identifier["assigner"] = {"display": patient.issuer}
    resource: dict = {"resourceType": "Patient", "id": "patient", "identifier": [identifier], "name": [name]}
    if patient.birth_date:
        resource["birthDate"] = patient.birth_date.isoformat()
    if patient.sex:
        resource["gender"] = GENDER.get(patient.sex, "unknown")
    return resource


def _practitioner(local_id: str, person) -> dict:
    resource: dict = {"resourceType": "Practitioner", "id": local_id, "name": [{"text": person.name}]}
    if person.npi:
        resource["identifier"] = [{"system": NPI_SYSTEM, "value": person.npi}]
    if person.credentials:
        resource["qualification"] = [{"code": {"text": person.credentials}}]
    return resource


def _imaging_study(doc: ReportDocument, imaging_study_id: str | None, base_url: str) -> dict:
    if imaging_study_id:
        prefix = f"{base_url.rstrip('/')}/" if base_url else ""
        return {"reference": f"{prefix}ImagingStudy/{imaging_study_id}"}
    uid = doc.study.study_instance_uid
    return {"type": "ImagingStudy", "identifier": {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{uid}"}}


def _attachment(doc: ReportDocument, pdf: bytes) -> dict:
    title = f"Radiology report {doc.study.accession_number}".strip()
    if doc.status == PRELIMINARY:
        title += " (preliminary)"
    attachment = {
        "contentType": "application/pdf",
        "data": base64.b64encode(pdf).decode("ascii"),
        "size": len(pdf),
        # FHIR's Attachment.hash is the base64 of the SHA-1 of the data, whatever its strength.
        "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),  # noqa: S324
        "title": title,
    }
    issued = _issued(doc)
    if issued:
        attachment["creation"] = issued
    return attachment


def _issued(doc: ReportDocument) -> str:
    """When this version was released: the last addendum's signature, else the report's; a
    preliminary that was never signed has no such instant."""
    moment = doc.addenda[-1].signed_at if doc.status == AMENDED and doc.addenda else doc.signed_at
    if moment is None:
        return ""
    return utc(moment, "signed_at").isoformat(timespec="seconds").replace("+00:00", "Z")
