"""Upload into the patient's personal space (/my/images/upload/): the center's uploader and ingest, the space's
jurisdiction (the patient's residence), and each bad input refused clearly with nothing stored outside the
space: not DICOM, an encrypted zip, a zip bomb, a DICOMDIR pointing outside the upload."""

from __future__ import annotations

import struct
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pydicom import dcmread

from accounts.models import AuditEvent
from studies import synthetic
from studies.models import Instance, Study
from tests.patients.conftest import UPLOAD_URL, ct_bytes, send, stored_files
from tests.studies.test_archive import cd_export, zip_folder, zip_of


def _ct(seed: int, accession: str, *, slices: int):
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(seed), accession=accession, description="CT CHEST",
                               study_date=date(2026, 8, 1))
    return synthetic.ct_series(spec, slices=slices, size=16)


def test_the_routes_are_the_patients():
    assert reverse("patient_upload_file") == UPLOAD_URL
    assert reverse("patient_upload") == "/my/images/upload/"


def test_the_upload_page_is_the_centers_uploader_aimed_at_the_personal_space(patient, login):
    page = login(patient).get("/my/images/upload/").content.decode()
    assert f'data-endpoint="{UPLOAD_URL}"' in page
    assert 'action="/my/images/upload/"' in page
    assert 'id="overall-progress"' in page
    assert "webkitdirectory" in page  # a CD/DVD export folder


def test_files_go_into_the_personal_space_in_the_patients_jurisdiction(patient, login):
    client = login(patient)
    space = patient.patient_profile.space
    bodies = [send(client, data, f"IM00000{i}").json() for i, data in enumerate(ct_bytes(n=2), 1)]
    assert [b["status"] for b in bodies] == ["stored", "stored"]
    study = Study.objects.get()
    assert study.organization == space
    assert study.jurisdiction == "US-NM"  # the residence, not the imaging center's state
    assert bodies[0]["study_url"] == reverse("patient_study", args=[study.public_id])
    assert all(key.startswith(f"{space.public_id}/") for key in stored_files())
    assert len(stored_files()) == 2
    events = AuditEvent.objects.filter(action="study.ingested")
    assert {(e.actor, e.organization_id) for e in events} == {(patient, space.pk)}


def test_a_zipped_cd_export_is_ingested_whole_and_its_dicomdir_skipped(patient, login, tmp_path):
    datasets = _ct(7, "CD1", slices=3)
    data = zip_folder(cd_export(tmp_path, datasets), prefix="CD/")
    body = send(login(patient), data, "cd.zip").json()
    assert body["status"] == "stored"
    assert body["counts"] == {"stored": 3, "skipped": 2}  # DICOMDIR and README.TXT
    assert Instance.objects.filter(organization=patient.patient_profile.space).count() == 3


def test_the_page_without_javascript_posts_every_file_into_the_space(patient, login):
    files = [SimpleUploadedFile(f"IM{i}", data) for i, data in enumerate(ct_bytes(n=2))]
    response = login(patient).post("/my/images/upload/", {"file": files})
    assert response.status_code == 200
    assert response.context["counts"]["stored"] == 2
    assert Study.objects.get().organization == patient.patient_profile.space


# --- bad input ------------------------------------------------------------------------------------

def test_a_file_that_is_not_dicom_is_rejected_with_the_reason(patient, login):
    body = send(login(patient), b"%PDF-1.7 my report, not an image", "report.pdf").json()
    assert body["status"] == "rejected"
    assert "not a DICOM Part 10 file" in body["reason"]
    assert stored_files() == []
    assert not Study.objects.exists()


def test_an_encrypted_zip_is_refused_and_nothing_is_stored(patient, login):
    data = bytearray(zip_of({"IM1": ct_bytes(n=1)[0]}))
    for marker, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # the "encrypted" bit in both headers
        at = data.index(marker)
        struct.pack_into("<H", data, at + flag_offset, struct.unpack_from("<H", data, at + flag_offset)[0] | 1)
    body = send(login(patient), bytes(data), "locked.zip").json()
    assert (body["status"], body["code"]) == ("rejected", "zip_no_dicom")
    assert body["entries"][0]["code"] == "encrypted"
    assert "password-protected zips are not supported" in body["entries"][0]["reason"]
    assert stored_files() == []
    assert not Study.objects.exists()


def test_a_zip_bomb_is_refused_before_anything_is_extracted(patient, login):
    bomb = zip_of({f"layer{i}.dcm": b"\0" * (4 * 1024 * 1024) for i in range(4)})  # 16 MB of zeros in ~64 KB
    assert len(bomb) < 100_000
    body = send(login(patient), bomb, "bomb.zip").json()
    assert (body["status"], body["code"]) == ("rejected", "zip_ratio")
    assert "a zip bomb?" in body["reason"]
    assert stored_files() == []
    refused = AuditEvent.objects.get(action="study.upload_refused")
    assert (refused.actor, refused.organization_id) == (patient, patient.patient_profile.space_id)


def _dicomdir_pointing_outside(root, target=("..", "..", "..", "etc", "passwd")):
    """Rewrite a CD's DICOMDIR so that its image records point outside the CD (a hostile index)."""
    dicomdir = dcmread(root / "DICOMDIR")
    for record in dicomdir.DirectoryRecordSequence:
        if "ReferencedFileID" in record:
            record.ReferencedFileID = list(target)
    dicomdir.save_as(root / "DICOMDIR", enforce_file_format=True)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the hostile paths are not valid CS values
@pytest.mark.parametrize("as_zip", [True, False])
def test_a_dicomdir_pointing_outside_the_upload_is_never_followed(patient, login, tmp_path, as_zip):
    """The images are found by their content; the index is skipped, so its paths are never opened."""
    datasets = _ct(8, "CD2", slices=2)
    root = cd_export(tmp_path, datasets)
    _dicomdir_pointing_outside(root)
    client = login(patient)
    if as_zip:
        body = send(client, zip_folder(root), "cd.zip").json()
        statuses = {entry["file"]: (entry["status"], entry["code"]) for entry in body["entries"]}
        assert statuses["DICOMDIR"] == ("skipped", "dicomdir")
        assert body["counts"]["stored"] == 2
    else:  # the folder dropped file by file: the DICOMDIR is one more file, skipped
        body = send(client, (root / "DICOMDIR").read_bytes(), "DICOMDIR", path="CD/DICOMDIR", in_folder="1").json()
        assert (body["status"], body["code"]) == ("skipped", "dicomdir")
    space = patient.patient_profile.space
    assert all(key.startswith(f"{space.public_id}/") for key in stored_files())
    assert len(stored_files()) == (2 if as_zip else 0)


def test_an_upload_without_details_or_by_a_professional_is_not_found(cast, login):
    data = ct_bytes(n=1)[0]
    assert send(login(cast.patient), data).status_code == 404  # no details yet: no space to upload into
    for principal in ("center_admin", "technologist", "radiologist"):
        response = send(login(cast.users[principal]), data)
        assert response.status_code == 404, principal
    assert login(cast.center_admin).get("/my/images/upload/").status_code == 404
    assert not Study.objects.exists()


def test_the_upload_checks_csrf_like_the_centers(patient, client):
    client = type(client)(enforce_csrf_checks=True)
    client.force_login(patient)
    response = send(client, ct_bytes(n=1)[0])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert not Study.objects.exists()
