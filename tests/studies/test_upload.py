"""The upload endpoint behind the upload page: one file per request, JSON per file, CSRF, senders only,
size limit before the body is parsed, zips and CD exports (as a zip or as a dropped folder), retries."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from studies import synthetic
from studies.models import Instance, Study
from tests.conftest import mark_fresh_mfa
from tests.studies.test_archive import cd_export, zip_folder, zip_of

URL = "/studies/upload/file/"


def ct_bytes(n=3, size=16):
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(1), accession="ACC42", description="CT HEAD",
                               study_date=date(2026, 3, 1))
    return [synthetic.to_bytes(ds) for ds in synthetic.ct_series(spec, slices=n, size=size)]


def send(client, data: bytes, name="file.dcm", **fields):
    return client.post(URL, {"file": SimpleUploadedFile(name, data, content_type="application/octet-stream"),
                             **fields}, HTTP_ACCEPT="application/json")


@pytest.fixture
def tech(cast, login):
    return login(cast.technologist)


def test_the_route_is_the_pages_endpoint():
    assert reverse("study_upload_file") == URL


def test_a_dicom_file_is_stored_and_answered_with_its_study(cast, tech):
    data = ct_bytes(1)[0]
    response = send(tech, data, "IM000001")
    assert response.status_code == 200
    body = response.json()
    study = Study.objects.get(organization=cast.center)
    assert body["file"] == "IM000001"
    assert body["status"] == "stored"
    assert body["reason"] == ""
    assert body["study_instance_uid"] == study.study_instance_uid
    assert body["study_url"] == reverse("study_detail", args=[study.public_id])
    assert body["size"] == len(data)
    assert Instance.objects.get().received_via == "upload"
    event = AuditEvent.objects.get(action="study.ingested")
    assert (event.actor, event.object_id, event.extra["source"], event.extra["stored"]) == (
        cast.technologist, study.study_instance_uid, "upload", 1)


def test_the_audit_has_one_row_per_study_per_request_as_the_readme_says(cast, tech):
    """The page sends each file in a request of its own, and each request's record commits with its
    instances: five files make five rows of one stored each; the same five in one zip, one row."""
    files = ct_bytes(5)
    for number, data in enumerate(files):
        assert send(tech, data, f"IM{number}").json()["status"] == "stored"
    rows = AuditEvent.objects.filter(action="study.ingested")
    study = Study.objects.get()
    assert [(e.object_id, e.extra["stored"]) for e in rows] == [(study.study_instance_uid, 1)] * 5

    other = synthetic.ct_series(synthetic.StudySpec(patient=synthetic.demo_patient(2), accession="ACC43",
                                                    description="CT CHEST", study_date=date(2026, 3, 2)), slices=5,
                                size=16)
    zipped = zip_of({f"IM{n}": synthetic.to_bytes(ds) for n, ds in enumerate(other)})
    assert send(tech, zipped, "study.zip").json()["status"] == "stored"
    [row] = AuditEvent.objects.filter(action="study.ingested", object_id=other[0].StudyInstanceUID)
    assert (row.extra["source"], row.extra["stored"]) == ("upload", 5)


def test_sending_a_stored_file_again_is_already_present_never_a_second_row(cast, tech):
    """What an interrupted upload's retry does: the server already had it, nothing is written."""
    data = ct_bytes(1)[0]
    assert send(tech, data).json()["status"] == "stored"
    again = send(tech, data, "retry.dcm").json()
    assert again["status"] == "duplicate"
    assert again["reason"] == "already stored (identical bytes)"
    assert Instance.objects.count() == 1
    assert Study.objects.get().number_of_instances == 1


