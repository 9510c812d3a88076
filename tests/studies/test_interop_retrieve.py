"""Issue 19: WADO-RS retrieve in the transfer syntax asked for (PS3.18 8.7.3.5).

No transfer-syntax: Explicit VR Little Endian (decompressed where stored compressed); ``*``: as stored,
byte for byte; a named syntax: transcoded by an installed codec, or 406 when none can produce it.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from studies import synthetic
from studies.dicomweb.transcode import transcode_file
from studies.ingest import Source, ingest_stream
from tests.studies.test_interop_stow import compressed_files
from tests.studies.test_wado import parse_multipart, url

MULTI = 'multipart/related; type="application/dicom"'
JPEG_LS = "1.2.840.10008.1.2.4.80"


@pytest.fixture
def compressed_study(cast, study_spec, tmp_path):
    files = compressed_files(study_spec, tmp_path)
    for number, data in enumerate(files):
        ingest_stream(organization=cast.center, stream=io.BytesIO(data), filename=str(number), source=Source.STOW)
    return files


def _parts(response):
    assert response.status_code == 200, b"".join(response.streaming_content)[:300] \
        if hasattr(response, "streaming_content") else response.content[:300]
    return [(headers["content-type"], pydicom.dcmread(io.BytesIO(content)), content)
            for headers, content in parse_multipart(response)]


def test_without_a_transfer_syntax_every_instance_comes_in_explicit_vr_little_endian(
        cast, login, study_spec, compressed_study):
    # by InstanceNumber: DCMTK gives its lossy JPEG copy a new SOP Instance UID
    originals = {pydicom.dcmread(io.BytesIO(f)).InstanceNumber: pydicom.dcmread(io.BytesIO(f))
                 for f in compressed_study}
    response = login(cast.center_admin).get(url(study_spec.study_uid), HTTP_ACCEPT=MULTI)
    parts = _parts(response)
    assert len(parts) == 5
    for content_type, ds, _ in parts:
        assert content_type == f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}"
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        original = originals[ds.InstanceNumber]
        np.testing.assert_array_equal(ds.pixel_array, original.pixel_array)
        assert ds.PatientName == original.PatientName


def test_transfer_syntax_star_keeps_every_file_byte_for_byte(cast, login, study_spec, compressed_study):
    response = login(cast.center_admin).get(url(study_spec.study_uid), HTTP_ACCEPT=f"{MULTI}; transfer-syntax=*")
    assert sorted(content for _, _, content in _parts(response)) == sorted(compressed_study)


@pytest.mark.parametrize("target", [ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless])
def test_a_named_syntax_is_produced_by_transcoding(cast, login, study_spec, compressed_study, target):
    lossless = [f for f in compressed_study
                if pydicom.dcmread(io.BytesIO(f)).file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.4.50"]
    ds = pydicom.dcmread(io.BytesIO(lossless[0]))
    response = login(cast.center_admin).get(url(study_spec.study_uid, ds.SeriesInstanceUID, ds.SOPInstanceUID),
                                            HTTP_ACCEPT=f"{MULTI}; transfer-syntax={target}")
    [(content_type, received, _)] = _parts(response)
    assert content_type == f"application/dicom; transfer-syntax={target}"
    assert received.file_meta.TransferSyntaxUID == target
    np.testing.assert_array_equal(received.pixel_array, ds.pixel_array)


def test_a_syntax_no_installed_codec_can_produce_is_406_before_anything_is_sent(cast, login, study_spec,
                                                                              compressed_study):
    from accounts.models import AuditEvent

    response = login(cast.center_admin).get(url(study_spec.study_uid),
                                            HTTP_ACCEPT=f"{MULTI}; transfer-syntax=1.2.840.10008.1.2.4.50")
    assert response.status_code == 406
    assert "JPEG Baseline" in response.json()["error"]["message"]
    assert not AuditEvent.objects.filter(action="study.accessed").exists()


def test_a_damaged_image_is_a_422_naming_it_not_a_broken_stream(cast, login, study_spec):
    from pydicom.encaps import encapsulate

    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    # An RLE header announcing 5 segments whose offsets point nowhere: readable, not decodable.
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.PixelData = encapsulate([b"\x05\x00\x00\x00" + bytes(60) + b"junk" * 4])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    damaged = out.getvalue()
    ingest_stream(organization=cast.center, stream=io.BytesIO(damaged), filename="bad", source=Source.STOW)
    response = login(cast.center_admin).get(url(study_spec.study_uid), HTTP_ACCEPT=MULTI)
    assert response.status_code == 422, getattr(response, "content", b"")[:300]
    assert ds.SOPInstanceUID in response.json()["error"]["message"]


def test_transcoding_a_512_jpeg_ls_ct_costs_tens_of_milliseconds(study_spec, tmp_path):
    """The figure the issue asks for (printed with -s): decompressing one 512x512 JPEG-LS CT slice."""
    import subprocess

    from tests.conftest import require_or_skip
    from tests.studies.test_gateway import dcmtk_tool

    tool = dcmtk_tool("dcmcjpls")
    require_or_skip(tool is not None, "DCMTK's dcmcjpls")  # CI fails without it rather than skipping
    source, target = tmp_path / "ct.dcm", tmp_path / "ct.jls.dcm"
    source.write_bytes(synthetic.to_bytes(synthetic.ct_series(study_spec, slices=1, size=512)[0]))
    subprocess.run([tool, str(source), str(target)], check=True, capture_output=True)
    data = target.read_bytes()
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == JPEG_LS
    transcode_file(data, ExplicitVRLittleEndian)  # warm the codec
    runs = []
    for _ in range(10):
        started = time.perf_counter()
        out = transcode_file(data, ExplicitVRLittleEndian)
        runs.append(time.perf_counter() - started)
    print(f"\ntranscoding a 512x512 JPEG-LS CT to explicit VR LE: median {sorted(runs)[5] * 1000:.1f} ms, "
          f"{len(data)} -> {len(out)} bytes")
    assert sorted(runs)[5] < 1.0
