"""The one ingest service: validation, dedupe by SOPInstanceUID, tenancy, byte-for-byte storage."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from datetime import date

import pydicom
import pytest
from django.core.files.storage import default_storage
from pydicom.uid import ImplicitVRLittleEndian

from studies import synthetic
from studies.dicom import file_meta_end
from studies.ingest import PREAMBLE_ADDED, IngestBatch, Source, Status, ingest_files, ingest_stream
from studies.ingest_rows import storage_key
from studies.models import Instance, Series, Study


def _ingest(org, data: bytes, name="file.dcm", **kwargs):
    return ingest_stream(organization=org, stream=io.BytesIO(data), filename=name, source=Source.UPLOAD, **kwargs)


def test_instances_are_indexed_and_stored_byte_for_byte_under_the_server_key(cast, ct_files, study_spec):
    outcomes = [_ingest(cast.center, data) for data in ct_files]
    assert [o.status for o in outcomes] == [Status.STORED] * 5
    study = Study.objects.get(organization=cast.center)
    assert study.study_instance_uid == study_spec.study_uid
    assert study.patient_name == "Rivera^Ana"
    assert study.accession_number == "ACC000123"
    assert study.modalities == ["CT"]
    assert study.number_of_instances == 5
    assert study.number_of_series == 1
    assert study.total_size == sum(len(d) for d in ct_files)
    assert study.jurisdiction == "US-TX"
    instance = Instance.objects.get(sop_instance_uid=outcomes[0].sop_instance_uid)
    assert instance.storage_key == storage_key(cast.center, study.study_instance_uid,
                                               instance.series.series_instance_uid, instance.sop_instance_uid)
    with default_storage.open(instance.storage_key) as fh:
        stored = fh.read()
    assert stored == ct_files[0]
    assert instance.sha256 == hashlib.sha256(ct_files[0]).hexdigest()
    assert instance.rows == 128
    assert instance.pixel_data_length == 128 * 128 * 2
    pixel_bytes = pydicom.dcmread(io.BytesIO(stored)).PixelData
    assert stored[instance.pixel_data_offset:instance.pixel_data_offset + instance.pixel_data_length] == pixel_bytes


def test_same_bytes_again_is_a_success_that_writes_nothing(cast, ct_files):
    _ingest(cast.center, ct_files[0])
    again = _ingest(cast.center, ct_files[0])
    assert again.status == Status.DUPLICATE
    assert again.ok
    assert Instance.objects.count() == 1
    assert Study.objects.get().number_of_instances == 1


def test_different_bytes_under_a_known_sop_uid_is_a_conflict_and_never_overwrites(cast, study_spec):
    ds = synthetic.ct_series(study_spec, slices=1, size=64)[0]
    original = synthetic.to_bytes(ds)
    _ingest(cast.center, original)
    ds.SeriesDescription = "CHANGED"
    changed = synthetic.to_bytes(ds)
    outcome = _ingest(cast.center, changed)
    assert outcome.status == Status.CONFLICT
    instance = Instance.objects.get()
    with default_storage.open(instance.storage_key) as fh:
        assert fh.read() == original


def test_the_same_study_uid_at_another_organization_stays_separate(cast, ct_files):
    _ingest(cast.center, ct_files[0])
    other = _ingest(cast.other_center, ct_files[0])
    assert other.status == Status.STORED
    assert Study.objects.count() == 2
    keys = set(Instance.objects.values_list("storage_key", flat=True))
    assert len(keys) == 2


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty"),
    (b"hello, this is not DICOM at all" * 10, "not_dicom"),
])
def test_non_dicom_input_is_rejected_with_a_reason(cast, data, code):
    outcome = _ingest(cast.center, data, name="notes.txt")
    assert outcome.status == Status.REJECTED
    assert outcome.code == code
    assert outcome.filename == "notes.txt"
    assert not Study.objects.exists()


def test_a_file_without_preamble_is_rejected(cast, ct_files):
    outcome = _ingest(cast.center, ct_files[0][128:])  # "DICM" and no preamble: no known writer does that
    assert outcome.status == Status.REJECTED
    assert "preamble" in outcome.reason


def test_a_file_meta_without_the_preamble_is_stored_with_it_added(cast, ct_files):
    """pydicom's dcmwrite of a data set built in memory: the file meta, then the data set (dicomweb-client)."""
    outcome = _ingest(cast.center, ct_files[0][132:])
    assert outcome.status == Status.STORED, outcome.reason
    assert outcome.warnings == [PREAMBLE_ADDED]
    with default_storage.open(outcome.instance.storage_key) as fh:
        assert fh.read() == ct_files[0]  # the Part 10 file, the data set as it came
    assert _ingest(cast.center, ct_files[0]).status == Status.DUPLICATE  # the same instance from a file


