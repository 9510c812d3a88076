"""WADO-RS: retrieve byte for byte, metadata, frames, bulk data, rendered images, thumbnails, access and audit."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import numpy as np
import pydicom
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from accounts import services as account_services
from accounts.models import AuditEvent
from studies import render, synthetic
from studies.ingest import Source, Status, ingest_stream
from studies.models import Instance, Study
from studies.services import study_access_grant_create, study_access_grant_revoke
from tests.studies.test_storage_s3 import bucket, s3_client, s3_endpoint  # noqa: F401 (fixtures for the S3 test)

OHIF_FRAMES = "multipart/related; type=application/octet-stream; transfer-syntax=*"


# --- helpers ------------------------------------------------------------------------------------------

def ingest(org, datasets) -> list[bytes]:
    """Store the data sets for ``org`` through the one ingest service; the bytes as sent."""
    files = [synthetic.to_bytes(ds) for ds in datasets]
    for data in files:
        outcome = ingest_stream(organization=org, stream=io.BytesIO(data), filename="x.dcm", source=Source.UPLOAD)
        assert outcome.status == Status.STORED, outcome.reason
    return files


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def parse_multipart(response) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related response into (headers, body) parts — written here, not shared with the server."""
    content_type = response["Content-Type"]
    assert content_type.startswith("multipart/related"), content_type
    boundary = next(p.split("=", 1)[1].strip('"') for p in content_type.split(";")
                    if p.strip().startswith("boundary="))
    raw = body(response)
    pieces = raw.split(b"--" + boundary.encode())
    assert pieces[0] == b""
    assert pieces[-1] == b"--\r\n"
    parts = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n")
        assert piece.endswith(b"\r\n")
        head, _, content = piece[2:-2].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            assert int(headers["content-length"]) == len(content)
        parts.append((headers, content))
    return parts


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def multiframe(spec, *, frames: int = 3, size: int = 64, transfer_syntax: str = ExplicitVRLittleEndian):
    """One CT data set holding ``frames`` different frames."""
    ds = synthetic.ct_series(spec, slices=1, size=size, transfer_syntax=transfer_syntax)[0]
    stack = np.stack([(np.arange(size * size, dtype=np.uint16).reshape(size, size) * (i + 1)) % 4096
                      for i in range(frames)])
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()
    return ds, stack


def url(study, series=None, sop=None, tail=""):
    out = f"/dicomweb/studies/{study}"
    if series:
        out += f"/series/{series}"
    if sop:
        out += f"/instances/{sop}"
    return out + tail


def uids(ds):
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def grant(cast, level, *, user=None, days=1):
    study = Study.objects.get(organization=cast.center)
    return study_access_grant_create(actor=None, study=study, user=user or cast.radiologist, level=level,
                                     reason="read request offered", expires_at=timezone.now() + timedelta(days=days))


def accessed(**extra):
    return AuditEvent.objects.filter(action="study.accessed", **{f"extra__{k}": v for k, v in extra.items()})


@pytest.fixture
def admin_client(cast, login):
    return login(cast.center_admin)


# --- retrieve -----------------------------------------------------------------------------------------

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless])
def test_series_and_instance_retrieve_are_byte_identical_in_every_stored_syntax(cast, admin_client, study_spec,
                                                                               syntax):
    datasets = synthetic.ct_series(study_spec, slices=3, size=64, transfer_syntax=syntax)
    files = ingest(cast.center, datasets)
    study_uid, series_uid, _ = uids(datasets[0])

    response = admin_client.get(url(study_uid, series_uid), HTTP_ACCEPT=AS_STORED)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith('multipart/related; type="application/dicom"; boundary=')
    assert "Content-Encoding" not in response
    parts = parse_multipart(response)
    assert sorted(sha(content) for _, content in parts) == sorted(sha(f) for f in files)
    assert {h["content-type"] for h, _ in parts} == {f"application/dicom; transfer-syntax={syntax}"}
    # ordered by instance number
    assert [pydicom.dcmread(io.BytesIO(c)).InstanceNumber for _, c in parts] == [1, 2, 3]

    response = admin_client.get(url(*uids(datasets[1])), HTTP_ACCEPT=AS_STORED)
    [(headers, content)] = parse_multipart(response)
    assert sha(content) == sha(files[1])


