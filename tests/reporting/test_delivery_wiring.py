"""Delivery wired to the models: a report signed through the real services is delivered after commit in
four forms, each read back by an independent reader (hl7, fhir.resources R4B, pypdf, pydicom), the SR
also stored into the study and served by ReadRoom's own DICOMweb; addenda make new versions; delivery
runs any number of times without duplicates."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import hl7
import pydicom
import pypdf
import pytest
from django.utils import timezone
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from core.errors import ApplicationError, NotFound
from marketplace.models import Priority
from marketplace.services.requests import imaging_modalities
from reporting.delivery.sr import instance_uid, series_uid
from reporting.models import Delivery, Report
from reporting.services import delivery, reports
from studies.models import Instance, Study
from tests.marketplace.helpers import actor
from tests.reporting.delivery_helpers import (
    HOSTILE,
    READER_NAME,
    READER_NPI,
    add_addendum,
    delivery_template,
    open_report,
    signed_report,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _template(db):
    return delivery_template()

ADDENDUM = "Addendum: compared with the outside CT, <i>unchanged</i> |^~\\&."


def payload(report, form, addenda_count=0) -> bytes:
    return bytes(Delivery.objects.get(report=report, addenda_count=addenda_count, form=form).payload)


def findings_lines(message) -> list[str]:
    return [message.unescape(str(rep)) for obx in message.segments("OBX") if str(obx[3][0][0]) == "59776-5"
            for rep in obx[5]]


def sr_texts(ds) -> list[str]:
    out = []
    for item in ds.ContentSequence:
        if item.ValueType == "TEXT":
            out.append(item.TextValue)
        out += [child.TextValue for child in item.get("ContentSequence", []) if child.ValueType == "TEXT"]
    return out


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_signing_delivers_the_four_forms_once_each(cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    rows = {row.form: row for row in Delivery.objects.filter(report=report)}
    assert set(rows) == {"pdf", "hl7", "fhir", "sr"}
    assert {row.addenda_count for row in rows.values()} == {0}
    assert rows["pdf"].content_type == "application/pdf"
    assert rows["fhir"].content_type == "application/fhir+json"
    assert rows["sr"].content_type == "application/dicom"
    assert bytes(rows["pdf"].payload).startswith(b"%PDF-")
    for row in rows.values():
        assert row.sha256 == hashlib.sha256(bytes(row.payload)).hexdigest()


def test_hl7_message_parses_back_with_escaped_text_accession_and_study_uid(cast, settings,
                                                                           django_capture_on_commit_callbacks):
    settings.HL7_SENDING_APPLICATION, settings.HL7_SENDING_FACILITY = "RR-TEST", "RRFAC"
    report = signed_report(cast, django_capture_on_commit_callbacks)
    study = report.read_request.study
    er7 = payload(report, "hl7").decode("utf-8")
    # The separators in the report text travel only as escape sequences.
    raw_findings = next(line for line in er7.split("\r") if "Left frontal" in line)
    assert "\\F\\\\S\\\\R\\\\E\\\\T\\" in raw_findings
    message = hl7.parse(er7)
    assert [str(s[0]) for s in message][:5] == ["MSH", "PID", "PV1", "ORC", "OBR"]
    msh = message.segment("MSH")
    assert (str(msh[3]), str(msh[4]), str(msh[6])) == ("RR-TEST", "RRFAC", "LAKESIDE")
    assert str(msh[9]) == "ORU^R01^ORU_R01"
    assert str(msh[10]) == delivery.control_id(report, delivery.report_document(report))
    assert len(str(msh[10])) == 20
    assert str(msh[7]) == report.signed_at.strftime("%Y%m%d%H%M%S+0000")
    pid = message.segment("PID")
    assert str(pid[3]).split("^")[0] == study.patient_id
    assert message.unescape(str(pid[5])) == "Ñúñez^Zoë^Łucja"
    obr = message.segment("OBR")
    assert str(obr[2]) == str(report.read_request.public_id)
    assert str(obr[3]) == study.accession_number
    assert str(obr[25]) == "F"
    assert READER_NPI in str(obr[32])
    uid_obx = next(obx for obx in message.segments("OBX") if str(obx[3][0][0]) == "113014")
    assert str(uid_obx[5]) == study.study_instance_uid
    assert findings_lines(message) == [f"Left frontal: {HOSTILE}", "No midline shift."]
    fields = {str(obx[3][0][0]): obx for obx in message.segments("OBX")}
    assert str(fields["severity"][5]) == "Moderate"  # a pick list's label, not its code
    assert (str(fields["shift"][5]), str(fields["shift"][6])) == ("3", "mm")


def test_fhir_resource_validates_and_presents_the_delivered_pdf(cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    resource = json.loads(payload(report, "fhir"))
    parsed = DiagnosticReport.model_validate(resource)
    assert parsed.status == "final"
    assert resource["id"] == str(report.public_id)
    assert resource["conclusion"] == "Small left frontal contusion."
    study = report.read_request.study
    accession = next(i for i in resource["identifier"] if i.get("type"))
    assert accession["value"] == study.accession_number
    assert resource["imagingStudy"][0]["identifier"]["value"] == f"urn:oid:{study.study_instance_uid}"
    assert base64.b64decode(resource["presentedForm"][0]["data"]) == payload(report, "pdf")
    patient = next(r for r in resource["contained"] if r["resourceType"] == "Patient")
    assert patient["name"][0]["family"] == "Ñúñez"


def test_pdf_text_carries_the_unicode_names_the_signature_and_the_literal_hostile_text(
        cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    text = pdf_text(payload(report, "pdf"))
    assert "Zoë Łucja Ñúñez" in text
    assert f"{READER_NAME}, MD, FACR" in text
    assert f"Left frontal: {HOSTILE}" in text
    assert report.content_hash in text.replace("\n", "")
    assert report.read_request.study.accession_number in text
    assert "Émile Zola" in text
    # The template's sections in template order, with their titles; the empty comparison is left out.
    positions = [text.index(title) for title in ("Clinical information", "Technique", "Findings", "Impression")]
    assert positions == sorted(positions)
    assert text.count("Fell from a ladder.") == 1  # the history once, from its section


def test_sr_is_stored_in_the_study_and_read_back_by_pydicom(cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    study = report.read_request.study
    ds = pydicom.dcmread(io.BytesIO(payload(report, "sr")))
    assert ds.StudyInstanceUID == study.study_instance_uid
    assert ds.Modality == "SR"
    assert ds.VerificationFlag == "VERIFIED"
    assert str(ds.PatientName) == "Ñúñez^Zoë^Łucja"
    assert f"Left frontal: {HOSTILE}\nNo midline shift." in sr_texts(ds)
    stored = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert stored.study_id == study.pk
    assert stored.received_via == "report"
    assert stored.series.series_instance_uid == series_uid(str(report.public_id))
    study = Study.objects.get(pk=study.pk)
    # The SR shows among the study's modalities, and matching still reads it as a CT.
    assert "SR" in study.modalities
    assert imaging_modalities(study) == ["CT"]


def test_sr_is_found_and_retrieved_through_readroom_dicomweb_by_the_center(cast, login,
                                                                           django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    study_uid = report.read_request.study.study_instance_uid
    sr = payload(report, "sr")
    ds = pydicom.dcmread(io.BytesIO(sr))
    client = login(cast.center_admin)
    found = client.get(f"/dicomweb/studies/{study_uid}/series", {"Modality": "SR"},
                       HTTP_ACCEPT="application/dicom+json")
    assert found.status_code == 200, found.content
    assert [s["0020000E"]["Value"][0] for s in found.json()] == [ds.SeriesInstanceUID]
    url = f"/dicomweb/studies/{study_uid}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    response = client.get(url, HTTP_ACCEPT="application/dicom")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == sr
    # Another center does not see it.
    assert login(cast.other_admin).get(url, HTTP_ACCEPT="application/dicom").status_code == 404


def test_addendum_makes_a_second_version_with_the_addendum_in_all_four_forms(cast,
                                                                            django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    first = {form: payload(report, form) for form in ("pdf", "hl7", "fhir", "sr")}
    add_addendum(cast, report, ADDENDUM, django_capture_on_commit_callbacks)
    assert Delivery.objects.filter(report=report, addenda_count=1).count() == 4
    assert {form: payload(report, form) for form in first} == first  # the first version is kept as it was

    message = hl7.parse(payload(report, "hl7", 1).decode())
    assert str(message.segment("OBR")[25]) == "C"
    addendum_lines = [message.unescape(str(rep)) for obx in message.segments("OBX")
                      if str(obx[3][0][0]) == "55107-7" for rep in obx[5]]
    assert addendum_lines == [ADDENDUM]
    assert str(message.segment("MSH")[10]) != str(hl7.parse(first["hl7"].decode()).segment("MSH")[10])

    resource = json.loads(payload(report, "fhir", 1))
    assert DiagnosticReport.model_validate(resource).status == "amended"
    pdf = base64.b64decode(resource["presentedForm"][0]["data"])
    assert pdf == payload(report, "pdf", 1)
    assert ADDENDUM in pdf_text(pdf)

    ds = pydicom.dcmread(io.BytesIO(payload(report, "sr", 1)))
    assert any(ADDENDUM in text for text in sr_texts(ds))
    previous = ds.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert previous.ReferencedSOPInstanceUID == instance_uid(str(report.public_id), "final", 0)
    assert Instance.objects.filter(series__series_instance_uid=ds.SeriesInstanceUID).count() == 2


def test_delivering_again_adds_nothing(cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    rows = list(Delivery.objects.filter(report=report).order_by("form").values_list("form", "sha256"))
    instances = Instance.objects.filter(study=report.read_request.study).count()
    assert delivery.deliver(report.pk, 0) == []
    assert delivery.deliver(report.pk, 0) == []
    assert list(Delivery.objects.filter(report=report).order_by("form").values_list("form", "sha256")) == rows
    assert Instance.objects.filter(study=report.read_request.study).count() == instances


def test_a_lost_form_is_rebuilt_identical_and_the_sr_ingest_is_a_duplicate(cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    before = {row.form: bytes(row.payload) for row in Delivery.objects.filter(report=report)}
    Delivery.objects.filter(report=report, form__in=["sr", "hl7"]).delete()
    assert sorted(delivery.deliver(report.pk, 0)) == ["hl7", "sr"]
    assert {row.form: bytes(row.payload) for row in Delivery.objects.filter(report=report)} == before
    assert Instance.objects.filter(study=report.read_request.study, received_via="report").count() == 1


def test_a_download_before_the_task_ran_builds_the_version(cast, django_capture_on_commit_callbacks):
    report = write(cast, open_report(cast), impression="Normal.")
    with django_capture_on_commit_callbacks(execute=False):  # the delivery task never runs
        reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version,
                            second_factor_age=0)
    report = Report.objects.get(pk=report.pk)
    assert not Delivery.objects.filter(report=report).exists()
    got = delivery.download(report, "hl7")
    assert got.content.startswith(b"MSH|")
    assert Delivery.objects.filter(report=report).count() == 4
    with pytest.raises(NotFound):
        delivery.download(report, "pdf", addenda_count=1)


def test_critical_result_travels_in_the_forms(cast, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks, critical=True)
    assert "Nurse Chloé Dubois" in pdf_text(payload(report, "pdf"))
    message = hl7.parse(payload(report, "hl7").decode())
    critical = [message.unescape(str(rep)) for obx in message.segments("OBX") if str(obx[3][0][0]) == "CRITICAL"
                for rep in obx[5]]
    assert critical[0] == "Critical result, category 1."
    assert "Nurse Chloé Dubois by telephone" in critical[1]


def test_preliminary_report_is_a_preliminary_document_and_is_not_delivered_as_signed(
        cast, django_capture_on_commit_callbacks):
    report = write(cast, open_report(cast, priority=Priority.STAT), impression="Preliminary: bleed.")
    report = reports.report_release_preliminary(actor=actor(cast.radiologist), report=report,
                                                version=report.version, second_factor_age=0)
    # Edits after the release are not what the center sees.
    report = write(cast, report, impression="Still being written.")
    doc = delivery.report_document(report)
    assert doc.status == "preliminary"
    assert doc.signed_at is None
    assert doc.impression == "Preliminary: bleed."
    with pytest.raises(ApplicationError) as refused:
        delivery.deliver(report.pk, 0)
    assert refused.value.code == "report_not_final"
    got = delivery.download(report, "pdf")
    assert got.preliminary
    assert "PRELIMINARY" in pdf_text(got.content)
    assert not Delivery.objects.exists()
    assert str(hl7.parse(delivery.download(report, "hl7").content.decode()).segment("OBR")[25]) == "P"


def test_a_deleted_study_is_not_brought_back_by_its_report(cast, django_capture_on_commit_callbacks):
    report = write(cast, open_report(cast), impression="Normal.")
    study = report.read_request.study
    with django_capture_on_commit_callbacks(execute=False):
        reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version,
                            second_factor_age=0)
    Study.objects.filter(pk=study.pk).update(deleted_at=timezone.now())
    assert sorted(delivery.deliver(report.pk, 0)) == ["fhir", "hl7", "pdf", "sr"]
    assert Study.objects.get(pk=study.pk).deleted_at is not None
    assert not Instance.objects.filter(study=study, received_via="report").exists()


def test_a_signed_report_prints_its_template_as_signed(cast, django_capture_on_commit_callbacks):
    """Editing the template after signing changes no delivered title or label (the snapshot is signed content)."""
    from reporting.services import reports
    from reporting.services.delivery import report_document
    from tests.marketplace.helpers import actor
    from tests.reporting.conftest import assigned_read, make_template

    template = make_template(name="Snapshot CT")
    read_request = assigned_read(cast)
    report = reports.report_open(actor=actor(cast.radiologist), read_request=read_request)
    report = reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                                 sections={**report.sections, "impression": "Normal."}, fields={})
    with django_capture_on_commit_callbacks(execute=False):
        signed = reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version,
                                     second_factor_age=0)
    template.name = "Renamed"
    template.sections = [{**s, "title": s["title"].upper()} for s in template.sections]
    template.save()
    signed.refresh_from_db()
    document = report_document(signed)
    assert document.template_name == "Snapshot CT"
    assert [s.title for s in document.sections] == ["Technique", "Findings", "Impression"]
