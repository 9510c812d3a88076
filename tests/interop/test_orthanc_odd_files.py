"""Odd-but-readable files sent by Orthanc are stored as they came (issue 19 items 1 and 5).

An instance whose Instance Number (IS) holds ``1A`` and a Deflated Explicit VR Little Endian instance, as a
modality left them in Orthanc, pushed over STOW-RS and C-STOREd to the gateway. Both are stored (the data set as
sent), the invalid value is left out of the index, and the warning reaches Orthanc where the issue puts it: the
STOW-RS answer is 202 (its Warning Reason 0xB006 in the body), the C-STORE status 0xB006 "elements discarded".
Orthanc takes both as a success. Orthanc's log (with ``--trace-dicom``) is where these answers are seen.
"""

from __future__ import annotations

import io
import re

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from studies import synthetic
from studies.models import Instance
from tests.studies.test_gateway import dataset_part, stored_bytes
from tests.studies.test_interop_stow import _bad_is

# A gunicorn process shares the test database: PostgreSQL, committed transactions (see conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

DOORS = {"stow": "/dicom-web/servers/readroom/stow", "c-store": "/modalities/readroom/store"}


def odd_instance(spec) -> bytes:
    ds = synthetic.ct_series(spec, slices=1, size=64)[0]
    ds.InstanceNumber = 1
    return _bad_is(synthetic.to_bytes(ds))


def deflated_instance(spec) -> bytes:
    ds = synthetic.ct_series(spec, slices=1, size=128)[0]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _send_one(orthanc, readroom, data: bytes, door: str) -> tuple[str, Instance]:
    """Orthanc sends ``data`` through ``door`` (its job must succeed); → Orthanc's log and the stored instance."""
    router = orthanc()
    uploaded = router.upload(data)
    assert uploaded["Status"] == "Success"
    job = router.run_job(DOORS[door], {"Resources": [uploaded["ID"]]})
    assert job["State"] == "Success", job
    sop_uid = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
    instance = Instance.objects.get(organization=readroom.center, sop_instance_uid=sop_uid)
    if door == "stow":  # the file itself is what travels
        assert stored_bytes(instance) == router.file(uploaded["ID"])
    else:  # the data set travels; the gateway writes its own file meta
        assert dataset_part(stored_bytes(instance)) == dataset_part(router.file(uploaded["ID"]))
    return router.log_text(), instance


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS")  # pydicom's, in the gateway's thread: expected
@pytest.mark.parametrize("door", DOORS)
def test_an_is_value_of_1a_is_stored_as_sent_with_the_warning(orthanc, readroom, study_spec, door):
    data = odd_instance(study_spec)
    log, instance = _send_one(orthanc, readroom, data, door)
    assert dataset_part(stored_bytes(instance)) == dataset_part(data)
    assert instance.instance_number is None
    assert "00200013" not in instance.dicom_json  # left out of the index
    assert instance.rows == 64
    assert instance.study.patient_id == study_spec.patient.patient_id
    if door == "stow":
        assert re.search(r"HTTP status code 202 in \d+ ms after POST request on: \S+/dicomweb/studies", log)
    else:
        assert re.search(r"DIMSE Status\s+: 0xb006: Warning: Elements discarded", log), log[-3000:]


@pytest.mark.parametrize("door", DOORS)
def test_a_deflated_instance_is_stored_deflated_without_a_warning(orthanc, readroom, study_spec, door):
    data = deflated_instance(study_spec)
    log, instance = _send_one(orthanc, readroom, data, door)
    assert instance.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert dataset_part(stored_bytes(instance)) == dataset_part(data)
    stored = pydicom.dcmread(io.BytesIO(stored_bytes(instance)))
    assert stored.PixelData == pydicom.dcmread(io.BytesIO(data)).PixelData
    if door == "stow":
        assert re.search(r"HTTP status code 200 in \d+ ms after POST request on: \S+/dicomweb/studies", log)
    else:
        assert re.search(r"DIMSE Status\s+: 0x0000: Success", log), log[-3000:]
        assert "0xb006" not in log