def test_a_bare_data_set_without_file_meta_is_rejected(cast, ct_files):
    start, _syntax = file_meta_end(ct_files[0])
    outcome = _ingest(cast.center, ct_files[0][start:])  # no file meta: its transfer syntax is unknown
    assert outcome.status == Status.REJECTED
    assert "preamble" in outcome.reason
    assert not Study.objects.exists()


def test_a_truncated_file_is_rejected_and_leaves_nothing(cast, ct_files, tmp_path):
    outcome = _ingest(cast.center, ct_files[0][: len(ct_files[0]) // 2])
    assert outcome.status == Status.REJECTED
    assert "truncated" in outcome.reason
    assert not Instance.objects.exists()
    assert not Series.objects.exists()


@pytest.mark.parametrize(("uid", "why"), [
    ("1.2." + "3" * 70, "longer than 64"),
    ("1.2.abc", "digits and dots"),
    ("1.2/../3", "digits and dots"),
    ("1.02.3", "digits and dots"),
])
def test_bad_uids_are_rejected_before_they_are_used(cast, study_spec, uid, why):
    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    ds.StudyInstanceUID = uid
    outcome = _ingest(cast.center, synthetic.to_bytes(ds))
    assert outcome.status == Status.REJECTED
    assert why in outcome.reason
    assert "StudyInstanceUID" in outcome.reason


def test_deeply_nested_sequences_are_rejected(cast, study_spec):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = synthetic.ct_series(study_spec, slices=1, size=32)[0]
    inner = Dataset()
    inner.CodeMeaning = "deep"
    for _ in range(60):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds.ContentSequence = inner.ContentSequence
    outcome = _ingest(cast.center, synthetic.to_bytes(ds))
    assert outcome.status == Status.REJECTED
    assert "nested" in outcome.reason


def test_a_study_path_that_differs_from_the_instance_is_refused(cast, ct_files):
    outcome = _ingest(cast.center, ct_files[0], expected_study_uid="1.2.3.4")
    assert outcome.status == Status.REJECTED
    assert outcome.code == "study_mismatch"


def test_oversized_files_are_refused(cast, ct_files):
    outcome = _ingest(cast.center, ct_files[0], max_size=1000)
    assert outcome.status == Status.REJECTED
    assert outcome.code == "too_large"


def test_implicit_little_endian_and_rle_are_stored_as_received(cast, study_spec):
    for syntax in (ImplicitVRLittleEndian, synthetic.RLELossless):
        data = synthetic.to_bytes(synthetic.ct_series(study_spec, slices=1, size=64, transfer_syntax=syntax)[0])
        outcome = _ingest(cast.center, data)
        assert outcome.status == Status.STORED, outcome.reason
        instance = outcome.instance
        assert instance.transfer_syntax_uid == syntax
        with default_storage.open(instance.storage_key) as fh:
            assert fh.read() == data


def test_ingest_files_writes_one_audit_row_per_study(cast, ct_files):
    from accounts.models import AuditEvent

    outcomes = ingest_files(organization=cast.center, files=[(f"{i}.dcm", io.BytesIO(d)) for i, d in
                                                             enumerate(ct_files)], source=Source.UPLOAD,
                            actor=cast.technologist)
    assert all(o.status == Status.STORED for o in outcomes)
    event = AuditEvent.objects.get(action="study.ingested")
    assert event.extra["stored"] == 5
    assert event.extra["source"] == "upload"


def test_metadata_json_keeps_bulk_data_out(cast, ct_files):
    import json

    outcome = _ingest(cast.center, ct_files[0])
    body = json.loads(outcome.instance.dicom_json)
    assert body["7FE00010"]["BulkDataURI"].endswith("/bulkdata/7FE00010")
    assert body["00100010"]["Value"][0]["Alphabetic"] == "Rivera^Ana"


# --- batches: many instances of one request, few commits -------------------------------------------

def _batch_ingest(org, blobs, *, batch, name="part"):
    return [ingest_stream(organization=org, stream=io.BytesIO(d), filename=f"{name} {i}", source=Source.STOW,
                          batch=batch) for i, d in enumerate(blobs)]


def _check_counters(study):
    study.refresh_from_db()
    instances = Instance.objects.filter(study=study)
    assert study.number_of_instances == instances.count()
    assert study.total_size == sum(instances.values_list("size", flat=True))
    assert study.number_of_series == Series.objects.filter(study=study).count()
    for series in Series.objects.filter(study=study):
        rows = Instance.objects.filter(series=series)
        assert series.number_of_instances == rows.count()
        assert series.total_size == sum(rows.values_list("size", flat=True))


def test_a_batch_stores_every_instance_and_detects_duplicates_and_conflicts_within_itself(cast, study_spec):
    datasets = synthetic.ct_series(study_spec, slices=5, size=64)
    blobs = [synthetic.to_bytes(ds) for ds in datasets]
    datasets[1].SeriesDescription = "CHANGED"
    conflicting = synthetic.to_bytes(datasets[1])
    mr = [synthetic.to_bytes(ds) for ds in synthetic.mr_study(study_spec, slices=2, size=32)]
    with IngestBatch(max_instances=3) as batch:  # several flushes, duplicates across and within them
        outcomes = _batch_ingest(cast.center, [*blobs, blobs[0], conflicting, blobs[4], *mr], batch=batch)
        assert outcomes[-1].status == Status.PENDING  # completed when the batch closes
    statuses = [o.status for o in outcomes]
    assert statuses[:8] == [Status.STORED] * 5 + [Status.DUPLICATE, Status.CONFLICT, Status.DUPLICATE]
    assert all(o.status == Status.STORED for o in outcomes[8:])
    study = Study.objects.get(organization=cast.center, study_instance_uid=study_spec.study_uid)
    _check_counters(study)
    assert study.number_of_instances == 5 + len(mr)
    for data, outcome in zip(blobs, outcomes, strict=False):
        with default_storage.open(outcome.instance.storage_key) as fh:
            assert fh.read() == data
    with default_storage.open(outcomes[1].instance.storage_key) as fh:
        assert fh.read() == blobs[1]  # the conflict never overwrote
    assert set(study.modalities) == {"CT", "MR"}


def test_a_failing_instance_in_a_batch_leaves_nothing_and_the_others_are_stored(cast, ct_files, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    storage_cls = FileSystemStorage  # the per-test storage (conftest); a disk-full error on one file
    original_save = storage_cls.save
    failing = f"/{pydicom.dcmread(io.BytesIO(ct_files[0])).SOPInstanceUID}.dcm"
    broken = {}

    def save(self, name, content, *args, **kwargs):
        if name.endswith(failing):
            broken["key"] = name
            raise OSError("disk full")
        return original_save(self, name, content, *args, **kwargs)

    original_link = os.link

    def link(source, target, *args, **kwargs):  # a local folder gets the spooled file by a hard link
        if str(target).endswith(failing):
            broken["key"] = os.path.relpath(target, default_storage.location)
            raise OSError(errno.ENOSPC, "disk full")
        return original_link(source, target, *args, **kwargs)

    monkeypatch.setattr(storage_cls, "save", save)
    monkeypatch.setattr(os, "link", link)
    with IngestBatch() as batch:
        outcomes = _batch_ingest(cast.center, ct_files, batch=batch)
    assert [o.status for o in outcomes] == [Status.REJECTED] + [Status.STORED] * 4
    assert outcomes[0].code == "processing_failure"
    assert not Instance.objects.filter(sop_instance_uid=outcomes[0].sop_instance_uid).exists()
    assert not default_storage.exists(broken["key"])
    study = Study.objects.get(organization=cast.center)
    _check_counters(study)
    assert study.number_of_instances == 4
    # The failed one is stored when sent again (the disk has room again).
    monkeypatch.undo()
    assert ingest_stream(organization=cast.center, stream=io.BytesIO(ct_files[0]), filename="again",
                         source=Source.STOW).status == Status.STORED
    _check_counters(study)


def test_a_batch_is_stored_with_a_few_queries_not_a_few_per_instance(cast, study_spec, django_assert_max_num_queries):
    blobs = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=30, size=32)]
    with django_assert_max_num_queries(20), IngestBatch() as batch:  # one flush: 30 instances
        outcomes = _batch_ingest(cast.center, blobs, batch=batch)
    assert [o.status for o in outcomes] == [Status.STORED] * 30
    study = Study.objects.get(organization=cast.center)
    _check_counters(study)
    assert study.number_of_instances == 30


def test_later_flushes_of_a_batch_reuse_the_study_and_series_rows(cast, study_spec, django_assert_max_num_queries):
    blobs = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=6, size=32)]
    with IngestBatch(max_instances=3) as batch:
        _batch_ingest(cast.center, blobs[:3], batch=batch)  # the first flush creates the study and series
        with django_assert_max_num_queries(6):  # known-instances query, INSERT, 2 counters (+ savepoint)
            _batch_ingest(cast.center, blobs[3:], batch=batch)
    _check_counters(Study.objects.get(organization=cast.center))


