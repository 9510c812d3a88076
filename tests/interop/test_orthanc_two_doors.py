"""The same study from Orthanc through both of ReadRoom's doors (issue 19 items 2 and 5).

Orthanc C-STOREs to the gateway as the demo world's peer ORTHANC → LAKESIDE, and pushes over STOW-RS; each door
writes its own file meta, the data sets are the same. Whichever door comes first, the second is answered with
success (Orthanc's job succeeds, no 0xA900 / 409), nothing is written again and every instance is held once.
"""

from __future__ import annotations

import io

import pydicom
import pytest

from studies.models import Instance, Study
from tests.studies.test_gateway import dataset_part, stored_bytes

# A gunicorn process shares the test database: PostgreSQL, committed transactions (see conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

STOW = ("/dicom-web/servers/readroom/stow", "DicomWebStowClient")
C_STORE = ("/modalities/readroom/store", "DicomModalityStore")


def _send(router, door: tuple[str, str], study_uid: str) -> dict:
    path, kind = door
    job = router.run_job(path, {"Resources": [router.study_id(study_uid)]})
    assert job["Type"] == kind
    return job


def _holdings() -> dict[str, tuple]:
    return {i.sop_instance_uid: (i.pk, i.received_via, i.storage_key, stored_bytes(i)) for i in Instance.objects.all()}


def test_orthanc_echoes_the_gateway_as_the_demo_world_registers_it(orthanc, readroom):
    router = orthanc()
    assert router.post("/modalities/readroom/echo", {}) == {}


@pytest.mark.parametrize(("first", "second"), [(C_STORE, STOW), (STOW, C_STORE)], ids=["c-store-then-stow",
                                                                                       "stow-then-c-store"])
def test_the_same_study_through_the_other_door_is_a_success_with_nothing_written(
        orthanc, readroom, study_spec, study_files, first, second):
    router = orthanc()
    for data in study_files:
        router.upload(data)
    job = _send(router, first, study_spec.study_uid)
    assert job["State"] == "Success", job
    before = _holdings()
    assert len(before) == len(study_files)

    job = _send(router, second, study_spec.study_uid)
    assert job["State"] == "Success", job
    if second == C_STORE:
        assert job["Content"]["FailedInstancesCount"] == 0
    assert _holdings() == before
    assert Study.objects.filter(study_instance_uid=study_spec.study_uid).count() == 1
    # what arrived is what Orthanc holds: the data set as sent, behind the door's own file meta
    held = {router.get(f"/instances/{i}/simplified-tags")["SOPInstanceUID"]: router.file(i)
            for i in router.instances()}
    assert {uid: dataset_part(row[3]) for uid, row in before.items()} == {
        uid: dataset_part(data) for uid, data in held.items()}


def test_another_data_set_under_a_held_sop_uid_is_still_refused_through_the_gateway(
        orthanc, readroom, study_spec, study_files, tmp_path):
    """The duplicate check compares data sets, not SOP UIDs: Orthanc's C-STORE of an edited copy fails its job
    (status 0xA900) and the held copy is untouched."""
    first = orthanc()
    first.upload(study_files[0])
    assert _send(first, STOW, study_spec.study_uid)["State"] == "Success"
    before = _holdings()
    edited = pydicom.dcmread(io.BytesIO(study_files[0]))
    edited.StudyDescription = "CT CHEST WITHOUT CONTRAST"
    out = io.BytesIO()
    edited.save_as(out, enforce_file_format=True)
    second = orthanc()
    second.upload(out.getvalue())
    job = _send(second, C_STORE, study_spec.study_uid)
    assert job["State"] == "Failure", job
    assert "failed with DIMSE status 0xA900" in job["ErrorDetails"], job
    assert _holdings() == before
