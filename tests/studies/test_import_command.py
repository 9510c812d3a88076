"""``manage.py import_dicom_folder``: a folder (a CD export with its DICOMDIR, zips) through the one ingest service."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from pydicom.fileset import FileSet
from pydicom.uid import ImplicitVRLittleEndian

from accounts.models import AuditEvent
from studies import synthetic
from studies.models import Instance, Study
from tests.factories import OrganizationFactory


@pytest.fixture
def center(db):
    return OrganizationFactory(name="Lakeside Imaging", slug="lakeside", region="TX")


def run_import(*args: str, **options) -> str:
    out = io.StringIO()
    call_command("import_dicom_folder", *args, "--no-progress", stdout=out, **options)
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def series_bytes(spec, *, slices=3, **kwargs) -> list[bytes]:
    return [synthetic.to_bytes(ds) for ds in synthetic.ct_series(spec, slices=slices, size=64, **kwargs)]


def test_a_folder_tree_is_imported_byte_for_byte_and_audited_per_study(center, study_spec, tmp_path):
    files = [write(tmp_path / "in" / "a" / f"{i}.dcm", data) for i, data in enumerate(series_bytes(study_spec))]
    files += [write(tmp_path / "in" / "b" / "c" / "IMG0001", series_bytes(study_spec, slices=1,
                                                                           transfer_syntax=ImplicitVRLittleEndian)[0])]
    write(tmp_path / "in" / "README.TXT", b"Burned with DiscMaker 3000")
    output = run_import(str(tmp_path / "in"), "--organization", "lakeside")
    assert "4 stored, 0 already present, 0 conflicts, 0 rejected, 1 skipped" in output
    study = Study.objects.get()
    assert study.organization == center
    assert (study.number_of_series, study.number_of_instances) == (2, 4)
    assert study.jurisdiction == "US-TX"
    for path in files:
        instance = Instance.objects.get(sop_instance_uid=pydicom.dcmread(path).SOPInstanceUID)
        assert instance.received_via == "import"
        with default_storage.open(instance.storage_key) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    [audit] = AuditEvent.objects.filter(action="study.ingested")
    assert audit.object_id == study_spec.study_uid
    assert audit.extra == {"source": "import", "stored": 4}


def test_a_cd_export_with_a_dicomdir_imports_the_images_and_skips_the_index(center, study_spec, tmp_path):
    fileset = FileSet()
    for ds in synthetic.ct_series(study_spec, slices=3, size=64):
        fileset.add(pydicom.dcmread(io.BytesIO(synthetic.to_bytes(ds))))
    fileset.write(tmp_path / "cd")
    assert (tmp_path / "cd" / "DICOMDIR").exists()
    output = run_import(str(tmp_path / "cd"), "--organization", "lakeside")
    assert "3 stored" in output
    assert "1 skipped" in output
    assert Instance.objects.count() == 3


def test_importing_again_reports_already_present_and_writes_nothing(center, study_spec, tmp_path):
    for i, data in enumerate(series_bytes(study_spec)):
        write(tmp_path / "in" / f"{i}.dcm", data)
    run_import(str(tmp_path / "in"), "--organization", "lakeside")
    before = list(Instance.objects.order_by("pk").values_list("pk", "sha256"))
    output = run_import(str(tmp_path / "in"), "--organization", "lakeside")
    assert "0 stored, 3 already present" in output
    assert list(Instance.objects.order_by("pk").values_list("pk", "sha256")) == before


def test_rejections_and_conflicts_are_listed_with_reasons_and_fail_only_with_strict(center, study_spec, tmp_path):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    write(tmp_path / "first" / "ok.dcm", synthetic.to_bytes(ds))
    run_import(str(tmp_path / "first"), "--organization", "lakeside")
    ds.SeriesDescription = "EDITED"
    write(tmp_path / "in" / "edited.dcm", synthetic.to_bytes(ds))
    write(tmp_path / "in" / "truncated.dcm", synthetic.to_bytes(synthetic.ct_series(study_spec, slices=1)[0])[:5000])

    output = run_import(str(tmp_path / "in"), "--organization", "lakeside")
    assert "0 stored, 0 already present, 1 conflicts, 1 rejected" in output
    assert "conflicts: edited.dcm: an instance with this SOPInstanceUID is already stored with different content" \
        in output
    assert "rejected: truncated.dcm: the file is truncated" in output

    with pytest.raises(CommandError, match=r"1 rejected and 1 conflicting file\(s\) \(--strict\)"):
        run_import(str(tmp_path / "in"), "--organization", "lakeside", "--strict")


def test_zip_archives_in_the_folder_are_imported_entry_by_entry(center, study_spec, tmp_path):
    (tmp_path / "in").mkdir()
    with zipfile.ZipFile(tmp_path / "in" / "export.zip", "w") as archive:
        for i, data in enumerate(series_bytes(study_spec, slices=2)):
            archive.writestr(f"DICOM/IM{i}", data)
        archive.writestr("autorun.inf", b"[autorun]")
    with zipfile.ZipFile(tmp_path / "in" / "evil.zip", "w") as archive:
        archive.writestr("../../etc/passwd.dcm", series_bytes(study_spec, slices=1)[0])
    output = run_import(str(tmp_path / "in"), "--organization", "lakeside")
    assert "2 stored, 0 already present, 0 conflicts, 1 rejected, 1 skipped" in output
    assert "rejected: evil.zip: the archive contains 1 unsafe entry" in output
    assert Instance.objects.count() == 2


def test_the_jurisdiction_option_sets_where_new_studies_were_imaged(center, study_spec, tmp_path):
    write(tmp_path / "in" / "one.dcm", series_bytes(study_spec, slices=1)[0])
    run_import(str(tmp_path / "in"), "--organization", "lakeside", "--jurisdiction", "us-nm")
    assert Study.objects.get().jurisdiction == "US-NM"


@pytest.mark.parametrize(("args", "message"), [
    (["--organization", "nowhere"], 'No organization has the slug "nowhere"'),
    (["--organization", "lakeside", "--jurisdiction", "Texas"], "--jurisdiction must look like US-TX"),
    (["--organization", "lakeside", "--jurisdiction", "US"], "licenses in US are issued per state"),
])
def test_bad_options_are_refused_before_anything_is_read(center, tmp_path, args, message):
    (tmp_path / "in").mkdir()
    with pytest.raises(CommandError, match=message):
        run_import(str(tmp_path / "in"), *args)


def test_a_missing_folder_is_refused(center, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_import(str(tmp_path / "nope"), "--organization", "lakeside")
