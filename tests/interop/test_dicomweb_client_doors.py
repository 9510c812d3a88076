"""Issue 19 item 5, the dicomweb-client leg against ReadRoom as deployed (gunicorn and the C-STORE gateway):
push, re-push through the other door (DCMTK's storescu), query, and retrieve with and without a transfer syntax.

The study is compressed as real senders compress it (JPEG baseline, JPEG lossless, JPEG-LS and RLE by DCMTK's
converters, JPEG 2000 by openjpeg). dicomweb-client's ``retrieve_study`` asks for ``type="application/dicom"``
with no transfer syntax, which PS3.18 answers in Explicit VR Little Endian; ``*`` keeps the stored syntax; a
named syntax is transcoded.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from studies import synthetic
from studies.models import Instance
from tests.studies.test_gateway import TOOLS, dcmtk, run, stored_bytes  # noqa: F401 - dcmtk is a fixture
from tests.studies.test_interop_stow import compressed_files

# gunicorn shares the test database: PostgreSQL, committed transactions (see conftest.py).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


# storescu's option proposing each syntax (and the uncompressed ones after it)
PROPOSE = {JPEGBaseline8Bit: "-xy", JPEGLosslessSV1: "-xs", JPEGLSLossless: "-xt", JPEG2000Lossless: "-xv",
           RLELossless: "-xr"}


@pytest.fixture
def client(readroom):
    # our own session, closed at the end: no keep-alive connection outlives the test's server
    with requests.Session() as session:
        yield DICOMwebClient(url=readroom.url, session=session,
                             headers={"Authorization": f"Bearer {readroom.secret}"})


def storescu(readroom, *paths: Path, options: tuple[str, ...] = ()):
    return run(TOOLS["storescu"], "-v", *options, "-aet", "STORESCU", "-aec", "LAKESIDE", "127.0.0.1",
               readroom.gateway.port, *paths)


def as_client_reads(files: list[bytes]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(io.BytesIO(data)) for data in files]


def stored_files(readroom) -> dict[str, bytes]:
    return {i.sop_instance_uid: stored_bytes(i) for i in Instance.objects.filter(organization=readroom.center)}


def assert_same_pixels(received: pydicom.Dataset, original: pydicom.Dataset) -> None:
    if original.file_meta.TransferSyntaxUID == JPEGBaseline8Bit:  # lossy: each decoder rounds its own way
        assert np.abs(received.pixel_array.astype(int) - original.pixel_array.astype(int)).max() <= 2
    else:
        np.testing.assert_array_equal(received.pixel_array, original.pixel_array)


def test_a_compressed_study_pushed_then_resent_by_c_store_then_retrieved_in_every_way(
        dcmtk, readroom, client, study_spec, tmp_path):  # noqa: F811 - dcmtk is the fixture imported above
    files = compressed_files(study_spec, tmp_path)
    originals = {ds.SOPInstanceUID: ds for ds in as_client_reads(files)}
    assert len({ds.file_meta.TransferSyntaxUID for ds in originals.values()}) == 5

    answer = client.store_instances(datasets=list(originals.values()))
    assert sorted(item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence) == sorted(originals)
    assert "FailedSOPSequence" not in answer
    before = stored_files(readroom)
    assert before.keys() == originals.keys()

    # the other door: one storescu association per file, proposing the file's own syntax (sent as it is)
    for number, data in enumerate(files):
        path = tmp_path / f"resend{number}.dcm"
        path.write_bytes(data)
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        result = storescu(readroom, path, options=(PROPOSE[syntax],))
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Received Store Response (Success)" in output, output
    assert stored_files(readroom) == before

    found = client.search_for_instances(study_spec.study_uid)
    assert sorted(row["00080018"]["Value"][0] for row in found) == sorted(originals)

    # no transfer syntax (dicomweb-client's default for a study): Explicit VR Little Endian, decompressed
    retrieved = client.retrieve_study(study_spec.study_uid)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(originals)
    for ds in retrieved:
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID  # the same instance, not a copy
        assert_same_pixels(ds, originals[ds.SOPInstanceUID])

    # "*": as stored, the compressed pixel data untouched
    as_stored = client.retrieve_study(study_spec.study_uid, media_types=(("application/dicom", "*"),))
    for ds in as_stored:
        original = originals[ds.SOPInstanceUID]
        assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert ds.PixelData == original.PixelData

    # a named syntax: transcoded by an installed codec
    jpeg_ls = next(ds for ds in originals.values() if ds.file_meta.TransferSyntaxUID == JPEGLSLossless)
    for target in (ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless):
        one = client.retrieve_instance(study_spec.study_uid, jpeg_ls.SeriesInstanceUID, jpeg_ls.SOPInstanceUID,
                                       media_types=(("application/dicom", target),))
        assert one.file_meta.TransferSyntaxUID == target
        assert one.SOPInstanceUID == one.file_meta.MediaStorageSOPInstanceUID == jpeg_ls.SOPInstanceUID
        assert_same_pixels(one, jpeg_ls)


def test_a_series_sent_by_c_store_then_pushed_by_dicomweb_client_is_a_success_with_nothing_written(
        dcmtk, readroom, client, study_spec, tmp_path):  # noqa: F811 - dcmtk is the fixture imported above
    files = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=3, size=64)]
    paths = []
    for number, data in enumerate(files):
        paths.append(tmp_path / f"{number}.dcm")
        paths[-1].write_bytes(data)
    result = storescu(readroom, *paths)
    assert result.returncode == 0, result.stdout + result.stderr
    before = stored_files(readroom)
    assert len(before) == 3

    datasets = as_client_reads(files)
    answer = client.store_instances(datasets=datasets)
    assert sorted(item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence) == sorted(before)
    assert "FailedSOPSequence" not in answer
    assert stored_files(readroom) == before  # the gateway's copies, its own file meta, untouched

    [series] = client.search_for_series(study_spec.study_uid)
    assert series["00201209"]["Value"] == [3]  # NumberOfSeriesRelatedInstances
    retrieved = client.retrieve_series(study_spec.study_uid, datasets[0].SeriesInstanceUID)
    assert sorted(ds.SOPInstanceUID for ds in retrieved) == sorted(before)
    for ds in retrieved:
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.PixelData == next(o for o in datasets if o.SOPInstanceUID == ds.SOPInstanceUID).PixelData
