"""Deleting one's own images (soft delete, purge, audited; refused by a registered guard while an order is open)
and privacy: a patient never sees another patient's study; a center never sees a patient's space."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from studies import services
from studies.models import OriginalReport, Study
from tests.patients.conftest import new_patient, stored_files, study_in
from tests.patients.test_original_report import PDF


@pytest.fixture
def no_guards(monkeypatch):
    """Guards registered during a test (the marketplace's own are kept) are forgotten after it."""
    monkeypatch.setattr(services, "_DELETE_GUARDS", list(services._DELETE_GUARDS))


def test_a_patient_deletes_their_images_which_are_then_purged_with_the_original_report(patient, login, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    study = study_in(patient.patient_profile.space, n=2)
    client = login(patient)
    client.post(f"/my/images/{study.public_id}/original-report/", {"file": SimpleUploadedFile("r.pdf", PDF)})
    assert len(stored_files()) == 3
    assert client.get(f"/my/images/{study.public_id}/delete/").status_code == 200
    response = client.post(f"/my/images/{study.public_id}/delete/", {"reason": ""})
    assert response["Location"] == "/my/images/"
    study.refresh_from_db()
    assert (study.deleted_at is not None, study.deleted_by) == (True, patient)
    event = AuditEvent.objects.get(action="study.deleted")
    assert (event.actor, event.reason) == (patient, "deleted by the patient")
    assert client.get(f"/my/images/{study.public_id}/").status_code == 404
    assert client.get("/my/images/").context["items"] == []
    result = services.study_purge_expired(now=timezone.now() + timedelta(days=settings.STUDY_RETENTION_DAYS + 1))
    assert (result.studies, result.files) == (1, 3)
    assert stored_files() == []
    assert not OriginalReport.objects.exists()


def test_a_registered_guard_refuses_the_deletion_with_its_message(patient, login, no_guards):
    study = study_in(patient.patient_profile.space)
    services.register_delete_guard(lambda s: "A second opinion on these images is open." if s.pk == study.pk else None)
    client = login(patient)
    page = client.get(f"/my/images/{study.public_id}/").content.decode()
    assert "A second opinion on these images is open." in page
    assert f"/my/images/{study.public_id}/delete/" not in page
    response = client.post(f"/my/images/{study.public_id}/delete/", {"reason": "changed my mind"})
    assert response.status_code == 400
    assert "A second opinion on these images is open." in response.content.decode()
    study.refresh_from_db()
    assert study.deleted_at is None
    assert not AuditEvent.objects.filter(action="study.deleted").exists()
    other = study_in(patient.patient_profile.space, seed=6, accession="PT0006")
    assert client.post(f"/my/images/{other.public_id}/delete/", {"reason": ""}).status_code == 302  # guard: None


def test_a_patient_cannot_delete_a_study_a_center_shared_nor_another_patients(patient, cast, login):
    from studies.models import StudyAccessGrant

    center_study = study_in(cast.center, seed=9, accession="LK1")
    StudyAccessGrant.objects.create(user=patient, study=center_study, level="full", reason="shared with the patient",
                                    expires_at=timezone.now() + timedelta(days=30))
    theirs = study_in(new_patient("other@example.test").patient_profile.space, seed=10, accession="PT0010")
    client = login(patient)
    for study in (center_study, theirs):
        assert client.get(f"/my/images/{study.public_id}/delete/").status_code == 404
        assert client.post(f"/my/images/{study.public_id}/delete/", {"reason": "x"}).status_code == 404
        assert client.post(f"/studies/{study.public_id}/delete/", {"reason": "x"}).status_code == 404
    assert not Study.objects.filter(deleted_at__isnull=False).exists()


def test_a_patient_never_sees_another_patients_study(patient, login):
    mine = study_in(patient.patient_profile.space, seed=3, accession="MINE1")
    theirs = study_in(new_patient("other@example.test").patient_profile.space, seed=4, accession="THEIRS1")
    client = login(patient)
    assert [i["row"].public_id for i in client.get("/my/images/").context["items"]] == [mine.public_id]
    uid = theirs.study_instance_uid
    for path in (f"/my/images/{theirs.public_id}/", f"/studies/{theirs.public_id}/",
                 f"/dicomweb/studies/{uid}/thumbnail", f"/dicomweb/studies/{uid}/metadata",
                 f"/viewer/viewer?StudyInstanceUIDs={uid}"):
        assert client.get(path).status_code == 404, path
    assert client.get("/dicomweb/studies", {"AccessionNumber": "THEIRS1"}).json() == []
    # Their own study opens in the viewer (503 only where the viewer's bundle is not installed).
    assert client.get(f"/viewer/viewer?StudyInstanceUIDs={mine.study_instance_uid}").status_code in (200, 503)
    assert len(client.get("/dicomweb/studies", {"AccessionNumber": "MINE1"}).json()) == 1


@pytest.mark.parametrize("principal", ["center_admin", "technologist", "center_viewer", "radiologist", "other_admin",
                                       "platform_staff"])
def test_no_center_or_professional_sees_a_patients_space(patient, cast, login, principal):
    study = study_in(patient.patient_profile.space, seed=3, accession="MINE1")
    client = login(cast.users[principal])
    uid = study.study_instance_uid
    for path in (f"/my/images/{study.public_id}/", f"/studies/{study.public_id}/", "/my/images/",
                 f"/dicomweb/studies/{uid}/thumbnail", f"/dicomweb/studies/{uid}/series"):
        assert client.get(path).status_code == 404, path
    assert client.get("/dicomweb/studies", {"AccessionNumber": "MINE1"}).json() == []
