"""Orthanc 1.10 with its DICOMweb plugin pushes studies to ReadRoom over STOW-RS (issue 19 item 5).

Orthanc holds the study (uploaded to it as a router receives it), its DICOMweb server ``readroom`` is ReadRoom
under gunicorn with a technologist API key, and ``/dicom-web/servers/readroom/stow`` runs Orthanc's own STOW-RS
client as a job (a 73-character boundary, chunked body). Every instance must arrive byte for byte as Orthanc
holds it, a second push must be harmless, and the job's state must say so.
"""

from __future__ import annotations

import pytest

from studies.models import Instance, Study
from tests.studies.test_gateway import stored_bytes

# A gunicorn process shares the test database: PostgreSQL, committed transactions (see conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _push(orthanc, study_uid: str) -> dict:
    return orthanc.run_job("/dicom-web/servers/readroom/stow", {"Resources": [orthanc.study_id(study_uid)]})


def _held_by(orthanc) -> dict[str, bytes]:
    """SOP Instance UID → the file Orthanc holds."""
    return {orthanc.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]: orthanc.file(i)
            for i in orthanc.instances()}


def test_orthanc_pushes_a_whole_study_and_every_instance_arrives_as_orthanc_holds_it(
        orthanc, readroom, study_spec, study_files):
    router = orthanc()
    for data in study_files:
        router.upload(data)
    job = _push(router, study_spec.study_uid)
    assert job["State"] == "Success", job
    assert job["Content"]["InstancesCount"] == str(len(study_files))
    held = _held_by(router)
    assert len(held) == len(study_files)
    stored = {i.sop_instance_uid: stored_bytes(i) for i in Instance.objects.filter(organization=readroom.center)}
    assert stored == held
    study = Study.objects.get(study_instance_uid=study_spec.study_uid)
    assert study.organization == readroom.center
    assert study.series.count() == 4


def test_a_second_push_of_the_same_study_succeeds_and_writes_nothing(orthanc, readroom, study_spec, study_files):
    router = orthanc()
    for data in study_files:
        router.upload(data)
    assert _push(router, study_spec.study_uid)["State"] == "Success"
    before = {i.sop_instance_uid: (i.pk, i.storage_key, i.received_at, stored_bytes(i)) for i in Instance.objects.all()}

    again = _push(router, study_spec.study_uid)
    assert again["State"] == "Success", again
    after = {i.sop_instance_uid: (i.pk, i.storage_key, i.received_at, stored_bytes(i)) for i in Instance.objects.all()}
    assert after == before
    assert len(after) == len(study_files)


def test_a_push_readroom_refuses_fails_the_orthanc_job_and_stores_nothing(orthanc, readroom, study_spec,
                                                                            study_files):
    """The counterpart that makes the job state worth asserting: a key ReadRoom does not know is a failed job."""
    router = orthanc(HttpHeaders={"Authorization": "Bearer rrk_unknown_key"})
    router.upload(study_files[0])
    job = _push(router, study_spec.study_uid)
    assert job["State"] == "Failure", job
    assert "401" in job["log"]
    assert not Instance.objects.exists()


def test_orthanc_finds_the_pushed_study_in_readroom_by_qido(orthanc, readroom, study_spec, study_files):
    router = orthanc()
    for data in study_files:
        router.upload(data)
    assert _push(router, study_spec.study_uid)["State"] == "Success"
    found = router.post("/dicom-web/servers/readroom/qido",
                        {"Uri": "/studies", "Arguments": {"PatientID": study_spec.patient.patient_id}})
    assert [(s["0020000D"]["Value"], s["00080050"]["Value"]) for s in found] == [
        (study_spec.study_uid, study_spec.accession)]
    series = router.post("/dicom-web/servers/readroom/qido",
                         {"Uri": f"/studies/{study_spec.study_uid}/series", "Arguments": {"Modality": "MR"}})
    assert len(series) == 3
