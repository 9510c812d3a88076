"""Issue 19/20: STOW-RS accepts what real senders send, and stores it as it came.

Boundaries of every shape real clients write; odd-but-readable files stored byte for byte with warnings;
deflated data sets stored; permanent faults answered as such (not "retry later"); the same data set through
another door (another file meta, another encoding) a success with nothing written.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib

import pydicom
import pytest
from django.core.files.storage import default_storage
from pydicom.uid import DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless

from studies import synthetic
from studies.dicom import ContentDigest, content_digest, file_meta_end
from studies.dicomweb import stow
from studies.ingest import Source, Status, ingest_stream
from studies.models import Instance
from tests.conftest import require_or_skip
from tests.studies.test_stow import FAILED, STORED, failure_reasons, items, multipart

WARNING_REASON = "00081196"


def _series(spec, n=2, size=64, **kwargs):
    return synthetic.ct_series(spec, slices=n, size=size, **kwargs)


def _stored(instance: Instance) -> bytes:
    with default_storage.open(instance.storage_key, "rb") as fh:
        return fh.read()


def _with_meta(data: bytes, implementation: str) -> bytes:
    """The same file with another file meta header (another door, another implementation)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.ImplementationVersionName = implementation[:16]
    ds.file_meta.ImplementationClassUID = "1.2.3.4." + str(len(implementation))
    ds.file_meta.SourceApplicationEntityTitle = "ORTHANC"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# --- boundaries -------------------------------------------------------------------------------------

@pytest.mark.parametrize("boundary", [
    "0d4a9dfe-8c1b-4e5c-9a3f-2b7c6d1e0f90-7f3e2a1b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",  # Orthanc 1.10: 73 characters
    "a1b2c3d4e5f60718293a4b5c6d7e8f90",  # dicomweb-client (uuid4().hex)
    "------------------------3f1b2a4c5d6e7f80",  # curl
    "----=_Part_0_1234567.1700000000000",  # Java mail-style (dcm4che)
    "x" * 200,
    "with space and (parens) +_,-./:=?",
])
def test_stow_accepts_the_boundaries_real_clients_write(cast, login, ct_files, boundary):
    quoted = f'"{boundary}"' if " " in boundary or any(c in boundary for c in "(),:=?/") else boundary
    ctype, body = multipart(ct_files[:2], boundary=boundary,
                            content_type=f'multipart/related; type="application/dicom"; boundary={quoted}')
    response = login(cast.technologist).post("/dicomweb/studies", data=body, content_type=ctype)
    assert response.status_code == 200, response.content[:300]
    assert len(items(response, STORED)) == 2


def test_an_absurd_boundary_is_still_refused_with_a_reason(cast, login, ct_files):
    _ctype, body = multipart(ct_files[:1])
    response = login(cast.technologist).post(
        "/dicomweb/studies", data=body,
        content_type='multipart/related; type="application/dicom"; boundary=' + "x" * (stow.MAX_BOUNDARY + 1))
    assert response.status_code == 400
    assert "boundary" in response.json()["error"]["message"]


# --- odd but readable files -------------------------------------------------------------------------

def _bad_is(data: bytes) -> bytes:
    """InstanceNumber (0020,0013) IS holding '1A' (same length as its '1 ' value)."""
    tag = struct.pack("<HH", 0x0020, 0x0013) + b"IS" + struct.pack("<H", 2)
    position = data.index(tag) + len(tag)
    return data[:position] + b"1A" + data[position + 2:]


def test_an_invalid_is_value_is_stored_byte_for_byte_with_a_warning(cast, login, study_spec):
    ds = _series(study_spec, 1)[0]
    ds.InstanceNumber = 1
    data = _bad_is(synthetic.to_bytes(ds))
    response = login(cast.technologist).post("/dicomweb/studies", data=multipart([data])[1],
                                             content_type=multipart([data])[0])
    assert response.status_code == 202, response.content[:400]
    [item] = items(response, STORED)
    assert item[WARNING_REASON]["Value"] == [0xB006]
    assert "InstanceNumber" in item["00091001"]["Value"][0]
    assert "'1A'" in item["00091001"]["Value"][0]
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert _stored(instance) == data
    assert instance.instance_number is None
    assert "00200013" not in instance.dicom_json  # left out of the index, everything else kept
    assert instance.rows == 64
    assert ds.PatientID in instance.study.patient_id