def test_different_bytes_under_a_stored_sop_instance_uid_is_a_conflict(cast, tech):
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(1), accession="A", description="CT",
                               study_date=date(2026, 3, 1))
    ds = synthetic.ct_series(spec, slices=1, size=16)[0]
    send(tech, synthetic.to_bytes(ds))
    ds.SeriesDescription = "CHANGED"
    body = send(tech, synthetic.to_bytes(ds)).json()
    assert body["status"] == "conflict"
    assert "not overwritten" in body["reason"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"just some text, not an image", "no 128-byte preamble followed by 'DICM'"),
    (b"", "empty"),
    (b"\0" * 128 + b"DICM" + b"\x02\x00", "no TransferSyntaxUID"),
])
def test_a_non_dicom_file_is_rejected_with_the_reason(cast, tech, data, reason):
    response = send(tech, data, "notes.txt")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "rejected"
    assert reason in body["reason"]
    assert body["study_url"] == ""
    assert not Instance.objects.exists()


def test_a_file_of_a_dropped_folder_that_is_not_dicom_is_skipped(cast, tech):
    body = send(tech, b"[autorun]\nopen=viewer.exe\n", "CD/AUTORUN.INF", path="CD/AUTORUN.INF", in_folder="1").json()
    assert body["status"] == "skipped"
    assert body["file"] == "CD/AUTORUN.INF"


def test_a_cd_export_dropped_as_a_folder_arrives_file_by_file(cast, tech, tmp_path):
    root = cd_export(tmp_path, [ds for ds in synthetic.ct_series(synthetic.StudySpec(
        patient=synthetic.demo_patient(2), accession="CD1", description="CT", study_date=date(2026, 3, 2)),
        slices=3, size=16)])
    results = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = f"cd/{path.relative_to(root)}"
        results[relative] = send(tech, path.read_bytes(), path.name, path=relative, in_folder="1").json()["status"]
    assert results.pop("cd/DICOMDIR") == "skipped"
    assert results.pop("cd/README.TXT") == "skipped"
    assert sorted(results.values()) == ["stored"] * 3
    assert Study.objects.get().number_of_instances == 3


def test_a_zipped_cd_export_is_expanded_server_side(cast, tech, tmp_path):
    root = cd_export(tmp_path, [ds for ds in synthetic.ct_series(synthetic.StudySpec(
        patient=synthetic.demo_patient(2), accession="CD1", description="CT", study_date=date(2026, 3, 2)),
        slices=5, size=16)])
    response = send(tech, zip_folder(root), "patient-cd.zip")
    body = response.json()
    assert body["status"] == "stored"
    assert body["counts"] == {"stored": 5, "skipped": 2}
    assert body["reason"] == "5 stored, 2 skipped"
    study = Study.objects.get()
    assert body["study_url"] == reverse("study_detail", args=[study.public_id])
    assert {e["status"] for e in body["entries"]} == {"stored", "skipped"}
    assert all(e["study_url"] == body["study_url"] for e in body["entries"] if e["status"] == "stored")
    assert study.number_of_instances == 5


def test_a_zip_slip_archive_is_refused_and_nothing_is_stored(cast, tech):
    good = ct_bytes(2)
    body = send(tech, zip_of({"ok.dcm": good[0], "../../../outside.dcm": good[1]}), "cd.zip").json()
    assert body["status"] == "rejected"
    assert body["code"] == "zip_unsafe"
    assert "'..'" in body["reason"]
    assert [e["file"] for e in body["entries"]] == ["../../../outside.dcm"]
    assert not Instance.objects.exists()
    refused = AuditEvent.objects.get(action="study.upload_refused")
    assert (refused.actor, refused.outcome, refused.organization) == (cast.technologist, "denied", cast.center)
    assert refused.extra["code"] == "zip_unsafe"


def test_a_zip_bomb_is_refused_before_extracting(cast, tech, settings):
    settings.DICOM_MAX_UPLOAD_BYTES = 4 * 1024 * 1024
    body = send(tech, zip_of({"zeros.bin": b"\0" * (6 * 1024 * 1024)}), "bomb.zip").json()
    assert body["status"] == "rejected"
    assert body["code"] == "zip_too_large"
    assert not Instance.objects.exists()


def test_an_upload_over_the_limit_is_answered_413_before_it_is_read(cast, tech, settings, monkeypatch):
    settings.DICOM_MAX_UPLOAD_BYTES = 20_000
    parsed = []
    from django.http import multipartparser

    original = multipartparser.MultiPartParser.parse
    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", lambda self: parsed.append(1) or original(self))
    response = send(tech, ct_bytes(1, size=128)[0])  # ~33 KB
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "more than the limit" in error["message"]
    assert parsed == []  # refused from Content-Length: the body was never parsed
    assert not Instance.objects.exists()


