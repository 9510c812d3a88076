"""The one ingest service behind every door (browser upload, STOW-RS, C-STORE, folder import).

For each file: stream it to a temporary file while hashing, parse it once, validate it, then —
inside one transaction — deduplicate by SOPInstanceUID within the organization, index it and write
it to storage under the server-built key. Identical bytes again are a no-op success; different
bytes under a known SOPInstanceUID are a conflict and are never written. Any failure leaves nothing
behind: no row without its file, no file without its row.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.db.models import CharField, F, Value
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from studies.dicom import DicomRejected, ParsedInstance, int_or_none, parse_da, read_instance, text
from studies.models import Instance, Series, Study

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class Source:
    UPLOAD = "upload"
    STOW = "stow"
    CSTORE = "cstore"
    IMPORT = "import"


class Status:
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same bytes were already stored: success, nothing written
    CONFLICT = "conflict"  # the SOPInstanceUID is known with other bytes: refused
    REJECTED = "rejected"  # not acceptable DICOM (reason says why)
    PENDING = "pending"  # handed to an IngestBatch that has not flushed yet


@dataclass
class IngestOutcome:
    """The result for one file, reported per file by every door."""

    filename: str
    status: str
    reason: str = ""
    code: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    size: int = 0
    instance: Instance | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in (Status.STORED, Status.DUPLICATE)

    def as_dict(self) -> dict:
        return {"file": self.filename, "status": self.status, "reason": self.reason, "code": self.code,
                "sop_instance_uid": self.sop_instance_uid, "study_instance_uid": self.study_instance_uid,
                "size": self.size}


def storage_key(organization: Organization, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Built by the server from validated UIDs only: never from file names or DICOMDIR paths."""
    return f"{organization.public_id}/{study_uid}/{series_uid}/{sop_uid}.dcm"