def test_warnings_are_in_the_per_file_result_of_every_door(cast, study_spec):
    ds = _series(study_spec, 1)[0]
    data = _bad_is(synthetic.to_bytes(ds))
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(data), filename="odd.dcm",
                            source=Source.UPLOAD)
    assert outcome.status == Status.STORED
    assert outcome.as_dict()["warnings"]
    assert "InstanceNumber" in outcome.as_dict()["warnings"][0]


def test_a_deflated_data_set_is_stored_as_it_came_and_served(cast, login, study_spec):
    ds = _series(study_spec, 1, size=128)[0]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    assert len(data) < 128 * 128  # compressed: the inflated data set is longer than the file
    client = login(cast.technologist)
    ctype, body = multipart([data])
    response = client.post("/dicomweb/studies", data=body, content_type=ctype)
    assert response.status_code == 200, response.content[:400]
    instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert _stored(instance) == data
    assert instance.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    # served as stored with transfer-syntax=*, inflated to explicit VR little endian by default
    admin = login(cast.center_admin)
    base = f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    as_stored = admin.get(base, HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert b"".join(as_stored.streaming_content) == data
    default = admin.get(base, HTTP_ACCEPT="application/dicom")
    inflated = pydicom.dcmread(io.BytesIO(b"".join(default.streaming_content)))
    assert inflated.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert inflated.PixelData == ds.PixelData


def test_number_of_frames_minus_one_is_a_permanent_refusal_with_the_reason(cast, login, study_spec):
    ds = _series(study_spec, 1)[0]
    ds.NumberOfFrames = -1
    ctype, body = multipart([synthetic.to_bytes(ds)])
    response = login(cast.technologist).post("/dicomweb/studies", data=body, content_type=ctype)
    assert response.status_code == 409
    [(code, reason)] = failure_reasons(response)
    assert code == stow.FAILURE_CANNOT_UNDERSTAND
    assert "NumberOfFrames" in reason
    assert "-1" in reason
    assert "retry" not in reason
    assert not Instance.objects.exists()


def test_a_corrupt_deflate_stream_is_a_permanent_refusal_with_the_reason(cast, login, study_spec):
    ds = _series(study_spec, 1)[0]
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    start, _ = file_meta_end(data)
    broken = data[:start + 20] + bytes(b ^ 0x5A for b in data[start + 20:start + 400]) + data[start + 400:]
    ctype, body = multipart([broken])
    response = login(cast.technologist).post("/dicomweb/studies", data=body, content_type=ctype)
    assert response.status_code == 409
    [(code, reason)] = failure_reasons(response)
    assert code == stow.FAILURE_CANNOT_UNDERSTAND
    assert "retry" not in reason
    assert not Instance.objects.exists()


# --- duplicates by content ------------------------------------------------------------------------------

def test_the_content_fingerprint_ignores_the_file_meta_and_sees_through_deflate(study_spec):
    ds = _series(study_spec, 1)[0]
    data = synthetic.to_bytes(ds)
    other = _with_meta(data, "ANOTHER_DOOR_1.0")
    assert other != data
    assert content_digest(io.BytesIO(data)) == content_digest(io.BytesIO(other))
    fed = ContentDigest()
    for i in range(0, len(data), 7):  # the meta split across many small chunks
        fed.update(data[i:i + 7])
    assert fed.hexdigest() == content_digest(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    start, syntax = file_meta_end(out.getvalue())
    assert syntax == DeflatedExplicitVRLittleEndian
    fast = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    reflated = out.getvalue()[:start] + fast.compress(zlib.decompress(out.getvalue()[start:], -zlib.MAX_WBITS)) \
        + fast.flush()
    assert reflated != out.getvalue()
    assert content_digest(io.BytesIO(reflated)) == content_digest(io.BytesIO(out.getvalue()))
    changed = pydicom.dcmread(io.BytesIO(data))
    changed.SeriesDescription = "CHANGED"
    assert content_digest(io.BytesIO(synthetic.to_bytes(changed))) != content_digest(io.BytesIO(data))


def test_the_same_data_set_with_another_file_meta_is_a_success_with_nothing_written(cast, login, study_spec):
    files = [synthetic.to_bytes(ds) for ds in _series(study_spec, 3)]
    client = login(cast.technologist)
    ctype, body = multipart(files)
    assert client.post("/dicomweb/studies", data=body, content_type=ctype).status_code == 200
    before = {i.sop_instance_uid: (i.sha256, _stored(i)) for i in Instance.objects.all()}
    again = [_with_meta(f, "OTHER_DOOR") for f in files]
    ctype, body = multipart(again)
    response = client.post("/dicomweb/studies", data=body, content_type=ctype)
    assert response.status_code == 200, response.content[:400]
    assert len(items(response, STORED)) == 3
    assert not items(response, FAILED)
    assert {i.sop_instance_uid: (i.sha256, _stored(i)) for i in Instance.objects.all()} == before
    assert Instance.objects.count() == 3


def test_the_same_data_set_in_another_encoding_is_a_duplicate(cast, study_spec):
    ds = _series(study_spec, 1)[0]
    explicit = synthetic.to_bytes(ds)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit = synthetic.to_bytes(ds)
    first = ingest_stream(organization=cast.center, stream=io.BytesIO(explicit), filename="a", source=Source.STOW)
    second = ingest_stream(organization=cast.center, stream=io.BytesIO(implicit), filename="b",
                           source=Source.CSTORE)
    assert first.status == Status.STORED
    assert second.status == Status.DUPLICATE, second.reason
    assert "another encoding" in second.reason
    assert _stored(Instance.objects.get()) == explicit


def test_another_data_set_under_the_same_uid_is_still_a_conflict(cast, study_spec):
    ds = _series(study_spec, 1)[0]
    original = synthetic.to_bytes(ds)
    ds.PixelData = bytes(len(ds.PixelData))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian  # and another encoding: compared in full
    changed = synthetic.to_bytes(ds)
    ingest_stream(organization=cast.center, stream=io.BytesIO(original), filename="a", source=Source.STOW)
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(changed), filename="b", source=Source.STOW)
    assert outcome.status == Status.CONFLICT
    assert _stored(Instance.objects.get()) == original


def test_instances_stored_before_fingerprints_get_theirs_from_the_migration(cast, study_spec):
    from importlib import import_module

    from django.apps import apps

    data = synthetic.to_bytes(_series(study_spec, 1)[0])
    ingest_stream(organization=cast.center, stream=io.BytesIO(data), filename="a", source=Source.STOW)
    expected = Instance.objects.get().content_sha256
    assert expected == content_digest(io.BytesIO(data))
    Instance.objects.update(content_sha256="")
    migration = import_module("studies.migrations.0003_content_fingerprint")
    migration.compute_fingerprints(apps, None)
    assert Instance.objects.get().content_sha256 == expected


def compressed_files(spec, folder) -> list[bytes]:
    """JPEG baseline, JPEG lossless, JPEG-LS and RLE files made by DCMTK's own converters, and a JPEG 2000
    one by pydicom's openjpeg (DCMTK has no JPEG 2000 encoder): one instance each."""
    from tests.studies.test_gateway import dcmtk_tool

    datasets = _series(spec, 5, size=128)
    files = []
    for ds, (tool, options) in zip(datasets, [("dcmcjpeg", ["+eb"]), ("dcmcjpeg", []), ("dcmcjpls", []),
                                              ("dcmcrle", [])], strict=False):
        path = dcmtk_tool(tool)
        require_or_skip(path is not None, f"DCMTK's {tool} (Debian package dcmtk)")
        source, target = folder / f"{ds.SOPInstanceUID}.in.dcm", folder / f"{ds.SOPInstanceUID}.dcm"
        source.write_bytes(synthetic.to_bytes(ds))
        subprocess.run([path, *options, str(source), str(target)], check=True, capture_output=True)
        files.append(target.read_bytes())
    j2k = datasets[4]
    j2k.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    files.append(synthetic.to_bytes(j2k))
    return files


def test_compressed_files_are_stored_as_they_came(cast, login, study_spec, tmp_path):
    files = compressed_files(study_spec, tmp_path)
    ctype, body = multipart(files)
    response = login(cast.technologist).post(f"/dicomweb/studies/{study_spec.study_uid}", data=body,
                                             content_type=ctype)
    assert response.status_code == 200, response.content[:500]
    syntaxes = {pydicom.dcmread(io.BytesIO(f)).file_meta.TransferSyntaxUID for f in files}
    assert len(syntaxes) == 5
    assert set(Instance.objects.values_list("transfer_syntax_uid", flat=True)) == syntaxes
    assert sorted(_stored(i) for i in Instance.objects.all()) == sorted(files)