def test_study_retrieve_returns_every_series_byte_identical(cast, admin_client, study_spec):
    ct = synthetic.ct_series(study_spec, slices=2, size=32)
    second = synthetic.ct_series(study_spec, slices=2, size=32, transfer_syntax=ImplicitVRLittleEndian,
                                 series_number=3)
    files = ingest(cast.center, ct + second)
    response = admin_client.get(url(study_spec.study_uid),
                                HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*')
    assert response.status_code == 200, body(response)[:300]
    parts = parse_multipart(response)
    assert [sha(c) for _, c in parts] == [sha(f) for f in files]  # series 2 then series 3
    assert accessed(fetched="study", level="full").count() == 1


@pytest.mark.parametrize("accept", [
    None, "*/*", "multipart/related", 'multipart/related; type="application/dicom"',
    'multipart/related; type="application/dicom"; transfer-syntax=*',
    f'multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian}',
    f'application/zip, multipart/related; type="application/dicom"; transfer-syntax={ExplicitVRLittleEndian};q=0.5',
])
def test_retrieve_accepts_what_it_can_satisfy_as_stored(cast, admin_client, ct_files, accept):
    ingest_files = [ingest_stream(organization=cast.center, stream=io.BytesIO(d), filename="f", source="upload")
                    for d in ct_files[:2]]
    instance = Instance.objects.select_related("series", "study").get(sop_instance_uid=ingest_files[0].sop_instance_uid)
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = admin_client.get(url(instance.study.study_instance_uid, instance.series.series_instance_uid),
                                **headers)
    assert response.status_code == 200
    assert len(parse_multipart(response)) == 2


@pytest.mark.parametrize("accept", [
    # JPEG baseline is lossy: never produced from a stored image (RLE now is: tests/studies/test_interop_retrieve.py)
    'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
    "application/zip",
    'multipart/related; type="application/dicom+xml"',
    "image/jpeg",
])
def test_retrieve_answers_406_for_what_would_need_transcoding_or_another_format(cast, admin_client, ct_files,
                                                                               accept):
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(ct_files[0]), filename="f", source="upload")
    response = admin_client.get(url(outcome.study_instance_uid, outcome.series_instance_uid), HTTP_ACCEPT=accept)
    assert response.status_code == 406
    message = response.json()["error"]["message"]
    assert "application/dicom" in message or "transcode" in message
    assert not accessed().exists()


def test_single_instance_can_be_fetched_as_a_bare_application_dicom_body(cast, admin_client, ct_files):
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(ct_files[0]), filename="f", source="upload")
    response = admin_client.get(url(outcome.study_instance_uid, outcome.series_instance_uid,
                                    outcome.sop_instance_uid), HTTP_ACCEPT="application/dicom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/dicom")
    assert int(response["Content-Length"]) == len(ct_files[0])
    assert body(response) == ct_files[0]


def test_retrieve_streams_a_big_instance_in_chunks_of_at_most_a_megabyte(cast, admin_client, study_spec):
    ds, _ = multiframe(study_spec, frames=12, size=512)  # 6 MB of pixels
    [data] = ingest(cast.center, [ds])
    response = admin_client.get(url(*uids(ds)))
    assert isinstance(response, StreamingHttpResponse)
    chunks = list(response.streaming_content)
    assert len(chunks) >= 6
    assert max(len(c) for c in chunks) <= 1024 * 1024 + 64 * 1024
    assert data in b"".join(chunks)


# --- metadata -----------------------------------------------------------------------------------------

def test_metadata_is_the_stored_dicom_json_with_absolute_bulk_data_uris(cast, admin_client, study_spec):
    datasets = synthetic.ct_series(study_spec, slices=3, size=32)
    ingest(cast.center, datasets)
    study_uid, series_uid, sop_uid = uids(datasets[0])
    for path, count in [(url(study_uid, tail="/metadata"), 3), (url(study_uid, series_uid, tail="/metadata"), 3),
                        (url(study_uid, series_uid, sop_uid, tail="/metadata"), 1)]:
        response = admin_client.get(path, HTTP_ACCEPT="application/dicom+json")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/dicom+json"
        items = json.loads(body(response))
        assert len(items) == count
        assert items[0]["00100010"]["Value"][0]["Alphabetic"] == "Rivera^Ana"
        assert b"__INSTANCE_URL__" not in body(admin_client.get(path))
    [item] = items
    uri = item["7FE00010"]["BulkDataURI"]
    assert uri == f"http://testserver{url(study_uid, series_uid, sop_uid)}/bulkdata/7FE00010"
    bulk = admin_client.get(uri.removeprefix("http://testserver"))
    [(_, pixels)] = parse_multipart(bulk)
    assert pixels == datasets[0].PixelData
    assert accessed(fetched="metadata").count() == 6