def test_a_single_file_over_the_per_file_limit_is_rejected_by_ingest(cast, tech, settings):
    settings.DICOM_MAX_FILE_BYTES = 10_000
    body = send(tech, ct_bytes(1, size=128)[0]).json()
    assert body["status"] == "rejected"
    assert body["code"] == "too_large"


def test_csrf_is_required(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.technologist)
    mark_fresh_mfa(client, cast.technologist)
    data = ct_bytes(1)[0]
    refused = send(client, data)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    assert not Instance.objects.exists()
    page = client.get(reverse("study_upload"))
    token = page.cookies["csrftoken"].value
    accepted = client.post(URL, {"file": SimpleUploadedFile("a.dcm", data)}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "stored"


@pytest.mark.parametrize("principal", ["center_viewer", "center_finance", "radiologist", "patient", "platform_staff"])
def test_anyone_but_a_sender_gets_404_and_nothing_is_stored(cast, login, principal):
    response = send(login(cast.users[principal]), ct_bytes(1)[0])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Instance.objects.exists()


def test_another_centers_admin_uploads_into_their_own_center_only(cast, login):
    body = send(login(cast.other_admin), ct_bytes(1)[0]).json()
    assert body["status"] == "stored"
    assert Study.objects.get().organization == cast.other_center


def test_anonymous_is_sent_to_sign_in_and_get_is_not_allowed(cast, tech):
    assert Client().post(URL).status_code == 302
    assert tech.get(URL).status_code == 405


def test_exactly_one_file_per_request(cast, tech):
    files = ct_bytes(2)
    two = tech.post(URL, {"file": [SimpleUploadedFile("a.dcm", files[0]), SimpleUploadedFile("b.dcm", files[1])]})
    assert two.status_code == 400
    assert two.json()["error"]["code"] == "one_file"
    none = tech.post(URL, {"path": "x"})
    assert none.status_code == 400
    assert not Instance.objects.exists()


def test_a_broken_multipart_body_is_a_clear_400(cast, tech):
    response = tech.generic("POST", URL, b"--nope\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n",
                            content_type="multipart/form-data; boundary=")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_upload"


# --- the page without JavaScript posts every file at once ---------------------------------------------

def test_without_javascript_the_page_posts_all_files_and_shows_the_results(cast, tech):
    files = ct_bytes(2)
    response = tech.post(reverse("study_upload"), {"file": [SimpleUploadedFile("a.dcm", files[0]),
                                                            SimpleUploadedFile("b.dcm", files[1]),
                                                            SimpleUploadedFile("c.txt", b"text")]})
    assert response.status_code == 200
    assert response.context["counts"]["stored"] == 2
    assert response.context["counts"]["rejected"] == 1
    text = response.content.decode()
    assert "c.txt" in text
    assert "no 128-byte preamble" in text
    assert Instance.objects.count() == 2


def test_the_upload_page_offers_drop_files_folders_and_zip(cast, tech, settings):
    settings.DICOM_MAX_UPLOAD_BYTES = 4096 * 1024 * 1024
    text = tech.get(reverse("study_upload")).content.decode()
    assert 'data-endpoint="/studies/upload/file/"' in text
    assert 'id="dropzone"' in text
    assert "webkitdirectory" in text
    assert 'type="file" name="file" multiple' in text
    assert '<progress id="overall-progress"' in text
    assert "/static/js/upload.js" in text
    assert "4.0\xa0GB per file" in text


def test_every_file_arrives_in_the_active_organization_of_the_sender(cast, login):
    """The zip's studies all belong to the sender's center, whatever the archive says."""
    data = zip_of({f"{i}.dcm": b for i, b in enumerate(ct_bytes(2))})
    send(login(cast.center_admin), data, "a.zip")
    assert set(Instance.objects.values_list("organization", flat=True)) == {cast.center.pk}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.infolist()) == 2
