"""Zip archives and CD/DVD exports: every entry checked before any is read, zip-slip and zip bombs refused
as a whole (nothing stored), DICOMDIR and non-DICOM entries skipped with a reason, entries streamed into
the one ingest service under server-built keys."""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
from datetime import date
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from accounts.models import AuditEvent
from accounts.policy import actor_for_user
from core.errors import NotFound
from studies import synthetic
from studies.archive import (
    DICOMDIR_SOP_CLASS,
    SKIPPED,
    entry_problem,
    ingest_archive,
    is_dicomdir,
    media_storage_sop_class,
    upload_ingest,
)
from studies.ingest import Status
from studies.ingest_rows import storage_key
from studies.models import Instance, Study


def ct(n=3, **spec_kwargs):
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(0), accession="ACC1", description="CT CHEST",
                               study_date=date(2026, 3, 1), **spec_kwargs)
    return synthetic.ct_series(spec, slices=n, size=16)


def cd_export(tmp_path: Path, datasets) -> Path:
    """A real CD/DVD layout written by pydicom: DICOMDIR plus PT*/ST*/SE*/IM* files without extensions."""
    fileset = FileSet()
    for ds in datasets:
        fileset.add(ds)
    root = tmp_path / "cd"
    fileset.write(root)
    (root / "README.TXT").write_text("Viewer: run VIEWER.EXE\n")
    return root