def _metadata_queries(client, path) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
        items = json.loads(body(response))
    return len(queries), len(items)


def test_metadata_costs_the_same_number_of_queries_for_2_or_12_instances(cast, admin_client, study_spec):
    datasets = synthetic.ct_series(study_spec, slices=12, size=16)
    ingest(cast.center, datasets[:2])
    study_uid, series_uid, _ = uids(datasets[0])
    for path in (url(study_uid, tail="/metadata"), url(study_uid, series_uid, tail="/metadata")):
        _metadata_queries(admin_client, path)  # warm the session/MFA flags
    small = [_metadata_queries(admin_client, p) for p in (url(study_uid, tail="/metadata"),
                                                           url(study_uid, series_uid, tail="/metadata"))]
    ingest(cast.center, datasets[2:])
    big = [_metadata_queries(admin_client, p) for p in (url(study_uid, tail="/metadata"),
                                                         url(study_uid, series_uid, tail="/metadata"))]
    assert [n for _, n in small] == [2, 2]
    assert [n for _, n in big] == [12, 12]
    assert [q for q, _ in small] == [q for q, _ in big]


def test_metadata_refuses_a_format_it_does_not_offer(cast, admin_client, ct_files):
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(ct_files[0]), filename="f", source="upload")
    response = admin_client.get(url(outcome.study_instance_uid, tail="/metadata"),
                                HTTP_ACCEPT='multipart/related; type="application/dicom+xml"')
    assert response.status_code == 406


# --- frames -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_ohif_frame_request_on_native_pixels_gets_exact_frame_bytes_named_with_the_stored_syntax(
        cast, admin_client, study_spec, syntax):
    ds, stack = multiframe(study_spec, frames=3, transfer_syntax=syntax)
    ingest(cast.center, [ds])
    response = admin_client.get(url(*uids(ds), tail="/frames/3,1"), HTTP_ACCEPT=OHIF_FRAMES)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        f'multipart/related; type="application/octet-stream; transfer-syntax={syntax}"; boundary=')
    parts = parse_multipart(response)
    assert [h["content-type"] for h, _ in parts] == [f"application/octet-stream; transfer-syntax={syntax}"] * 2
    assert [c for _, c in parts] == [stack[2].tobytes(), stack[0].tobytes()]
    assert accessed(fetched="frames", level="full").count() == 1


def test_ohif_frame_request_on_rle_gets_the_stored_compressed_frame(cast, admin_client, study_spec):
    ds, stack = multiframe(study_spec, frames=3, transfer_syntax=RLELossless)
    [data] = ingest(cast.center, [ds])
    stored = pydicom.dcmread(io.BytesIO(data))
    response = admin_client.get(url(*uids(ds), tail="/frames/2"), HTTP_ACCEPT=OHIF_FRAMES)
    assert response.status_code == 200
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={RLELossless}"
    assert content == get_frame(stored.PixelData, 1, number_of_frames=3)

    # dicomweb-client's default (type="*/*") names the compressed media type
    response = admin_client.get(url(*uids(ds), tail="/frames/1"), HTTP_ACCEPT='multipart/related; type="*/*"')
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"] == f"image/x-dicom-rle; transfer-syntax={RLELossless}"
    assert content == get_frame(stored.PixelData, 0, number_of_frames=3)

    # plain octet-stream means uncompressed (explicit VR little endian): decompressed on the way out
    response = admin_client.get(url(*uids(ds), tail="/frames/3"),
                                HTTP_ACCEPT='multipart/related; type="application/octet-stream"')
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    assert content == stack[2].tobytes()


def test_jpeg_2000_frames_go_out_as_stored_or_decoded_and_render(cast, admin_client, study_spec):
    ds, stack = multiframe(study_spec, frames=2, size=64)
    ds.compress(JPEG2000Lossless)  # needs the pylibjpeg-openjpeg plugin, as decoding does
    [data] = ingest(cast.center, [ds])
    encapsulated = pydicom.dcmread(io.BytesIO(data)).PixelData
    [(headers, content)] = parse_multipart(admin_client.get(url(*uids(ds), tail="/frames/2"),
                                                            HTTP_ACCEPT=OHIF_FRAMES))
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={JPEG2000Lossless}"
    assert content == get_frame(encapsulated, 1, number_of_frames=2)
    [(headers, _)] = parse_multipart(admin_client.get(url(*uids(ds), tail="/frames/1"),
                                                      HTTP_ACCEPT='multipart/related; type="image/jp2"'))
    assert headers["content-type"] == f"image/jp2; transfer-syntax={JPEG2000Lossless}"
    [(_, native)] = parse_multipart(admin_client.get(
        url(*uids(ds), tail="/frames/2"),
        HTTP_ACCEPT=f"multipart/related; type=application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"))
    assert native == stack[1].tobytes()  # lossless: decoded exactly
    rendered = admin_client.get(url(*uids(ds), tail="/frames/2/rendered"), HTTP_ACCEPT="image/png")
    assert rendered.status_code == 200
    assert _image(rendered).size == (64, 64)


