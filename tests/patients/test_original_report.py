"""The original report beside a study of the patient's space: PDF, JPEG or PNG up to 20 MB, recognised by its
bytes, stored under the space's prefix; refused clearly otherwise; seen only by whoever sees the study in full."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from studies.models import OriginalReport
from studies.original_reports import MAX_ORIGINAL_REPORT_BYTES
from tests.patients.conftest import new_patient, stored_files, study_in

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 32


def _post(client, study, data: bytes, name: str, content_type="application/octet-stream"):
    return client.post(f"/my/images/{study.public_id}/original-report/",
                       {"file": SimpleUploadedFile(name, data, content_type=content_type)})


@pytest.mark.parametrize(("data", "name", "content_type"), [
    (PDF, "report.pdf", "application/pdf"), (JPEG, "IMG_2041.HEIC.jpg", "image/jpeg"), (PNG, "scan", "image/png")])
def test_a_pdf_or_a_photo_is_kept_beside_the_study_under_the_spaces_prefix(patient, login, data, name, content_type):
    study = study_in(patient.patient_profile.space)
    client = login(patient)
    response = _post(client, study, data, name, content_type="text/plain")  # the browser's claim is not believed
    assert response.status_code == 302
    report = OriginalReport.objects.get()
    assert (report.study, report.content_type, report.size, report.original_name) == (study, content_type,
                                                                                      len(data), name)
    space_prefix = f"{study.organization.public_id}/original-reports/"
    assert report.file.name.startswith(space_prefix)
    assert [key for key in stored_files() if "original-reports" in key] == [report.file.name]
    page = client.get(f"/my/images/{study.public_id}/").content.decode()
    assert f"/studies/original-reports/{report.public_id}/" in page
    served = client.get(f"/studies/original-reports/{report.public_id}/")
    assert (served.status_code, served["Content-Type"]) == (200, content_type)
    assert served["X-Content-Type-Options"] == "nosniff"
    assert b"".join(served.streaming_content) == data
    assert AuditEvent.objects.filter(action="study.original_report_added", actor=patient).count() == 1
    assert AuditEvent.objects.filter(action="study.original_report_read", actor=patient).count() == 1


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"Dear patient, your CT was normal.", "report.pdf", "PDF, a JPEG or a PNG"),
    (b"GIF89a" + b"\x00" * 20, "report.gif", "PDF, a JPEG or a PNG"),
    (b"", "empty.pdf", "The file is empty."),
])
def test_anything_else_is_refused_on_the_file_field_and_nothing_is_stored(patient, login, data, name, message):
    study = study_in(patient.patient_profile.space)
    response = _post(login(patient), study, data, name)
    assert response.status_code == 400
    assert message in " ".join(response.context["report_form"].errors["file"])
    assert not OriginalReport.objects.exists()
    assert [key for key in stored_files() if "original-reports" in key] == []


def test_a_report_over_20_mb_is_refused(patient, login):
    study = study_in(patient.patient_profile.space)
    response = _post(login(patient), study, PDF + b"\0" * MAX_ORIGINAL_REPORT_BYTES, "huge.pdf")
    assert response.status_code == 400
    assert "the limit is 20 MB" in " ".join(response.context["report_form"].errors["file"])
    assert not OriginalReport.objects.exists()


def test_another_patient_or_a_center_never_reaches_a_report_or_attaches_one(patient, cast, login):
    study = study_in(patient.patient_profile.space)
    assert _post(login(patient), study, PDF, "r.pdf").status_code == 302
    report = OriginalReport.objects.get()
    stranger = new_patient("stranger@example.test")
    for user in (stranger, cast.center_admin, cast.radiologist, cast.platform_staff):
        client = login(user)
        assert client.get(f"/studies/original-reports/{report.public_id}/").status_code == 404, user
        assert _post(client, study, PDF, "mine.pdf").status_code == 404, user
    assert OriginalReport.objects.count() == 1


def test_no_report_is_attached_to_a_study_a_center_shared(patient, cast, login):
    """The original report belongs with the patient's own images; a center's study has its own report."""
    from datetime import timedelta

    from django.utils import timezone

    from studies.models import StudyAccessGrant

    center_study = study_in(cast.center, seed=9, accession="LK1")
    StudyAccessGrant.objects.create(user=patient, study=center_study, level="full", reason="shared with the patient",
                                    expires_at=timezone.now() + timedelta(days=30))
    client = login(patient)
    assert client.get(f"/my/images/{center_study.public_id}/").status_code == 200
    assert _post(client, center_study, PDF, "r.pdf").status_code == 404
    assert not OriginalReport.objects.exists()
