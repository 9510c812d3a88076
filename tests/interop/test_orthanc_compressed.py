"""Compressed instances from Orthanc through both doors are stored in their own transfer syntax (issue 19 item 5).

JPEG baseline, JPEG lossless, JPEG-LS and RLE files made by DCMTK's converters and a JPEG 2000 file made by
openjpeg, held by Orthanc: its C-STORE negotiates each file's own syntax with the gateway, its STOW-RS sends the
files. Either way every data set is stored as Orthanc sent it, compressed pixel data untouched.
"""

from __future__ import annotations

import io

import pydicom
import pytest

from studies.models import Instance
from tests.studies.test_gateway import dataset_part, stored_bytes
from tests.studies.test_interop_stow import compressed_files

# A gunicorn process shares the test database: PostgreSQL, committed transactions (see conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.mark.parametrize("door", ["/modalities/readroom/store", "/dicom-web/servers/readroom/stow"],
                         ids=["c-store", "stow"])
def test_every_compressed_syntax_is_stored_as_orthanc_sent_it(orthanc, readroom, study_spec, tmp_path, door):
    files = compressed_files(study_spec, tmp_path)
    router = orthanc()
    for data in files:
        router.upload(data)
    job = router.run_job(door, {"Resources": [router.study_id(study_spec.study_uid)]})
    assert job["State"] == "Success", job
    sent = {pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID: data for data in files}
    stored = {i.sop_instance_uid: i for i in Instance.objects.filter(organization=readroom.center)}
    assert stored.keys() == sent.keys()
    for uid, data in sent.items():
        original = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        assert stored[uid].transfer_syntax_uid == original.file_meta.TransferSyntaxUID
        assert dataset_part(stored_bytes(stored[uid])) == dataset_part(data)
    assert len({i.transfer_syntax_uid for i in stored.values()}) == 5