@pytest.mark.postgres
def test_a_group_commit_indexes_instances_from_many_threads(postgres_only, transactional_db, cast, study_spec):
    import threading

    from django.db import connections

    from studies.ingest import GroupCommit

    blobs = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=12, size=32)]
    group = GroupCommit(max_instances=5)
    outcomes = []

    def send(chunk: list[bytes]) -> None:
        try:
            for data in chunk:
                outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(data), filename="x",
                                        source=Source.CSTORE, batch=group)
                outcomes.append(outcome.status)  # final: add() returns once the instance is committed
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(blobs[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    group.close()
    assert outcomes == [Status.STORED] * 12
    study = Study.objects.get(organization=cast.center)
    assert study.number_of_instances == 12
    _check_counters(study)
    again = ingest_stream(organization=cast.center, stream=io.BytesIO(blobs[0]), filename="x", source=Source.CSTORE,
                          expected_sop_uid="1.2.3")
    assert (again.status, again.code) == (Status.REJECTED, "sop_mismatch")


def _small_studies(count: int, *, first: int = 0) -> list[bytes]:
    """One single-slice CT study each, for as many patients: what a day of CR/DX or an archive migration sends."""
    return [synthetic.to_bytes(synthetic.ct_series(synthetic.StudySpec(
        patient=synthetic.demo_patient(n), accession=f"ACC{n:06d}", description="CT HEAD",
        study_date=date(2026, 11, 2)), slices=1, size=16)[0]) for n in range(first, first + count)]


def test_a_batch_of_new_studies_creates_them_together_in_a_fixed_number_of_round_trips(cast, postgres_exchanges):
    """Each kind of row (study, series, instance) in one INSERT, the counters sent together: a batch of 30 new
    studies costs what a batch of 3 does, not ten statements per study."""
    exchanges = []
    for first, count in ((0, 3), (3, 30)):
        blobs = _small_studies(count, first=first)
        with postgres_exchanges() as seen, IngestBatch() as batch:
            outcomes = _batch_ingest(cast.center, blobs, batch=batch)
        assert [o.status for o in outcomes] == [Status.STORED] * count
        exchanges.append(seen.count)
    # the lookup, the INSERTs of studies, series and instances, the new modalities, the counters, and the
    # savepoint that stands for the transaction inside the test's own
    assert exchanges[0] == exchanges[1] <= 8, seen.trace
    studies = Study.objects.filter(organization=cast.center)
    assert studies.count() == 33
    for study in studies:
        _check_counters(study)
        assert study.number_of_instances == 1
        assert study.modalities_in_study == "\\CT\\"
        assert study.patient_id
        assert study.jurisdiction_country == cast.center.country


def _two_batches_at_once(organization, first: list[bytes], second: list[bytes], *, max_instances: int = 50
                         ) -> list:
    """Send two lists of instances from two threads at the same moment, each through its own IngestBatch (two
    requests); the outcomes of both, after checking neither raised."""
    import threading

    from django.db import connection

    results: dict[str, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def send(name, part):
        try:
            start.wait()
            with IngestBatch(max_instances=max_instances) as batch:
                results[name] = _batch_ingest(organization, part, batch=batch, name=name)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=("a", first)), threading.Thread(target=send, args=("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results["a"] + results["b"]


def test_concurrent_batches_creating_the_same_new_studies_store_each_once_on_postgresql(postgres_only,
                                                                                      transactional_db, cast):
    """Two requests bringing the same 12 new studies at once (as two modalities forwarding to us might): each
    study and series is created once, by whichever request gets there first, and counted exactly."""
    blobs = _small_studies(12)
    outcomes = _two_batches_at_once(cast.center, blobs, list(reversed(blobs)))
    statuses = sorted(o.status for o in outcomes)
    assert statuses == sorted([Status.STORED] * 12 + [Status.DUPLICATE] * 12)
    assert Study.objects.filter(organization=cast.center).count() == 12
    assert Series.objects.filter(study__organization=cast.center).count() == 12
    for study in Study.objects.filter(organization=cast.center):
        _check_counters(study)
        assert study.number_of_instances == 1


def test_a_batch_leaves_no_spooled_file_behind(cast, ct_files, tmp_path, monkeypatch):
    import tempfile

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    with IngestBatch(max_instances=3) as batch:
        _batch_ingest(cast.center, [*ct_files, b"not dicom"], batch=batch)
    assert list(spool.iterdir()) == []


def test_concurrent_batches_into_one_study_keep_exact_counters_on_postgresql(postgres_only, transactional_db, cast,
                                                                            study_spec):
    """Two requests storing into the same study at once (overlapping instances too): no lost update."""
    blobs = [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=24, size=32)]
    # a: slices 0-15, b: slices 8-23 (8-15 sent by both, in opposite orders)
    outcomes = _two_batches_at_once(cast.center, blobs[:16], list(reversed(blobs[8:])), max_instances=4)
    assert all(o.ok for o in outcomes), [(o.status, o.reason) for o in outcomes if not o.ok]
    assert sum(o.status == Status.STORED for o in outcomes) == 24
    assert sum(o.status == Status.DUPLICATE for o in outcomes) == 8
    study = Study.objects.get(organization=cast.center)
    _check_counters(study)
    assert study.number_of_instances == 24
    assert study.number_of_series == 1


def test_a_stored_instance_is_on_disk_before_its_row_is_committed(cast, ct_files, monkeypatch):
    """Durability: the file's bytes (fdatasync) and its name (fsync of its directory and of every directory
    created for it) reach the disk inside the indexing transaction, before the commit answers "stored"."""
    from django.db import connection

    from studies import durable_write

    synced: list[tuple[str, str, bool]] = []
    real_fdatasync, real_fsync, real_sync = os.fdatasync, os.fsync, durable_write.Written.sync
    inside = {"transaction": False}  # the state of the ingesting thread (the flushes may run in a pool)

    def record(kind, real):
        def call(fd):
            synced.append((kind, os.readlink(f"/proc/self/fd/{fd}"), inside["transaction"]))
            return real(fd)
        return call

    def sync(self):
        inside["transaction"] = connection.in_atomic_block
        try:
            return real_sync(self)
        finally:
            inside["transaction"] = False

    monkeypatch.setattr(os, "fdatasync", record("data", real_fdatasync))
    monkeypatch.setattr(os, "fsync", record("name", real_fsync))
    monkeypatch.setattr(durable_write.Written, "sync", sync)
    with IngestBatch() as batch:
        outcomes = _batch_ingest(cast.center, ct_files[:3], batch=batch)
    assert [o.status for o in outcomes] == [Status.STORED] * 3
    final = [default_storage.path(o.instance.storage_key) for o in outcomes]
    assert sorted(path for kind, path, _ in synced if kind == "data") == sorted(final)
    directories = {path for kind, path, _ in synced if kind == "name"}
    series_dir = os.path.dirname(final[0])
    # the series folder (the files' names) and, as they were all created now, the study's, the
    # organization's and the storage root (their names)
    assert {series_dir, os.path.dirname(series_dir), os.path.dirname(os.path.dirname(series_dir)),
            default_storage.location} <= directories
    assert all(in_transaction for _, _, in_transaction in synced)
    # a second instance in an existing folder syncs its file and that folder only
    synced.clear()
    assert _ingest(cast.center, ct_files[3]).status == Status.STORED
    assert {path for kind, path, _ in synced if kind == "name"} == {series_dir}


def test_one_instance_is_indexed_with_a_handful_of_queries(cast, ct_files, django_assert_max_num_queries):
    _ingest(cast.center, ct_files[0])  # the study and series exist from now on
    # one SELECT (held instances + the study and series), one INSERT, two counter UPDATEs, the transaction
    with django_assert_max_num_queries(6):
        assert _ingest(cast.center, ct_files[1]).status == Status.STORED


def test_an_instance_whose_files_cannot_be_linked_is_copied_and_synced(cast, ct_files, monkeypatch):
    """Another file system for the spool (no hard link possible): the bytes are copied through the storage."""
    real_link = os.link

    def no_link(*args, **kwargs):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    outcome = _ingest(cast.center, ct_files[0])
    monkeypatch.setattr(os, "link", real_link)
    assert outcome.status == Status.STORED
    with default_storage.open(outcome.instance.storage_key) as fh:
        assert fh.read() == ct_files[0]
