"""Issue 20 item 2: no 500 on /frames (or /bulkdata, /rendered) whatever the stored pixel data holds.

Each case is a file a real sender could store (lossy, RGB, damaged, shorter than its header says,
deflated, hostile): every request is answered with 200 or a 404/406/422 whose message names the
instance and the frame, decided before the first byte (the response is complete or an error).
"""

from __future__ import annotations

import io
import time

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from studies import synthetic
from studies.ingest import Source, Status, ingest_stream
from studies.models import Instance
from tests.studies.test_wado import OHIF_FRAMES, parse_multipart, uids, url

DECODED = f"multipart/related; type=application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
PLAIN_OCTET = 'multipart/related; type="application/octet-stream"'
HOSTILE_J2K = b"\0\0\0\x0cjP  \r\n\x87\n" + b"\0" * 50  # the 62-byte fragment: a JP2 box of length 0
SIZE = 32


def store(org, ds) -> None:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    outcome = ingest_stream(
        organization=org, stream=io.BytesIO(buffer.getvalue()), filename="x.dcm", source=Source.UPLOAD
    )
    assert outcome.status == Status.STORED, outcome.reason


def base(spec, syntax, *, samples=1, photometric="MONOCHROME2", frames=1, bits=8):
    ds = synthetic.ct_series(spec, slices=1, size=SIZE)[0]
    ds.file_meta.TransferSyntaxUID = syntax
    ds.Rows = ds.Columns = SIZE
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.NumberOfFrames = frames
    for name in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if name in ds:
            delattr(ds, name)
    return ds


def jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=80)
    return out.getvalue()


def encapsulated(spec, syntax, fragments: list[bytes], **kwargs):
    ds = base(spec, syntax, **kwargs)
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    return ds


GREY = np.arange(SIZE * SIZE, dtype=np.uint8).reshape(SIZE, SIZE) * 7
RGB = np.stack([GREY, 255 - GREY, np.full_like(GREY, 128)], axis=-1)


def lossy_jpeg(spec):
    return encapsulated(spec, JPEGBaseline8Bit, [jpeg(GREY), jpeg(GREY)], frames=2)


def rgb_jpeg(spec):
    return encapsulated(spec, JPEGBaseline8Bit, [jpeg(RGB)], samples=3, photometric="YBR_FULL_422")


def corrupt_jpeg(spec):
    return encapsulated(spec, JPEGBaseline8Bit, [b"\xff\xd8\xff\xdb" + b"\x13" * 200 + b"\xff\xd9"])


def corrupt_rle(spec):
    header = (1).to_bytes(4, "little") + (4096).to_bytes(4, "little") + b"\0" * 56  # a segment past the end
    return encapsulated(spec, RLELossless, [header + b"\x00\x01" * 10])


def j2k_with_embedded_delimiter(spec):
    good = base(spec, ExplicitVRLittleEndian)
    good.PixelData = GREY.tobytes()
    good.compress(JPEG2000Lossless)
    [frame] = list(pydicom.encaps.generate_frames(good.PixelData, number_of_frames=1))
    # a sequence delimiter item inside the fragment's bytes, as a broken encoder wrote it
    cut = len(frame) // 2
    return encapsulated(spec, JPEG2000Lossless, [frame[:cut] + b"\xfe\xff\xdd\xe0\0\0\0\0" + frame[cut:]])


def fewer_fragments(spec):
    return encapsulated(spec, JPEGBaseline8Bit, [jpeg(GREY), jpeg(GREY)], frames=3)  # header: 3, file: 2


def hostile_j2k(spec):
    return encapsulated(spec, JPEG2000Lossless, [HOSTILE_J2K])


def deflated(spec):
    ds = base(spec, DeflatedExplicitVRLittleEndian, frames=2, bits=16)
    ds.PixelData = np.stack([GREY.astype(np.uint16) * 3, GREY.astype(np.uint16) * 5]).tobytes()
    return ds


# (builder, frames, Accept, expected status, expected first frame (for 200) or words in the message)
CASES = [
    ("lossy JPEG decoded", lossy_jpeg, "2", DECODED, 200, None),
    ("lossy JPEG, octet-stream without a syntax", lossy_jpeg, "1", PLAIN_OCTET, 200, None),
    ("RGB JPEG decoded", rgb_jpeg, "1", DECODED, 200, None),
    ("corrupt JPEG decoded", corrupt_jpeg, "1", DECODED, 422, "could not be decompressed"),
    ("corrupt RLE decoded", corrupt_rle, "1", DECODED, 422, "could not be decompressed"),
    ("corrupt RLE, octet-stream without a syntax", corrupt_rle, "1", PLAIN_OCTET, 422, "could not be decompressed"),
    ("J2K with an embedded delimiter decoded", j2k_with_embedded_delimiter, "1", DECODED, (200, 422), None),
    ("frame beyond the fragments, as stored", fewer_fragments, "3", OHIF_FRAMES, 404, "could not be found"),
    ("frame beyond the fragments, decoded", fewer_fragments, "3", DECODED, 404, "could not be found"),
    ("frames 1 and 3, one beyond the fragments", fewer_fragments, "1,3", OHIF_FRAMES, 404, "could not be found"),
    ("deflated frame 1", deflated, "1", OHIF_FRAMES, 200, None),
    ("deflated frame 2 decoded", deflated, "2", DECODED, 200, None),
    ("hostile JPEG 2000 decoded", hostile_j2k, "1", DECODED, 422, "JPEG 2000 header is malformed"),
]