def _spool(stream: BinaryIO, limit: int) -> tuple[str, int, str]:
    """Copy the stream to a temporary file, hashing as it goes; refuse past ``limit`` bytes."""
    digest = hashlib.sha256()
    size = 0
    fd, path = tempfile.mkstemp(prefix="readroom-ingest-", suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise DicomRejected(f"the file is larger than the limit of {limit // (1024 * 1024)} MB",
                                        code="too_large")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path, size, digest.hexdigest()


def _check_preamble(path: str, size: int) -> None:
    if size == 0:
        raise DicomRejected("the file is empty (0 bytes)", code="empty")
    with open(path, "rb") as fh:
        head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise DicomRejected("not a DICOM Part 10 file: no 128-byte preamble followed by 'DICM'",
                            code="not_dicom")


def ingest_stream(*, organization: Organization, stream: BinaryIO, filename: str, source: str,
                  expected_study_uid: str | None = None, jurisdiction: tuple[str, str] | None = None,
                  max_size: int | None = None, batch: IngestBatch | GroupCommit | None = None,
                  expected_sop_uid: str | None = None) -> IngestOutcome:
    """Ingest one file from a stream for ``organization``; never raises for bad input.

    With ``batch``, a readable instance is handed to the batch and its outcome (status ``pending``)
    is completed when the batch flushes (a ``GroupCommit`` completes it before returning); refusals
    are final at once. Without, the instance is indexed and stored before this returns.
    ``expected_sop_uid``: the SOP Instance UID the sender announced (C-STORE's Affected SOP Instance
    UID); a data set naming another one is refused (code ``sop_mismatch``).
    """
    limit = max_size or settings.DICOM_MAX_FILE_BYTES
    path = None
    parsed = None
    try:
        path, size, sha256 = _spool(stream, limit)
        _check_preamble(path, size)
        parsed = read_instance(path, size)
        if expected_study_uid and parsed.study_uid != expected_study_uid:
            raise DicomRejected(f"StudyInstanceUID {parsed.study_uid} differs from the study in the request path "
                                f"({expected_study_uid})", code="study_mismatch")
        if expected_sop_uid is not None and parsed.sop_uid != expected_sop_uid:
            raise DicomRejected(f"the data set's SOPInstanceUID {parsed.sop_uid} differs from the announced "
                                f"Affected SOP Instance UID {expected_sop_uid[:64]}", code="sop_mismatch")
        if batch is not None:
            outcome = batch.add(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                                filename=filename, source=source, jurisdiction=jurisdiction)
            path = None  # the batch owns the spooled file now
            return outcome
        return _index_and_store(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                                filename=filename, source=source, jurisdiction=jurisdiction)
    except DicomRejected as exc:
        # Name the instance when the file was readable, so that STOW can report which one failed.
        uids = {"sop_instance_uid": parsed.sop_uid, "sop_class_uid": parsed.sop_class_uid,
                "study_instance_uid": parsed.study_uid, "series_instance_uid": parsed.series_uid} if parsed else {}
        return IngestOutcome(filename=filename, status=Status.REJECTED, reason=exc.reason, code=exc.code, **uids)
    finally:
        if path and os.path.exists(path):
            os.unlink(path)


def _set_existing(outcome: IngestOutcome, existing: Instance, *, sha256: str) -> None:
    outcome.sop_instance_uid = existing.sop_instance_uid
    outcome.sop_class_uid = existing.sop_class_uid
    outcome.study_instance_uid = existing.study.study_instance_uid
    outcome.series_instance_uid = existing.series.series_instance_uid
    outcome.instance = existing
    if existing.sha256 == sha256:
        outcome.status, outcome.code, outcome.reason = Status.DUPLICATE, "", "already stored (identical bytes)"
    else:
        outcome.status, outcome.code = Status.CONFLICT, "conflict"
        outcome.reason = ("an instance with this SOPInstanceUID is already stored with different content; "
                          "it was not overwritten")


def _find_existing(organization: Organization, sop_uid: str) -> Instance | None:
    return (Instance.objects.select_related("study", "series")
            .filter(organization=organization, sop_instance_uid=sop_uid)[:1].first())


def _index_and_store(*, organization, parsed: ParsedInstance, path, size, sha256, filename, source,
                     jurisdiction) -> IngestOutcome:
    """Index and store one instance in its own transaction (raises on a server-side failure)."""
    item = _Pending(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256, source=source,
                    jurisdiction=jurisdiction, outcome=_pending_outcome(parsed, filename=filename, size=size))
    _store_items([item], raise_errors=True)
    return item.outcome


def _study_defaults(organization: Organization, ds, jurisdiction) -> dict:
    country, region = jurisdiction or (organization.country, organization.region)
    return {
        "patient_id": text(ds, "PatientID", 64),
        "patient_name": text(ds, "PatientName", 324),
        "patient_birth_date": parse_da(ds.get("PatientBirthDate")),
        "patient_sex": text(ds, "PatientSex", 16),
        "accession_number": text(ds, "AccessionNumber", 16),
        "study_description": text(ds, "StudyDescription", 200),
        "study_date": parse_da(ds.get("StudyDate")),
        "study_time": text(ds, "StudyTime", 16),
        "study_id": text(ds, "StudyID", 16),
        "referring_physician_name": text(ds, "ReferringPhysicianName", 324),
        "institution_name": text(ds, "InstitutionName", 200),
        "jurisdiction_country": country,
        "jurisdiction_region": region,
    }


@dataclass
class _Pending:
    """A parsed instance waiting for its batch to be indexed and stored."""

    organization: Organization
    parsed: ParsedInstance
    path: str
    size: int
    sha256: str
    source: str
    jurisdiction: tuple[str, str] | None
    outcome: IngestOutcome


def _pending_outcome(parsed: ParsedInstance, *, filename: str, size: int) -> IngestOutcome:
    return IngestOutcome(filename=filename, status=Status.PENDING, sop_instance_uid=parsed.sop_uid,
                         sop_class_uid=parsed.sop_class_uid, study_instance_uid=parsed.study_uid,
                         series_instance_uid=parsed.series_uid, size=size)


class IngestBatch:
    """Index and store the instances of one request (a STOW body, an uploaded zip) with few commits.

    ``add`` keeps the spooled, parsed instance; every ``max_instances`` instances or ``max_bytes``
    bytes, and when the batch closes, they are stored together in one transaction: each instance in
    its own savepoint (all-or-nothing: its row, its file and its counters, or none of them), the
    study and series counters added once per flush with ``F()`` increments, then one commit. No
    transaction is open while the request body is read. If the commit fails, the instances of that
    flush are reported as failures and their files removed. Use as a context manager; the outcomes
    returned by ``add`` are complete once it exits (or after ``flush``).
    """

    def __init__(self, *, max_instances: int = 50, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_instances = max_instances
        self.max_bytes = max_bytes
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._rows = RowCache()  # the study and series of a request are looked up once, not once per flush

    def __enter__(self) -> IngestBatch:
        return self

    def __exit__(self, *exc_info) -> None:
        # Instances added before an error in the request (a body cut off) are complete: store them.
        self.flush()

    def add(self, *, organization: Organization, parsed: ParsedInstance, path: str, size: int, sha256: str,
            filename: str, source: str, jurisdiction: tuple[str, str] | None = None) -> IngestOutcome:
        """Take ownership of the spooled file at ``path``; the outcome is completed at the next flush."""
        item = _Pending(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                        source=source, jurisdiction=jurisdiction,
                        outcome=_pending_outcome(parsed, filename=filename, size=size))
        self._pending.append(item)
        self._pending_bytes += size
        if len(self._pending) >= self.max_instances or self._pending_bytes >= self.max_bytes:
            self.flush()
        return item.outcome

    def flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if pending:
            _store_items(pending, raise_errors=False, rows=self._rows)


class GroupCommit:
    """Index instances arriving from several threads (the gateway's associations) in shared transactions.

    ``add`` (called by ``ingest_stream`` in the sender's thread, after spooling and parsing) queues the
    instance and **blocks until the transaction holding it has committed** (or failed): its outcome is
    final when ``add`` returns, so a C-STORE is only answered success once its instance is durably
    indexed and stored. One committer thread takes whatever is queued (at most ``max_instances``) and
    stores it through the batch path (one query for known SOP instances, one INSERT, the counters, one
    commit), so N concurrent senders cost about one commit per round instead of N; a lone sender waits
    for nobody (its instance is stored as soon as it is queued). The committer closes its database
    connection after ``idle_seconds`` without work.
    """

    def __init__(self, *, max_instances: int = 50, idle_seconds: float = 2.0, wait_seconds: float = 600) -> None:
        self.max_instances = max_instances
        self.idle_seconds = idle_seconds
        self.wait_seconds = wait_seconds  # a sender never waits forever (the caller answers "retry later")
        self._queue: list[tuple[_Pending, threading.Event]] = []
        self._ready = threading.Condition()
        self._rows = RowCache()
        self._thread: threading.Thread | None = None
        self._closing = False

    def add(self, *, organization: Organization, parsed: ParsedInstance, path: str, size: int, sha256: str,
            filename: str, source: str, jurisdiction: tuple[str, str] | None = None) -> IngestOutcome:
        item = _Pending(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                        source=source, jurisdiction=jurisdiction,
                        outcome=_pending_outcome(parsed, filename=filename, size=size))
        done = threading.Event()
        with self._ready:
            if self._closing:
                _unlink(path)
                raise RuntimeError("the ingest group commit is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ingest-group-commit", daemon=True)
                self._thread.start()
            self._queue.append((item, done))
            self._ready.notify()
        if not done.wait(self.wait_seconds):
            raise TimeoutError(f"the instance was not indexed within {self.wait_seconds:.0f} s")
        return item.outcome

    def close(self, timeout: float = 30) -> None:
        """Store what is queued, then stop the committer thread."""
        with self._ready:
            self._closing = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._ready:
                    if not self._queue and not self._closing:
                        self._ready.wait(self.idle_seconds)
                    if not self._queue:
                        if self._closing:
                            return
                        connections.close_all()  # idle: give the connection back
                        continue
                    group, self._queue = self._queue[:self.max_instances], self._queue[self.max_instances:]
                self._store(group)
        finally:
            connections.close_all()

    def _store(self, group: list[tuple[_Pending, threading.Event]]) -> None:
        items = [item for item, _done in group]
        try:
            close_old_connections()
            _store_items(items, raise_errors=False, rows=self._rows)
        except Exception:  # noqa: BLE001 - every waiting sender gets an answer
            logger.exception("storing a group of %d instances failed", len(items))
            self._rows.clear()
            for item in items:
                if item.outcome.status == Status.PENDING:
                    item.outcome.status, item.outcome.code = Status.REJECTED, "processing_failure"
                    item.outcome.reason = PROCESSING_FAILURE_REASON
                    item.outcome.instance = None
                _unlink(item.path)
        finally:
            for _item, done in group:
                done.set()


def _unlink(path: str) -> None:
    if path and os.path.exists(path):
        os.unlink(path)


PROCESSING_FAILURE_REASON = "the instance could not be stored because of a server-side failure; retry later"


class RowCache:
    """Study and series rows known to exist, kept across the transactions of one batch or gateway.

    A flush starts from a copy and hands its rows back only once its transaction committed, so a
    rolled-back row is never reused. Counters are never written from these objects (``F()`` updates by
    primary key), so stale counter values do not matter. A row deleted meanwhile (a purged study) makes
    the next insert fail: that instance is answered "retry later" and the cache is emptied.
    """

    MAX_ROWS = 2000

    def __init__(self) -> None:
        self.studies: dict[tuple[int, str], Study] = {}
        self.series: dict[tuple[int, str], Series] = {}

    def keep(self, flush: _Flush) -> None:
        if len(self.studies) + len(self.series) > self.MAX_ROWS:
            self.clear()
        self.studies.update(flush.studies)
        self.series.update(flush.series)

    def clear(self) -> None:
        self.studies.clear()
        self.series.clear()


class _Flush:
    """What one transaction of a batch learned: rows to reuse, counters to add, files written."""

    def __init__(self, rows: RowCache | None = None) -> None:
        self.studies: dict[tuple[int, str], Study] = dict(rows.studies) if rows else {}
        self.series: dict[tuple[int, str], Series] = dict(rows.series) if rows else {}
        self.series_counts: dict[int, list[int]] = {}  # series pk -> [instances, bytes]
        self.study_counts: dict[int, list[int]] = {}  # study pk -> [instances, bytes, new series]
        self.new_modalities: dict[int, list[str]] = {}
        self.written: list[str] = []


def _store_items(pending: list[_Pending], *, raise_errors: bool, rows: RowCache | None = None) -> None:
    """Store ``pending`` in one transaction: all at once when nothing goes wrong, else one savepoint each."""
    # Every transaction takes its row locks in one global order (study, series, instance UIDs; counters
    # by primary key at the end), so concurrent batches wait for each other but never deadlock. The
    # sort is stable: of one SOP instance sent twice, the first is the one stored.
    pending = sorted(pending, key=lambda i: (i.organization.pk, i.parsed.study_uid, i.parsed.series_uid,
                                             i.parsed.sop_uid))
    try:
        if len(pending) == 1 or not _store_together(pending, rows):
            _store_one_by_one(pending, raise_errors=raise_errors, rows=rows)
    finally:
        if rows is not None and any(item.outcome.code == "processing_failure" for item in pending):
            rows.clear()
        for item in pending:
            if os.path.exists(item.path):
                os.unlink(item.path)


def _store_together(pending: list[_Pending], rows: RowCache | None = None) -> bool:
    """The fast path for a batch: one query for the SOP instances already held, one INSERT for the new
    rows, then the counters and one commit. Any error rolls the whole transaction back, removes the files
    it wrote and answers False: the caller then stores the batch again one savepoint per instance, so
    that each instance's own failure is reported and the others are still stored."""
    flush = _Flush(rows)
    try:
        with transaction.atomic():
            existing: dict[tuple[int, str], Instance] = {}
            by_org: dict[int, list[str]] = {}
            for item in pending:
                by_org.setdefault(item.organization.pk, []).append(item.parsed.sop_uid)
            for org_pk, uids in by_org.items():
                for instance in (Instance.objects.select_related("study", "series")
                                 .filter(organization_id=org_pk, sop_instance_uid__in=uids)):
                    existing[(org_pk, instance.sop_instance_uid)] = instance
            first: dict[tuple[int, str], _Pending] = {}
            repeats: list[tuple[_Pending, _Pending]] = []
            new: list[Instance] = []
            stored: list[tuple[_Pending, Instance]] = []
            now = timezone.now()
            for item in pending:
                uid = (item.organization.pk, item.parsed.sop_uid)
                if uid in existing:
                    _set_existing(item.outcome, existing[uid], sha256=item.sha256)
                    continue
                if uid in first:  # the same SOP instance twice in one batch: the first one is stored
                    repeats.append((item, first[uid]))
                    continue
                first[uid] = item
                study, series, series_created, modality = _rows_for(item, flush)
                instance = _new_instance(item, study, series, now)
                flush.written.append(instance.storage_key)
                _write_file(instance.storage_key, item.path)
                new.append(instance)
                stored.append((item, instance))
                _remember(flush, item, study, series, series_created, modality)
            # One column given as an expression makes Django write a multi-row VALUES insert: its
            # PostgreSQL UNNEST form escapes every value into an array literal in Python, ~1 ms per row
            # of DICOM JSON. The attribute is set back to the plain value afterwards.
            for instance in new:
                instance.received_via = Value(instance.received_via, output_field=CharField())
            Instance.objects.bulk_create(new)
            for item, instance in stored:
                instance.received_via = item.source
                item.outcome.status, item.outcome.instance = Status.STORED, instance
            for item, original in repeats:
                _set_existing(item.outcome, original.outcome.instance, sha256=item.sha256)
            _add_counters(flush)
    except Exception:  # noqa: BLE001 - retried one instance at a time, where each failure is reported
        logger.info("storing a batch of %d instances at once failed; storing them one by one", len(pending),
                    exc_info=True)
        _remove(flush.written)
        for item in pending:
            item.outcome.status, item.outcome.code, item.outcome.reason = Status.PENDING, "", ""
            item.outcome.instance = None
        return False
    if rows is not None:
        rows.keep(flush)
    return True


def _store_one_by_one(pending: list[_Pending], *, raise_errors: bool, rows: RowCache | None = None) -> None:
    """Store ``pending`` in one transaction, one savepoint per instance when there are several."""
    flush = _Flush(rows)
    alone = len(pending) == 1
    try:
        with transaction.atomic():
            for item in pending:
                if alone:  # the transaction itself is the instance's all-or-nothing unit
                    _store_one(item, flush)
                    continue
                written = len(flush.written)
                try:
                    with transaction.atomic():
                        stored = _store_one(item, flush, defer_cache=True)
                except Exception as exc:  # noqa: BLE001 - one instance's failure is reported, the others go on
                    _remove(flush.written[written:])
                    del flush.written[written:]
                    _resolve_failure(item, exc, raise_errors=False)
                else:
                    if stored is not None:
                        _remember(flush, item, *stored)
            _add_counters(flush)
        if rows is not None:
            rows.keep(flush)
    except Exception as exc:
        _remove(flush.written)
        for item in pending:
            if item.outcome.status in (Status.PENDING, Status.STORED):
                item.outcome.instance = None
                _resolve_failure(item, exc, raise_errors=raise_errors)


def _remove(keys: list[str]) -> None:
    for key in keys:
        try:
            if default_storage.exists(key):
                default_storage.delete(key)
        except Exception:  # noqa: BLE001 - a leftover file without a row is replaced at the next ingest
            logger.exception("could not remove %s after its index change was rolled back", key)


def _resolve_failure(item: _Pending, exc: Exception, *, raise_errors: bool) -> None:
    if isinstance(exc, IntegrityError):
        # Another request stored the same SOP instance at the same moment: report what is there now.
        existing = _find_existing(item.organization, item.parsed.sop_uid)
        if existing is not None:
            _set_existing(item.outcome, existing, sha256=item.sha256)
            return
    if raise_errors:
        raise exc
    logger.error("storing %s (%s) failed", item.outcome.filename, item.parsed.sop_uid, exc_info=exc)
    item.outcome.status, item.outcome.code = Status.REJECTED, "processing_failure"
    item.outcome.reason = PROCESSING_FAILURE_REASON
    item.outcome.instance = None


def _store_one(item: _Pending, flush: _Flush, *, defer_cache: bool = False):
    """Index one instance and write its file, as the last step (the caller's transaction or savepoint)."""
    organization, parsed = item.organization, item.parsed
    found = (Instance.objects.filter(organization=organization, sop_instance_uid=parsed.sop_uid)
             .values_list("pk", flat=True)[:1])
    if found:
        _set_existing(item.outcome, _find_existing(organization, parsed.sop_uid), sha256=item.sha256)
        return None
    study, series, series_created, modality = _rows_for(item, flush)
    instance = _new_instance(item, study, series, timezone.now())
    instance.save(force_insert=True)
    flush.written.append(instance.storage_key)
    _write_file(instance.storage_key, item.path)
    item.outcome.status, item.outcome.instance = Status.STORED, instance
    stored = (study, series, series_created, modality)
    if not defer_cache:
        _remember(flush, item, *stored)
    return stored


def _rows_for(item: _Pending, flush: _Flush) -> tuple[Study, Series, bool, str]:
    """The study and series rows of an instance (created when new; reused within one transaction)."""
    organization, parsed, ds = item.organization, item.parsed, item.parsed.dataset
    study = flush.studies.get((organization.pk, parsed.study_uid))
    if study is None:
        study, _ = Study.objects.get_or_create(
            organization=organization, study_instance_uid=parsed.study_uid,
            defaults=_study_defaults(organization, ds, item.jurisdiction))
    modality = text(ds, "Modality", 16)
    series = flush.series.get((study.pk, parsed.series_uid))
    series_created = False
    if series is None:
        series, series_created = Series.objects.get_or_create(
            study=study, series_instance_uid=parsed.series_uid,
            defaults={"modality": modality, "series_number": int_or_none(ds, "SeriesNumber"),
                      "series_description": text(ds, "SeriesDescription", 200),
                      "body_part_examined": text(ds, "BodyPartExamined", 64),
                      "series_date": parse_da(ds.get("SeriesDate"))})
    return study, series, series_created, modality


def _new_instance(item: _Pending, study: Study, series: Series, now) -> Instance:
    """The index row of one instance (not saved yet), under the server-built storage key."""
    organization, parsed, ds = item.organization, item.parsed, item.parsed.dataset
    return Instance(
        organization=organization, study=study, series=series, sop_instance_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid, instance_number=int_or_none(ds, "InstanceNumber"),
        transfer_syntax_uid=parsed.transfer_syntax_uid, number_of_frames=int_or_none(ds, "NumberOfFrames") or 1,
        rows=int_or_none(ds, "Rows"), columns=int_or_none(ds, "Columns"),
        bits_allocated=int_or_none(ds, "BitsAllocated"), samples_per_pixel=int_or_none(ds, "SamplesPerPixel"),
        burned_in_annotation=text(ds, "BurnedInAnnotation", 16).upper(), size=item.size, sha256=item.sha256,
        storage_key=storage_key(organization, parsed.study_uid, parsed.series_uid, parsed.sop_uid),
        pixel_data_offset=parsed.pixel_data_offset, pixel_data_length=parsed.pixel_data_length,
        dicom_json=parsed.dicom_json, received_at=now, received_via=item.source)


def _remember(flush: _Flush, item: _Pending, study: Study, series: Series, series_created: bool,
              modality: str) -> None:
    """Once an instance is in (its savepoint released): reuse its rows, count it."""
    flush.studies[(item.organization.pk, study.study_instance_uid)] = study
    flush.series[(study.pk, series.series_instance_uid)] = series
    series_counts = flush.series_counts.setdefault(series.pk, [0, 0])
    series_counts[0] += 1
    series_counts[1] += item.size
    study_counts = flush.study_counts.setdefault(study.pk, [0, 0, 0])
    study_counts[0] += 1
    study_counts[1] += item.size
    if series_created:
        study_counts[2] += 1
        if modality:
            flush.new_modalities.setdefault(study.pk, []).append(modality)


def _add_counters(flush: _Flush) -> None:
    """Add the counters of this transaction: ``F()`` increments, rows in primary-key order (series, then
    studies) so that concurrent batches never deadlock and never lose an update."""
    for pk in sorted(flush.series_counts):
        count, size = flush.series_counts[pk]
        Series.objects.filter(pk=pk).update(number_of_instances=F("number_of_instances") + count,
                                            total_size=F("total_size") + size)
    modalities = {}
    if flush.new_modalities:
        # Read under a lock (FOR NO KEY UPDATE: inserts referencing the study are not blocked).
        modalities = dict(Study.objects.select_for_update(no_key=True).filter(pk__in=flush.new_modalities)
                          .order_by("pk").values_list("pk", "modalities_in_study"))
    now = timezone.now()
    for pk in sorted(flush.study_counts):
        count, size, new_series = flush.study_counts[pk]
        updates = {"number_of_instances": F("number_of_instances") + count, "total_size": F("total_size") + size,
                   "last_received_at": now,
                   "deleted_at": None}  # new images for a deleted study bring it back
        if new_series:
            updates["number_of_series"] = F("number_of_series") + new_series
        if pk in flush.new_modalities:
            current = modalities.get(pk) or ""
            for modality in flush.new_modalities[pk]:
                if f"\\{modality}\\" not in current:
                    current = (current or "\\") + f"{modality}\\"
            updates["modalities_in_study"] = current
        Study.objects.filter(pk=pk).update(**updates)


def _write_file(key: str, path: str) -> None:
    """Write under exactly ``key``, as the last step of the indexing transaction.

    A file already at the key has no row (a crash between write and commit left it): replace it.
    If the write fails, the exception rolls the index back and the partial file is removed.
    """
    try:
        if default_storage.exists(key):
            default_storage.delete(key)
        link = _spare_link(path)
        try:
            with open(path, "rb") as fh:
                content = _LinkedFile(fh, name=os.path.basename(key), link=link) if link else \
                    File(fh, name=os.path.basename(key))
                saved = default_storage.save(key, content)
        finally:
            if link and os.path.exists(link):
                os.unlink(link)
        if saved != key:
            default_storage.delete(saved)
            raise OSError(f"storage saved {saved!r} instead of {key!r}")
    except Exception:
        logger.exception("storing %s failed; the index change is rolled back", key)
        if default_storage.exists(key):
            default_storage.delete(key)
        raise


class _LinkedFile(File):
    """A spooled file offered to a local storage as a temporary file: ``FileSystemStorage`` then renames it
    into place instead of copying its bytes (what Django does for large uploads)."""

    def __init__(self, file, *, name: str, link: str) -> None:
        super().__init__(file, name=name)
        self._link = link

    def temporary_file_path(self) -> str:
        return self._link


def _spare_link(path: str) -> str | None:
    """A second name (hard link) for the spooled file, for a local storage to move into place: the spooled
    file itself stays, so that a rolled-back batch can still store it one instance at a time. None for a
    remote storage (it reads the bytes) or where links are not possible."""
    try:
        default_storage.path("probe")
    except NotImplementedError:
        return None
    link = f"{path}.{os.getpid()}-{threading.get_ident()}.link"
    try:
        os.link(path, link)
    except OSError:
        return None
    return link


def ingest_files(*, organization: Organization, files: list[tuple[str, BinaryIO]], source: str,
                 expected_study_uid: str | None = None, jurisdiction: tuple[str, str] | None = None,
                 actor=None, request=None) -> list[IngestOutcome]:
    """Ingest several files; one audit row per study touched (not one per instance)."""
    outcomes = [ingest_stream(organization=organization, stream=stream, filename=name, source=source,
                              expected_study_uid=expected_study_uid, jurisdiction=jurisdiction)
                for name, stream in files]
    audit_ingest(outcomes, organization=organization, source=source, actor=actor, request=request)
    return outcomes


def audit_ingest(outcomes: list[IngestOutcome], *, organization: Organization, source: str, actor=None,
                 request=None, api_key=None, extra: dict | None = None) -> None:
    """One audit row per study touched, with the counts per outcome (an API key is named by its prefix)."""
    per_study: dict[str, Counter] = {}
    for outcome in outcomes:
        per_study.setdefault(outcome.study_instance_uid or "-", Counter())[outcome.status] += 1
    who = {"api_key": api_key.prefix} if api_key is not None else {}
    for study_uid, counts in per_study.items():
        audit_record(action="study.ingested", actor=actor, request=request, organization=organization,
                     object_type="studies.study", object_id=study_uid,
                     extra={"source": source, **counts, **who, **(extra or {})})
