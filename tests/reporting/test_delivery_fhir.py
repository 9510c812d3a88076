"""The DiagnosticReport builder, validated by fhir.resources (R4B), with the PDF in presentedForm."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pypdf
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from core.errors import ApplicationError
from reporting.delivery.fhir import diagnostic_report
from reporting.delivery.pdf import render_pdf
from tests.reporting import documents


def build(doc, **kwargs) -> dict:
    return diagnostic_report(doc, pdf=render_pdf(doc), **kwargs)


@pytest.mark.parametrize(
    ("factory", "status"),
    [(documents.preliminary, "preliminary"), (documents.final, "final"), (documents.amended, "amended")],
)
def test_report_validates_against_r4b_with_the_right_status(factory, status):
    resource = build(factory())
    # Round trip through JSON, as a receiver would get it.
    report = DiagnosticReport.model_validate_json(json.dumps(resource))
    assert report.status == status
    assert report.category[0].coding[0].code == "RAD"
    assert report.code.coding[0].system == "http://loinc.org"
    assert report.code.coding[0].code == "18748-4"
    assert report.conclusion == documents.final().impression


def test_presented_form_is_the_pdf_with_its_sha1():
    doc = documents.amended()
    pdf = render_pdf(doc)
    resource = diagnostic_report(doc, pdf=pdf)
    form = resource["presentedForm"][0]
    data = base64.b64decode(form["data"])
    assert data == pdf
    assert data.startswith(b"%PDF-")
    assert base64.b64decode(form["hash"]) == hashlib.sha1(data).digest()  # noqa: S324
    assert form["size"] == len(pdf)
    assert form["contentType"] == "application/pdf"
    assert form["title"] == "Radiology report ACC-2024-0001"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    assert "Addendum 2" in text


def test_performer_subject_and_study_references_resolve():
    resource = build(documents.amended(), imaging_study_id="1.2.3", base_url="https://readroom.example/fhir/")
    report = DiagnosticReport.model_validate(resource)
    contained = {item.id: item for item in report.contained}
    assert report.subject.reference == "#patient"
    patient = contained["patient"]
    assert patient.name[0].family == "Zoë"
    assert patient.name[0].given == ["Ångström", "Łucja"]
    assert patient.identifier[0].value == "MRN-0042"
    assert str(patient.birthDate) == "1961-02-03"
    assert patient.gender == "female"
    assert report.performer[0].reference == "#radiologist"
    practitioner = contained["radiologist"]
    assert practitioner.identifier[0].system == "http://hl7.org/fhir/sid/us-npi"
    assert practitioner.identifier[0].value == "1234567893"
    assert practitioner.name[0].text == "Ana María Núñez"
    assert report.imagingStudy[0].reference == "https://readroom.example/fhir/ImagingStudy/1.2.3"
    assert resource["issued"] == "2024-11-07T09:30:00Z"
    assert {identifier["value"] for identifier in resource["identifier"]} == {
        "urn:uuid:0b6f3c1e-8f4a-4b7e-9a55-3d7c2f1e9a10",
        "ACC-2024-0001",
    }


def test_without_an_imaging_study_id_the_study_is_referenced_by_its_uid():
    resource = build(documents.final())
    assert resource["imagingStudy"] == [
        {
            "type": "ImagingStudy",
            "identifier": {"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.8.498.1234567890"},
        }
    ]
    assert resource["issued"] == "2024-11-05T22:15:30Z"


def test_preliminary_has_no_issued_instant():
    resource = build(documents.preliminary())
    assert "issued" not in resource
    assert resource["presentedForm"][0]["title"].endswith("(preliminary)")


def test_hostile_text_is_data_not_markup():
    resource = build(documents.final())
    report = DiagnosticReport.model_validate(resource)
    assert report.conclusion == documents.final().impression
    assert "text" not in resource  # no narrative: nothing a receiver could render as HTML


def test_one_megabyte_report_validates():
    doc = documents.huge()
    resource = build(doc)
    DiagnosticReport.model_validate(resource)
    assert len(base64.b64decode(resource["presentedForm"][0]["data"])) > 100_000


def test_something_that_is_not_a_pdf_is_refused():
    with pytest.raises(ApplicationError) as caught:
        diagnostic_report(documents.final(), pdf=b"<html>")
    assert "pdf" in caught.value.fields
