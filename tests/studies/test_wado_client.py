"""WADO-RS driven by a client nobody here wrote: the ``dicomweb-client`` package, against the running server."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from accounts.policy import actor_for_user
from accounts.services import personal_token_create
from studies import synthetic
from studies.ingest import Source, Status, ingest_stream

pytestmark = pytest.mark.django_db(transaction=True)


def _ingest(org, datasets) -> dict[str, bytes]:
    files = {}
    for ds in datasets:
        data = synthetic.to_bytes(ds)
        outcome = ingest_stream(organization=org, stream=io.BytesIO(data), filename="x.dcm", source=Source.STOW)
        assert outcome.status == Status.STORED, outcome.reason
        files[ds.SOPInstanceUID] = data
    return files


def _as_bytes(ds) -> bytes:
    """Encode a retrieved data set again as pydicom wrote the original (same options): same bytes if untouched."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True,
               implicit_vr=ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian, little_endian=True)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def bearer(cast):
    _, secret = personal_token_create(actor=actor_for_user(cast.center_admin), name="dicomweb-client test")
    return secret


@pytest.fixture
def client(live_server, bearer):
    # Our own session, closed after the test: no keep-alive connection outlives the test's database.
    with requests.Session() as session:
        yield DICOMwebClient(url=f"{live_server.url}/dicomweb", session=session,
                             headers={"Authorization": f"Bearer {bearer}"})


AS_STORED = (("application/dicom", "*"),)


@pytest.fixture
def study(cast, study_spec):
    """A study with three series: explicit LE, implicit LE and RLE Lossless (multi-frame)."""
    explicit = synthetic.ct_series(study_spec, slices=3, size=64, series_number=2)
    implicit = synthetic.ct_series(study_spec, slices=2, size=64, transfer_syntax=ImplicitVRLittleEndian,
                                   series_number=3)
    rle = synthetic.ct_series(study_spec, slices=1, size=64, transfer_syntax=RLELossless, series_number=4)
    frames = np.stack([(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * (i + 3)) % 4096 for i in range(3)])
    rle[0].NumberOfFrames = 3
    rle[0].PixelData = frames.tobytes()
    files = _ingest(cast.center, explicit + implicit + rle)
    return {"uid": study_spec.study_uid, "explicit": explicit, "implicit": implicit, "rle": rle[0],
            "rle_frames": frames, "files": files}


def test_retrieve_study_series_and_instance_round_trip_byte_identical(client, study):
    # transfer-syntax=*: as stored (without it, PS3.18's default, Explicit VR Little Endian: test_interop_retrieve)
    retrieved = client.retrieve_study(study["uid"], media_types=AS_STORED)
    assert sorted(_sha(_as_bytes(ds)) for ds in retrieved) == sorted(_sha(f) for f in study["files"].values())

    implicit = study["implicit"]
    series = client.retrieve_series(study["uid"], implicit[0].SeriesInstanceUID, media_types=AS_STORED)
    assert [ds.file_meta.TransferSyntaxUID for ds in series] == [ImplicitVRLittleEndian] * 2
    assert [_sha(_as_bytes(ds)) for ds in series] == [_sha(study["files"][ds.SOPInstanceUID]) for ds in implicit]

    rle = study["rle"]
    instance = client.retrieve_instance(study["uid"], rle.SeriesInstanceUID, rle.SOPInstanceUID)
    assert instance.file_meta.TransferSyntaxUID == RLELossless
    assert _sha(_as_bytes(instance)) == _sha(study["files"][rle.SOPInstanceUID])
    np.testing.assert_array_equal(instance.pixel_array, study["rle_frames"])


def test_retrieve_series_metadata_points_at_working_bulk_data(client, study, live_server):
    explicit = study["explicit"]
    metadata = client.retrieve_series_metadata(study["uid"], explicit[0].SeriesInstanceUID)
    assert [m["00080018"]["Value"][0] for m in metadata] == [ds.SOPInstanceUID for ds in explicit]
    uri = metadata[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith("http://")
    assert uri.endswith(f"/instances/{explicit[0].SOPInstanceUID}/bulkdata/7FE00010")
    # dicomweb-client sends "Host: localhost" without the port, so the server (rightly) answers with port 80;
    # follow the URI's path on the live server.
    path = uri.split("/dicomweb/", 1)[1]
    [pixels] = client.retrieve_bulkdata(f"{live_server.url}/dicomweb/{path}")
    assert pixels == explicit[0].PixelData


def test_retrieve_instance_frames_native_and_compressed(client, study):
    explicit = study["explicit"][1]
    [frame] = client.retrieve_instance_frames(study["uid"], explicit.SeriesInstanceUID, explicit.SOPInstanceUID,
                                              frame_numbers=[1])
    assert frame == explicit.PixelData

    rle = study["rle"]
    # the compressed frames, as pydicom cuts them out of the stored file
    encapsulated = dcmread(io.BytesIO(study["files"][rle.SOPInstanceUID])).PixelData
    frames = client.retrieve_instance_frames(study["uid"], rle.SeriesInstanceUID, rle.SOPInstanceUID,
                                             frame_numbers=[3, 1])
    assert frames == [get_frame(encapsulated, 2, number_of_frames=3), get_frame(encapsulated, 0, number_of_frames=3)]
    # uncompressed on request (explicit VR little endian)
    [native] = client.retrieve_instance_frames(study["uid"], rle.SeriesInstanceUID, rle.SOPInstanceUID,
                                               frame_numbers=[2],
                                               media_types=(("application/octet-stream", ExplicitVRLittleEndian),))
    assert native == study["rle_frames"][1].tobytes()


def test_ohif_frame_request_names_the_stored_syntax(live_server, bearer, study):
    rle = study["rle"]
    response = requests.get(
        f"{live_server.url}/dicomweb/studies/{study['uid']}/series/{rle.SeriesInstanceUID}/instances/"
        f"{rle.SOPInstanceUID}/frames/1",
        headers={"Authorization": f"Bearer {bearer}",
                 "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}, timeout=30)
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert f"Content-Type: application/octet-stream; transfer-syntax={RLELossless}".encode() in response.content


def test_retrieve_instance_rendered(client, study):
    explicit = study["explicit"][0]
    jpeg = client.retrieve_instance_rendered(study["uid"], explicit.SeriesInstanceUID, explicit.SOPInstanceUID)
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    assert image.size == (64, 64)
    png = client.retrieve_instance_rendered(study["uid"], explicit.SeriesInstanceUID, explicit.SOPInstanceUID,
                                            media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"