def test_frames_that_would_need_transcoding_are_406(cast, admin_client, study_spec):
    ds, _ = multiframe(study_spec, frames=2)
    ingest(cast.center, [ds])
    response = admin_client.get(url(*uids(ds), tail="/frames/1"),
                                HTTP_ACCEPT='multipart/related; type="image/jpeg"')
    assert response.status_code == 406
    assert "not transcoded" in response.json()["error"]["message"]


@pytest.mark.parametrize(("frames", "status", "words"), [
    ("0", 404, "Frame 0 does not exist"),
    ("4", 404, "this instance has 3 frame(s)"),
    ("1,9", 404, "Frame 9 does not exist"),
    ("abc", 400, "comma-separated list"),
    ("1,,2", 400, "comma-separated list"),
    ("-1", 400, "comma-separated list"),
])
def test_bad_frame_numbers_are_answered_clearly(cast, admin_client, study_spec, frames, status, words):
    ds, _ = multiframe(study_spec, frames=3)
    ingest(cast.center, [ds])
    response = admin_client.get(url(*uids(ds), tail=f"/frames/{frames}"), HTTP_ACCEPT=OHIF_FRAMES)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]


def test_a_frame_the_header_announces_but_the_file_lacks_is_404_not_a_broken_stream(cast, admin_client, study_spec):
    ds, stack = multiframe(study_spec, frames=3)
    ds.PixelData = stack[:2].tobytes()  # NumberOfFrames says 3
    ingest(cast.center, [ds])
    assert admin_client.get(url(*uids(ds), tail="/frames/2"), HTTP_ACCEPT=OHIF_FRAMES).status_code == 200
    response = admin_client.get(url(*uids(ds), tail="/frames/3"), HTTP_ACCEPT=OHIF_FRAMES)
    assert response.status_code == 404
    assert "beyond the stored pixel data" in response.json()["error"]["message"]


# --- bulk data ----------------------------------------------------------------------------------------

def test_bulkdata_serves_the_pixel_data_value_and_404s_unknown_tags(cast, admin_client, study_spec):
    native, _ = multiframe(study_spec, frames=2)
    rle, _ = multiframe(study_spec, frames=2, transfer_syntax=RLELossless)
    native_bytes, rle_bytes = ingest(cast.center, [native, rle])
    for ds, data in ((native, native_bytes), (rle, rle_bytes)):
        response = admin_client.get(url(*uids(ds), tail="/bulkdata/7FE00010"))
        assert response.status_code == 200
        [(headers, content)] = parse_multipart(response)
        assert headers["content-type"] == "application/octet-stream"
        assert content == pydicom.dcmread(io.BytesIO(data)).PixelData
    raw = admin_client.get(url(*uids(native), tail="/bulkdata/7FE00010"), HTTP_ACCEPT="application/octet-stream")
    assert raw["Content-Type"] == "application/octet-stream"
    assert body(raw) == pydicom.dcmread(io.BytesIO(native_bytes)).PixelData
    for tag in ("00100010", "7FE00011", "ZZZ", "7fe000100"):
        response = admin_client.get(url(*uids(native), tail=f"/bulkdata/{tag}"))
        assert response.status_code == 404, tag


# --- rendered and thumbnails --------------------------------------------------------------------------