def zip_folder(root: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            archive.write(path, prefix + str(path.relative_to(root)))
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def run(cast, data: bytes, name="upload.zip"):
    return ingest_archive(organization=cast.center, fileobj=io.BytesIO(data), filename=name, size=len(data))


# --- file kinds ---------------------------------------------------------------------------------------

def test_file_meta_reader_finds_the_media_storage_class_of_a_dicomdir_and_an_image(tmp_path):
    root = cd_export(tmp_path, ct(1))
    dicomdir = (root / "DICOMDIR").read_bytes()
    assert media_storage_sop_class(dicomdir[:4096]) == DICOMDIR_SOP_CLASS
    assert is_dicomdir(dicomdir[:4096])
    image = synthetic.to_bytes(ct(1)[0])
    assert media_storage_sop_class(image[:4096]) == synthetic.CT_IMAGE
    assert not is_dicomdir(image)
    for junk in (b"", b"PK\x03\x04" + b"\0" * 200, b"\0" * 128 + b"DICM" + b"\xff" * 10, b"\0" * 128 + b"DICM"):
        assert not is_dicomdir(junk)


@pytest.mark.parametrize(("name", "external_attr", "problem"), [
    ("../evil.dcm", 0, "'..'"),
    ("DICOM/../../etc/cron.d/x", 0, "'..'"),
    ("..\\windows\\evil.dcm", 0, "'..'"),
    ("/etc/passwd", 0, "absolute"),
    ("\\server\\share\\x", 0, "absolute"),
    ("C:/Windows/x.dcm", 0, "absolute"),
    ("link", (stat.S_IFLNK | 0o777) << 16, "symbolic link"),
    ("fifo", (stat.S_IFIFO | 0o644) << 16, "not a regular file"),
])
def test_unsafe_entry_names_and_types_are_recognised(name, external_attr, problem):
    info = zipfile.ZipInfo(name)
    info.external_attr = external_attr
    assert problem in (entry_problem(info) or "")


@pytest.mark.parametrize("name", ["DICOM/PT0/ST0/IM0", "IM000001", "a..b/c.dcm", "folder/", "DICOMDIR"])
def test_ordinary_entries_are_safe(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    assert entry_problem(info) is None


# --- a CD export as a zip ------------------------------------------------------------------------------

def test_zipped_cd_export_with_dicomdir_is_ingested_whole(cast, tmp_path):
    datasets = ct(4)
    data = zip_folder(cd_export(tmp_path, datasets), prefix="PATIENT_CD/")
    result, outcomes = run(cast, data)
    assert result.status == Status.STORED
    assert result.counts == {Status.STORED: 4, SKIPPED: 2}
    by_name = {entry.file.rsplit("/", 1)[-1]: entry for entry in result.entries}
    assert by_name["DICOMDIR"].status == SKIPPED
    assert "index of a CD/DVD export" in by_name["DICOMDIR"].reason
    assert by_name["README.TXT"].status == SKIPPED
    assert "not a DICOM file" in by_name["README.TXT"].reason
    assert result.study_instance_uid == datasets[0].StudyInstanceUID
    study = Study.objects.get(organization=cast.center)
    assert study.number_of_instances == 4
    for instance in Instance.objects.filter(study=study):
        # Keys come from the UIDs, never from the archive's names (PT000000/ST000000/...).
        assert instance.storage_key == storage_key(cast.center, study.study_instance_uid,
                                                   instance.series.series_instance_uid, instance.sop_instance_uid)
        assert default_storage.exists(instance.storage_key)
    assert len(outcomes) == 4


def test_the_same_archive_again_is_already_present_and_writes_nothing(cast, tmp_path):
    data = zip_folder(cd_export(tmp_path, ct(3)))
    run(cast, data)
    result, _ = run(cast, data)
    assert result.status == Status.DUPLICATE
    assert result.counts == {Status.DUPLICATE: 3, SKIPPED: 2}
    assert Instance.objects.count() == 3


def test_an_archive_with_some_bad_files_stores_the_good_ones_and_names_the_bad(cast):
    good = [synthetic.to_bytes(ds) for ds in ct(2)]
    data = zip_of({"a.dcm": good[0], "b.dcm": good[1], "broken.dcm": good[0][:600], "empty.dcm": b""})
    result, _ = run(cast, data)
    assert result.status == Status.STORED
    assert result.code == "partial"
    statuses = {e.file: (e.status, e.reason) for e in result.entries}
    assert statuses["a.dcm"][0] == statuses["b.dcm"][0] == Status.STORED
    assert statuses["broken.dcm"][0] == Status.REJECTED
    assert statuses["empty.dcm"] == (SKIPPED, "not a DICOM file (no 'DICM' after the 128-byte preamble)")
    assert Instance.objects.count() == 2


def test_a_truncated_entry_is_rejected_with_the_reason(cast):
    whole = synthetic.to_bytes(ct(1)[0])
    result, _ = run(cast, zip_of({"cut.dcm": whole[: len(whole) // 2]}))
    assert result.status == Status.REJECTED
    assert result.entries[0].status == Status.REJECTED
    assert "truncated" in result.entries[0].reason
    assert not Instance.objects.exists()


# --- refused before anything is read ---------------------------------------------------------------------

@pytest.mark.parametrize(("unsafe", "why"), [
    ({"../../evil.dcm": None}, "'..'"),
    ({"/etc/cron.d/evil": None}, "absolute"),
])
def test_zip_slip_refuses_the_whole_archive_and_stores_nothing(cast, unsafe, why):
    good = [synthetic.to_bytes(ds) for ds in ct(2)]
    entries = {"ok1.dcm": good[0], "ok2.dcm": good[1]}
    entries.update({name: good[0] for name in unsafe})
    result, outcomes = run(cast, zip_of(entries))
    assert result.status == Status.REJECTED
    assert result.code == "zip_unsafe"
    assert why in result.reason
    assert "nothing was stored" in result.reason
    assert [e.file for e in result.entries] == list(unsafe)
    assert outcomes == []
    assert not Instance.objects.exists()
    assert not Study.objects.exists()


def test_a_symbolic_link_refuses_the_whole_archive(cast):
    good = synthetic.to_bytes(ct(1)[0])
    result, _ = run(cast, zip_of({"ok.dcm": good}, symlinks={"DICOM/IM1": "/etc/passwd"}))
    assert result.status == Status.REJECTED
    assert "symbolic link" in result.reason
    assert not Instance.objects.exists()


def test_too_many_entries_is_refused_before_extracting(cast, settings):
    settings.DICOM_ZIP_MAX_ENTRIES = 3
    good = [synthetic.to_bytes(ds) for ds in ct(4)]
    result, _ = run(cast, zip_of({f"{i}.dcm": data for i, data in enumerate(good)}))
    assert result.status == Status.REJECTED
    assert result.code == "zip_too_many_entries"
    assert "4 entries, more than the limit of 3" in result.reason
    assert not Instance.objects.exists()


def test_a_zip_bomb_is_refused_from_its_declared_sizes_before_extracting(cast, settings, monkeypatch):
    settings.DICOM_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
    bomb = zip_of({f"layer{i}.bin": b"\0" * (2 * 1024 * 1024) for i in range(4)})  # 8 MB of zeros in ~32 KB
    assert len(bomb) < 100_000
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: opened.append(a) or pytest.fail("entry read"))
    result, _ = run(cast, bomb)
    assert result.status == Status.REJECTED
    assert result.code == "zip_too_large"
    assert "would expand to 8.0 MB" in result.reason
    assert opened == []


def test_an_entry_whose_declared_size_lies_is_cut_at_that_size_and_rejected(cast):
    """zipfile stops at the size the central directory declares; the CRC then fails: nothing stored."""
    good = synthetic.to_bytes(ct(1)[0])
    data = bytearray(zip_of({"liar.dcm": good}))
    # Patch the uncompressed size in the central directory entry (offset 24 of the "PK\1\2" record).
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 400)
    result, _ = run(cast, bytes(data))
    assert result.status == Status.REJECTED
    assert not Instance.objects.exists()


def test_not_a_zip_and_an_empty_zip_are_refused_clearly(cast):
    result, _ = run(cast, b"PK\x03\x04 this is not really a zip")
    assert (result.status, result.code) == (Status.REJECTED, "zip_invalid")
    assert "not a readable zip archive" in result.reason
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    result, _ = run(cast, empty.getvalue())
    assert (result.status, result.code) == (Status.REJECTED, "zip_empty")


def test_encrypted_entries_are_rejected_with_the_reason(cast):
    data = bytearray(zip_of({"secret.dcm": synthetic.to_bytes(ct(1)[0])}))
    for marker, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set bit 0 (encrypted) in both headers
        at = data.index(marker)
        struct.pack_into("<H", data, at + flag_offset, struct.unpack_from("<H", data, at + flag_offset)[0] | 1)
    result, _ = run(cast, bytes(data))
    assert result.entries[0].code == "encrypted"
    assert not Instance.objects.exists()


# --- one uploaded file ----------------------------------------------------------------------------------

def test_upload_ingest_sorts_files_by_content_not_by_name(cast, tmp_path):
    sender = actor_for_user(cast.technologist)
    root = cd_export(tmp_path, ct(2))
    dicomdir = (root / "DICOMDIR").read_bytes()
    image = next(p for p in root.rglob("IM*")).read_bytes()
    zipped = zip_of({"x.dcm": synthetic.to_bytes(ct(1, study_uid=generate_uid())[0])})

    def send(data, name, **kwargs):
        return upload_ingest(actor=sender, organization=cast.center, fileobj=io.BytesIO(data), filename=name,
                             size=len(data), **kwargs)

    assert send(dicomdir, "image.dcm").status == SKIPPED  # a DICOMDIR, whatever its name
    assert send(image, "DICOMDIR.zip").status == Status.STORED  # an image, whatever its name
    archive = send(zipped, "IM000001")
    assert archive.status == Status.STORED
    assert archive.entries is not None
    assert send(b"hello", "notes.txt").status == Status.REJECTED
    assert send(b"hello", "CD/notes.txt", skip_non_dicom=True).status == SKIPPED
    audited = AuditEvent.objects.filter(action="study.ingested", actor=cast.technologist)
    assert audited.count() == 3  # the image, the zipped study, the rejected file ("-": no study)


@pytest.mark.parametrize("principal", ["center_viewer", "center_finance", "radiologist"])
def test_upload_ingest_refuses_anyone_but_the_centers_senders(cast, principal):
    data = synthetic.to_bytes(ct(1)[0])
    with pytest.raises(NotFound):
        upload_ingest(actor=actor_for_user(cast.users[principal]), organization=cast.center,
                      fileobj=io.BytesIO(data), filename="x.dcm", size=len(data))
    assert not Instance.objects.exists()


def test_no_temporary_files_are_left_behind(cast, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    good = [synthetic.to_bytes(ds) for ds in ct(2)]
    run(cast, zip_of({"a.dcm": good[0], "b.dcm": good[1], "bad.dcm": good[0][:300]}))
    assert os.listdir(tmp_path / "tmp") == []


# --- expansion limits (issue 20 item 5) ------------------------------------------------------------------

def with_duplicate_central_record(data: bytes, new_name: bytes) -> bytes:
    """The archive with a second central-directory entry pointing at the first entry's local header (and data):
    the overlapping-entries trick of zip bombs."""
    central = data.index(b"PK\x01\x02")
    eocd = data.rindex(b"PK\x05\x06")
    record = bytearray(data[central:eocd])
    name_length = struct.unpack_from("<H", record, 28)[0]
    assert len(record) == 46 + name_length  # one entry, no extra field or comment
    copy = bytes(record[:28]) + struct.pack("<H", len(new_name)) + bytes(record[30:46]) + new_name
    end = bytearray(data[eocd:])
    entries = struct.unpack_from("<H", end, 10)[0] + 1
    struct.pack_into("<HHI", end, 8, entries, entries, len(record) + len(copy))
    return data[:eocd] + copy + bytes(end)


def test_an_archive_over_the_expanded_size_limit_is_refused_before_extracting(cast, settings):
    settings.DICOM_ZIP_MAX_EXPANDED_BYTES = 1_000
    result, _ = run(cast, zip_of({f"{i}.dcm": synthetic.to_bytes(ds) for i, ds in enumerate(ct(3))}), name="big.zip")
    assert result.status == Status.REJECTED
    assert result.code == "zip_too_large"
    assert "would expand to" in result.reason
    assert not Instance.objects.exists()


def test_an_archive_that_expands_too_many_times_is_refused_by_its_ratio(cast, settings):
    """Each entry stays under the ratio floor; the archive as a whole expands 2 MB from a few KB."""
    settings.DICOM_ZIP_RATIO_FLOOR_BYTES = 1024 * 1024
    settings.DICOM_ZIP_MAX_RATIO = 50
    data = zip_of({f"part{i}.bin": b"\0" * (512 * 1024) for i in range(4)})
    result, _ = run(cast, data, name="parts.zip")
    assert (result.status, result.code) == (Status.REJECTED, "zip_ratio")
    assert "the archive 'parts.zip' is refused" in result.reason
    assert "more than the limit of 50 times" in result.reason


def test_one_entry_that_expands_too_many_times_refuses_the_whole_archive_and_names_it(cast, settings):
    settings.DICOM_ZIP_RATIO_FLOOR_BYTES = 1024 * 1024
    settings.DICOM_ZIP_MAX_RATIO = 50
    good = synthetic.to_bytes(ct(1)[0])
    data = zip_of({"image.dcm": good, "noise.bin": os.urandom(2 * 1024 * 1024),
                   "bomb.bin": b"\0" * (3 * 1024 * 1024)})
    result, _ = run(cast, data, name="mixed.zip")
    assert (result.status, result.code) == (Status.REJECTED, "zip_ratio")
    assert "the entry 'bomb.bin' of 'mixed.zip' is refused" in result.reason
    assert not Instance.objects.exists()  # the good image was not stored either


def test_ordinary_images_pass_the_ratio_limit_with_the_defaults(cast):
    data = zip_of({f"{i}.dcm": synthetic.to_bytes(ds) for i, ds in enumerate(ct(3))})
    result, _ = run(cast, data)
    assert result.status == Status.STORED, result.reason
    assert Instance.objects.count() == 3


def test_overlapping_entries_are_refused_before_any_is_decompressed(cast, monkeypatch):
    data = with_duplicate_central_record(zip_of({"a.dcm": synthetic.to_bytes(ct(1)[0])}), b"b.dcm")
    assert [i.filename for i in zipfile.ZipFile(io.BytesIO(data)).infolist()] == ["a.dcm", "b.dcm"]
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("an entry was read"))
    result, _ = run(cast, data, name="overlap.zip")
    assert (result.status, result.code) == (Status.REJECTED, "zip_overlapping")
    assert "of 'overlap.zip' overlaps another entry's data" in result.reason
    assert not Instance.objects.exists()


def test_the_real_output_is_counted_while_streaming_against_the_archive_budget(settings):
    from studies.archive import ExpansionLimit, _Budget, _LimitedEntry

    settings.DICOM_ZIP_MAX_RATIO = 10**9  # the budget alone decides here
    archive = zipfile.ZipFile(io.BytesIO(zip_of({"zeros.bin": b"\0" * (2 * 1024 * 1024)})))
    info = archive.infolist()[0]
    budget = _Budget(left=1024 * 1024)
    def read_all(stream):
        while stream.read(64 * 1024):
            pass

    with archive.open(info) as fh, pytest.raises(ExpansionLimit, match="past the limit .* at the entry 'zeros.bin'"):
        read_all(_LimitedEntry(fh, info, budget))
    assert budget.left < 0