@pytest.fixture
def admin_client(cast, login):
    return login(cast.center_admin)


@pytest.mark.parametrize(("name", "build", "frames", "accept", "status", "expect"), CASES, ids=[c[0] for c in CASES])
def test_each_frame_case_is_answered_without_a_500(
    cast, admin_client, study_spec, name, build, frames, accept, status, expect
):
    ds = build(study_spec)
    store(cast.center, ds)
    started = time.monotonic()
    response = admin_client.get(url(*uids(ds), tail=f"/frames/{frames}"), HTTP_ACCEPT=accept)
    assert time.monotonic() - started < 15
    allowed = status if isinstance(status, tuple) else (status,)
    assert response.status_code in allowed, (response.status_code, getattr(response, "content", b"")[:300])
    if response.status_code == 200:
        parts = parse_multipart(response)  # a complete multipart body, every part as long as it says
        assert len(parts) == len(frames.split(","))
        return
    message = response.json()["error"]["message"]
    assert ds.SOPInstanceUID in message, message
    if expect:
        assert expect in message, message
    number = frames.split(",")[-1]
    assert f"rame {number}" in message, message


def test_decoded_frames_hold_the_right_pixels(cast, admin_client, study_spec):
    ds = deflated(study_spec)
    store(cast.center, ds)
    [(headers, content)] = parse_multipart(admin_client.get(url(*uids(ds), tail="/frames/2"), HTTP_ACCEPT=DECODED))
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    assert content == (GREY.astype(np.uint16) * 5).astype("<u2").tobytes()
    lossy = lossy_jpeg(study_spec)
    store(cast.center, lossy)
    [(_, content)] = parse_multipart(admin_client.get(url(*uids(lossy), tail="/frames/1"), HTTP_ACCEPT=DECODED))
    decoded = np.frombuffer(content, dtype=np.uint8).reshape(SIZE, SIZE)
    assert np.abs(decoded.astype(int) - GREY.astype(int)).mean() < 12  # lossy, but the same picture


def test_hostile_j2k_is_refused_at_once_on_every_route_and_remembered(cast, admin_client, study_spec):
    ds = hostile_j2k(study_spec)
    store(cast.center, ds)
    routes = [
        ("/frames/1", DECODED, 422),
        ("/rendered", "image/jpeg", 422),
        ("/frames/1/rendered", "image/png", 422),
        ("/thumbnail", "image/jpeg", 422),
        ("/bulkdata/7FE00010", PLAIN_OCTET, 422),
        ("/frames/1", OHIF_FRAMES, 200),
        ("/bulkdata/7FE00010", OHIF_FRAMES, 200),
    ]
    for tail, accept, status in routes:
        started = time.monotonic()
        response = admin_client.get(url(*uids(ds), tail=tail), HTTP_ACCEPT=accept)
        assert time.monotonic() - started < 5, tail
        assert response.status_code == status, (tail, response.content[:300])
        if status == 422:
            assert ds.SOPInstanceUID in response.json()["error"]["message"]
    # the stored frame still goes out as stored, byte for byte (a viewer decodes it itself, or not)
    [(_, content)] = parse_multipart(admin_client.get(url(*uids(ds), tail="/frames/1"), HTTP_ACCEPT=OHIF_FRAMES))
    assert content.rstrip(b"\0") == HOSTILE_J2K.rstrip(b"\0")
    assert "length 0" in Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).undecodable_reason
    # study- and series-level thumbnails and renderings that pick it are 422, not a hang
    study_uid, series_uid, _ = uids(ds)
    assert admin_client.get(url(study_uid, tail="/thumbnail")).status_code == 422
    assert admin_client.get(url(study_uid, series_uid, tail="/rendered")).status_code == 422
    # and the study page says so
    study = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).study
    page = admin_client.get(reverse("study_detail", args=[study.public_id]))
    assert page.status_code == 200
    assert "some images cannot be displayed" in page.content.decode()


def test_bulkdata_follows_the_transfer_syntax_rules(cast, admin_client, study_spec):
    ds = lossy_jpeg(study_spec)
    store(cast.center, ds)
    path = url(*uids(ds), tail="/bulkdata/7FE00010")
    stored = admin_client.get(path, HTTP_ACCEPT="application/octet-stream; transfer-syntax=*")
    assert stored.status_code == 200
    assert b"".join(stored.streaming_content).startswith(b"\xfe\xff\x00\xe0")  # the encapsulated value
    decoded = admin_client.get(path, HTTP_ACCEPT="application/octet-stream")
    assert decoded.status_code == 200
    assert decoded["Content-Type"] == f"application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"
    assert len(b"".join(decoded.streaming_content)) == 2 * SIZE * SIZE  # two 8-bit frames, uncompressed
    refused = admin_client.get(path, HTTP_ACCEPT=f"application/octet-stream; transfer-syntax={RLELossless}")
    assert refused.status_code == 406
    assert ds.SOPInstanceUID in refused.json()["error"]["message"]