def _image(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def test_rendered_is_a_jpeg_or_png_of_the_first_frame_with_the_default_window(cast, admin_client, study_spec):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    pixels = np.full((64, 64), 1024, dtype=np.uint16)  # 0 HU after the -1024 rescale
    pixels[:, 32:] = 1024 + 200  # 200 HU: inside the 40/400 window, near its top (240 HU)
    pixels[:, 48:] = 3000  # far above the window: white
    pixels[:, :8] = 0  # -1024 HU: black
    ds.PixelData = pixels.tobytes()
    ingest(cast.center, [ds])
    response = admin_client.get(url(*uids(ds), tail="/rendered"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"].startswith("private")
    image = np.asarray(_image(response).convert("L"), dtype=np.int16)
    assert image.shape == (64, 64)
    assert image[:, :6].mean() < 5
    assert image[:, 50:].mean() > 250
    # PS3.3 linear window: ((HU - 39.5) / 399 + 0.5) * 255 → 0 HU ≈ 102, 200 HU ≈ 230
    assert abs(image[:, 12:28].mean() - 102) < 6
    assert abs(image[:, 36:44].mean() - 230) < 6
    png = admin_client.get(url(*uids(ds), tail="/rendered"), HTTP_ACCEPT="image/png")
    assert png["Content-Type"] == "image/png"
    assert _image(png).format == "PNG"
    small = admin_client.get(url(*uids(ds), tail="/rendered?viewport=32,16"))
    assert _image(small).size == (16, 16)
    assert admin_client.get(url(*uids(ds), tail="/rendered"), HTTP_ACCEPT="image/gif").status_code == 406
    assert admin_client.get(url(*uids(ds), tail="/rendered?viewport=a,b")).status_code == 400
    assert accessed(fetched="rendered").count() == 3


def test_monochrome1_is_inverted_and_a_window_can_be_asked_for(cast, admin_client, study_spec):
    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    pixels = np.zeros((32, 32), dtype=np.uint16)
    pixels[:, 16:] = 2000
    ds.PixelData = pixels.tobytes()
    ds.PhotometricInterpretation = "MONOCHROME1"
    del ds.WindowCenter, ds.WindowWidth
    ingest(cast.center, [ds])
    image = np.asarray(_image(admin_client.get(url(*uids(ds), tail="/rendered?quality=100"))).convert("L"))
    assert image[:, :12].mean() > 245
    assert image[:, 20:].mean() < 10
    windowed = np.asarray(_image(admin_client.get(url(*uids(ds), tail="/rendered?window=5000,100"))).convert("L"))
    assert windowed.mean() > 245  # everything below the window: black, inverted to white


def test_frame_rendered_renders_that_frame(cast, admin_client, study_spec):
    ds, stack = multiframe(study_spec, frames=3, size=32)
    ingest(cast.center, [ds])
    first = admin_client.get(url(*uids(ds), tail="/frames/1/rendered"), HTTP_ACCEPT="image/png")
    third = admin_client.get(url(*uids(ds), tail="/frames/3/rendered"), HTTP_ACCEPT="image/png")
    assert first.status_code == third.status_code == 200
    assert first.content != third.content
    assert admin_client.get(url(*uids(ds), tail="/frames/4/rendered")).status_code == 404
    assert admin_client.get(url(*uids(ds), tail="/frames/1,2/rendered")).status_code == 400


def test_thumbnails_fit_the_viewport_keep_the_aspect_and_are_cached(cast, admin_client, study_spec):
    datasets = synthetic.ultrasound(study_spec, frames=3)  # 640 x 480
    ingest(cast.center, datasets)
    study_uid, series_uid, sop_uid = uids(datasets[1])
    response = admin_client.get(url(study_uid, series_uid, sop_uid, tail="/thumbnail"))
    assert response.status_code == 200
    assert _image(response).size == (128, 96)
    instance = Instance.objects.get(sop_instance_uid=sop_uid)
    key = render.thumbnail_key(instance, render.JPEG, (128, 128))
    assert default_storage.exists(key)
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == response.content
    again = admin_client.get(url(study_uid, series_uid, sop_uid, tail="/thumbnail"))
    assert again.content == response.content
    assert _image(admin_client.get(url(study_uid, tail="/thumbnail?viewport=64,64"))).size == (64, 48)
    series = admin_client.get(url(study_uid, series_uid, tail="/thumbnail"), HTTP_ACCEPT="image/png")
    assert series.status_code == 200
    assert _image(series).format == "PNG"
    assert accessed(fetched="thumbnail").count() == 4


def test_an_image_that_cannot_be_decoded_is_a_clear_error_not_a_500(cast, admin_client, study_spec):
    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    ds.BitsAllocated = 12  # nothing decodes 12-bit allocation
    ingest(cast.center, [ds])
    response = admin_client.get(url(*uids(ds), tail="/rendered"))
    assert response.status_code == 422
    assert "could not be decoded" in response.json()["error"]["message"]


# --- access, preview and audit ------------------------------------------------------------------------

CANARY = "CANARY-7Q"


@pytest.fixture
def canary_study(cast, study_spec):
    ct = [synthetic.with_private_and_nested_phi(ds, CANARY)
          for ds in synthetic.ct_series(study_spec, slices=3, size=32)]
    rle = [synthetic.with_private_and_nested_phi(ds, CANARY)
           for ds in synthetic.ct_series(study_spec, slices=2, size=32, transfer_syntax=RLELossless,
                                         series_number=3)]
    us = [synthetic.with_private_and_nested_phi(ds, CANARY) for ds in synthetic.ultrasound(study_spec, frames=2)]
    for ds in ct + rle + us:
        ds.PatientBirthDate = "19610407"
        ds.OperatorsName = f"{CANARY}^Operator"
    ingest(cast.center, ct + rle + us)
    return {"study": study_spec.study_uid, "ct": ct, "rle": rle, "us": us}


def _preview_paths(c):
    study = c["study"]
    paths = [url(study, tail="/metadata")]
    for ds in (c["ct"][0], c["rle"][0], c["us"][0]):
        _, series, sop = uids(ds)
        paths += [url(study, series, tail="/metadata"), url(study, series, sop, tail="/metadata")]
    return paths


def test_preview_gets_deidentified_metadata_with_zero_canaries(cast, login, canary_study):
    # the canary really is in the study: a full user sees it
    full = login(cast.center_admin)
    assert CANARY.encode() in body(full.get(url(canary_study["study"], tail="/metadata")))

    grant(cast, "preview")
    client = login(cast.radiologist)
    for path in _preview_paths(canary_study):
        response = client.get(path)
        assert response.status_code == 200, path
        content = body(response)
        assert CANARY.encode() not in content, path
        assert CANARY.lower().encode() not in content.lower(), path
        for item in json.loads(content):
            assert item["00120062"]["Value"] == ["YES"]
            assert "00100030" not in item  # birth date gone
            assert not [k for k in item if int(k[:4], 16) % 2]  # no private groups
            assert "7FE00010" not in item  # no pointer to pixels
            assert item["0020000D"]["Value"] == [canary_study["study"]]  # UIDs kept
            assert item["00280010"]["Value"][0] in (32, 480)  # the image pixel module stays
            assert item["00080020"]["Value"][0] != "20261102"  # shifted
    assert accessed(fetched="metadata", level="preview").count() == len(_preview_paths(canary_study))


def test_preview_dates_move_by_the_same_days_within_the_study(cast, login, canary_study):
    grant(cast, "preview")
    items = json.loads(body(login(cast.radiologist).get(url(canary_study["study"], tail="/metadata"))))
    study_dates = {item["00080020"]["Value"][0] for item in items}
    assert len(study_dates) == 1
    assert study_dates.pop() < "20261102"


def test_preview_gets_thumbnails_only_of_images_without_burned_in_annotation(cast, login, canary_study):
    grant(cast, "preview")
    client = login(cast.radiologist)
    study = canary_study["study"]
    ct_series, us_series = canary_study["ct"][0].SeriesInstanceUID, canary_study["us"][0].SeriesInstanceUID
    ok = [url(study, tail="/thumbnail"), url(study, ct_series, tail="/thumbnail"),
          url(*uids(canary_study["ct"][1]), tail="/thumbnail"), url(*uids(canary_study["rle"][0]), tail="/thumbnail")]
    for path in ok:
        response = client.get(path)
        assert response.status_code == 200, path
        assert CANARY.encode() not in response.content
        assert response["Content-Type"] == "image/jpeg"
    for path in (url(study, us_series, tail="/thumbnail"), url(*uids(canary_study["us"][0]), tail="/thumbnail")):
        response = client.get(path)
        assert response.status_code == 404
        assert "Burned In Annotation" in response.json()["error"]["message"]
    # the full user gets the ultrasound thumbnail
    assert login(cast.center_admin).get(url(study, us_series, tail="/thumbnail")).status_code == 200
    assert accessed(fetched="thumbnail", level="preview").count() == len(ok)


def test_unknown_burned_in_annotation_counts_as_not_no(cast, login, study_spec):
    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    del ds.BurnedInAnnotation
    ingest(cast.center, [ds])
    grant(cast, "preview")
    assert login(cast.radiologist).get(url(*uids(ds), tail="/thumbnail")).status_code == 404
    assert login(cast.center_admin).get(url(*uids(ds), tail="/thumbnail")).status_code == 200


def test_preview_gets_no_files_frames_bulk_data_or_full_size_images(cast, login, canary_study):
    grant(cast, "preview")
    client = login(cast.radiologist)
    study = canary_study["study"]
    ct = canary_study["ct"][0]
    paths = [url(study), url(study, ct.SeriesInstanceUID), url(*uids(ct)), url(*uids(ct), tail="/frames/1"),
             url(*uids(ct), tail="/bulkdata/7FE00010"), url(*uids(ct), tail="/rendered"),
             url(study, ct.SeriesInstanceUID, tail="/rendered"), url(study, tail="/rendered"),
             url(*uids(ct), tail="/frames/1/rendered")]
    for path in paths:
        response = client.get(path, HTTP_ACCEPT="*/*")
        assert response.status_code == 404, path
        assert CANARY.encode() not in response.content
    message = client.get(url(*uids(ct), tail="/frames/1")).json()["error"]["message"]
    assert "preview access" in message
    assert not accessed().exists()


def test_full_grant_gets_everything(cast, login, canary_study):
    grant(cast, "full")
    client = login(cast.radiologist)
    ct = canary_study["ct"][0]
    assert CANARY.encode() in body(client.get(url(*uids(ct), tail="/metadata")))
    [(_, content)] = parse_multipart(client.get(url(*uids(ct))))
    assert CANARY.encode() in content
    assert client.get(url(*uids(ct), tail="/frames/1"), HTTP_ACCEPT=OHIF_FRAMES).status_code == 200
    assert client.get(url(*uids(canary_study["us"][0]), tail="/thumbnail")).status_code == 200
    event = accessed(fetched="instance").get()
    assert event.actor == cast.radiologist
    assert event.extra["level"] == "full"
    assert event.object_id == canary_study["study"]


def test_expired_or_revoked_grants_and_other_principals_get_404(cast, login, canary_study):
    ct = canary_study["ct"][0]
    paths = [url(*uids(ct), tail="/metadata"), url(*uids(ct), tail="/thumbnail"), url(*uids(ct))]
    g = grant(cast, "full")
    study_access_grant_revoke(actor=None, grant=g)
    expired = grant(cast, "full")
    type(expired).objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    for user in (cast.radiologist, cast.other_admin, cast.center_finance, cast.patient):
        client = login(user)
        for path in paths:
            assert client.get(path).status_code == 404, (user.email, path)
    anonymous = login(None)
    assert anonymous.get(paths[0]).status_code == 401
    assert not accessed().exists()


def test_the_same_study_uid_at_another_center_is_not_reachable(cast, login, study_spec):
    mine = synthetic.ct_series(study_spec, slices=1, size=32)
    ingest(cast.other_center, mine)
    response = login(cast.center_admin).get(url(*uids(mine[0]), tail="/metadata"))
    assert response.status_code == 404
    assert login(cast.other_admin).get(url(*uids(mine[0]), tail="/metadata")).status_code == 200


def test_malformed_uids_are_404_before_anything_is_read(cast, admin_client):
    for path in ("/dicomweb/studies/1.2.abc/metadata", "/dicomweb/studies/1.2/series/..%2F..%2Fx/metadata",
                 f"/dicomweb/studies/1.2/series/1.3/instances/{'1' * 70}/frames/1"):
        assert admin_client.get(path).status_code == 404


def test_each_request_is_audited_once_with_level_and_what_was_fetched(cast, admin_client, study_spec):
    datasets = synthetic.ct_series(study_spec, slices=2, size=32)
    ingest(cast.center, datasets)
    study_uid, series_uid, sop_uid = uids(datasets[0])
    for path, fetched in [(url(study_uid, series_uid), "series"), (url(study_uid, series_uid, sop_uid), "instance"),
                          (url(study_uid, tail="/metadata"), "metadata"),
                          (url(study_uid, series_uid, sop_uid, tail="/frames/1"), "frames"),
                          (url(study_uid, series_uid, sop_uid, tail="/bulkdata/7FE00010"), "bulkdata"),
                          (url(study_uid, series_uid, tail="/rendered"), "rendered"),
                          (url(study_uid, tail="/thumbnail"), "thumbnail")]:
        before = AuditEvent.objects.filter(action="study.accessed").count()
        response = admin_client.get(path)
        body(response)
        assert response.status_code == 200, path
        events = list(AuditEvent.objects.filter(action="study.accessed").order_by("id"))[before:]
        assert len(events) == 1, path
        assert events[0].extra == {"level": "full", "fetched": fetched}
        assert events[0].actor == cast.center_admin
        assert events[0].object_id == study_uid


# --- the same reads from an S3-compatible bucket ------------------------------------------------------


def test_retrieve_frames_bulk_data_and_thumbnails_work_from_s3(cast, admin_client, study_spec,
                                                               bucket, s3_client):  # noqa: F811
    plain = synthetic.ct_series(study_spec, slices=2, size=64)
    rle, stack = multiframe(study_spec, frames=3, transfer_syntax=RLELossless)
    files = ingest(cast.center, [*plain, rle])
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] == 3
    parts = parse_multipart(admin_client.get(url(*uids(plain[0])[:2])))
    assert [sha(c) for _, c in parts] == [sha(f) for f in files[:2]]
    [(_, frame)] = parse_multipart(admin_client.get(url(*uids(rle), tail="/frames/3"), HTTP_ACCEPT=OHIF_FRAMES))
    assert frame == get_frame(pydicom.dcmread(io.BytesIO(files[2])).PixelData, 2, number_of_frames=3)
    [(_, pixels)] = parse_multipart(admin_client.get(url(*uids(plain[1]), tail="/bulkdata/7FE00010")))
    assert pixels == plain[1].PixelData
    first = admin_client.get(url(*uids(plain[0]), tail="/thumbnail"))
    second = admin_client.get(url(*uids(plain[0]), tail="/thumbnail"))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] == 4  # the cached thumbnail, once


def test_retrieve_announces_the_exact_length_of_the_multipart_body(cast, login, ct_files):
    """The index knows every file's size, so the body is not chunked and its length is exact."""
    for data in ct_files:
        ingest_stream(organization=cast.center, stream=io.BytesIO(data), filename="x.dcm", source=Source.UPLOAD)
    instance = Instance.objects.filter(organization=cast.center).select_related("study", "series").first()
    response = login(cast.center_admin).get(
        f"/dicomweb/studies/{instance.study.study_instance_uid}/series/{instance.series.series_instance_uid}",
        HTTP_ACCEPT='multipart/related; type="application/dicom"')
    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert int(response["Content-Length"]) == len(body)
    assert all(data in body for data in ct_files)


# --- a remembered study access on the instance-level paths --------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_frame_costs_two_exchanges_once_the_study_access_is_remembered(cast, study_spec, postgres_exchanges):
    """The check of the remembered access rides with the instance's query; the audit record follows (it
    is written only once the frames are known to exist and to be deliverable)."""
    ds, stack = multiframe(study_spec, frames=2)
    ingest(cast.center, [ds])
    _key, secret = account_services.api_key_create(actor=None, organization=cast.center, name="viewer",
                                                   roles=["technologist"])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_ACCEPT=OHIF_FRAMES)
    frame = url(*uids(ds), tail="/frames/1")
    for _ in range(3):  # the key's lookup; psycopg preparing each statement on its second run
        assert client.get(frame).status_code == 200
    before = accessed(fetched="frames").count()
    with postgres_exchanges() as seen:
        response = client.get(frame)
        assert [c for _, c in parse_multipart(response)] == [stack[0].tobytes()]
    assert seen.count == 2, seen.trace
    assert "readroom_require" in seen.trace
    assert accessed(fetched="frames").count() == before + 1
    missing = url(ds.StudyInstanceUID, ds.SeriesInstanceUID, "1.2.3.4.5", "/frames/1")
    assert client.get(missing).status_code == 404  # verified access, no such instance
    assert accessed(fetched="frames").count() == before + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["revoke", "downgrade"])
def test_frames_stop_at_once_when_a_remembered_full_access_ends(cast, login, study_spec, change):
    ds, _stack = multiframe(study_spec, frames=1)
    ingest(cast.center, [ds])
    full = grant(cast, "full")
    client = login(cast.radiologist)
    paths = [url(*uids(ds), tail="/frames/1"), url(*uids(ds)), url(*uids(ds), tail="/rendered"),
             url(*uids(ds), tail="/bulkdata/7FE00010")]
    for path in paths:
        assert client.get(path, HTTP_ACCEPT="*/*").status_code == 200, path
    study_access_grant_revoke(actor=None, grant=full)
    if change == "downgrade":
        grant(cast, "preview")
    before = AuditEvent.objects.filter(action="study.accessed").count()
    for path in paths:
        assert client.get(path, HTTP_ACCEPT="*/*").status_code == 404, path
    assert AuditEvent.objects.filter(action="study.accessed").count() == before
