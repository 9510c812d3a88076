"""The one ingest service behind every door (browser upload, STOW-RS, C-STORE, folder import).

For each file: stream it to a temporary file while hashing, parse it once, validate it, then —
inside one transaction — deduplicate by SOPInstanceUID within the organization, index it and write
it to storage under the server-built key. The same data set again is a no-op success whatever file
meta the door wrote around it (compared by the content fingerprint, the data set after the File Meta
Information, and element by element when the encodings differ); a different data set under a known
SOPInstanceUID is a conflict and is never written. Any failure leaves nothing
behind: no row without its file, no file without its row. On a local folder each file and its folder
entry are synced to disk before the transaction that indexes it commits (``Written``), so an instance
answered "stored" survives a crash.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, close_old_connections, connection, connections, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from core.sql import sent_together
from studies import hooks
from studies.dicom import (
    PART10_PREFIX,
    ContentDigest,
    DicomRejected,
    ParsedInstance,
    file_meta_without_preamble,
    read_instance,
    same_data_set,
)
from studies.durable_write import Written, write_file
from studies.models import Instance, Series, Study

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024
_META_HEAD = 64 * 1024  # holds the file meta of any real sender; below dicom.META_SEARCH_LIMIT
PREAMBLE_ADDED = "stored with the 128-byte preamble and 'DICM' added: the file meta came without them"


class Source:
    UPLOAD = "upload"
    STOW = "stow"
    CSTORE = "cstore"
    IMPORT = "import"
    REPORT = "report"  # a signed report as a DICOM SR (reporting.services.delivery)


class Status:
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same data set was already stored: success, nothing written
    CONFLICT = "conflict"  # the SOPInstanceUID is known with another data set: refused
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
    # Values left out of the index because they could not be read (the file is stored as it came).
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (Status.STORED, Status.DUPLICATE)

    def as_dict(self) -> dict:
        return {"file": self.filename, "status": self.status, "reason": self.reason, "code": self.code,
                "sop_instance_uid": self.sop_instance_uid, "study_instance_uid": self.study_instance_uid,
                "size": self.size, "warnings": self.warnings}


def storage_key(organization: Organization, study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Built by the server from validated UIDs only: never from file names or DICOMDIR paths."""
    return f"{organization.public_id}/{study_uid}/{series_uid}/{sop_uid}.dcm"


def _spool(stream: BinaryIO, limit: int) -> tuple[str, int, str, str, bool]:
    """Copy the stream to a temporary file, hashing as it goes (the whole file, and its data set alone:
    the content fingerprint); refuse past ``limit`` bytes. A file meta sent without the 128-byte preamble and
    ``DICM`` gets them (the last value says so): we store Part 10 files, the data set as it came."""
    digest = hashlib.sha256()
    content = ContentDigest()
    size = 0
    prefixed = None
    fd, path = tempfile.mkstemp(prefix="readroom-ingest-", suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                if prefixed is None:
                    prefixed = file_meta_without_preamble(chunk)
                    chunk = PART10_PREFIX + chunk if prefixed else chunk
                size += len(chunk)
                if size > limit:
                    raise DicomRejected(f"the file is larger than the limit of {limit // (1024 * 1024)} MB",
                                        code="too_large")
                digest.update(chunk)
                # The fingerprint keeps what it is given until it has found the end of the file meta: give it
                # the head of the chunk first, so that it hashes the rest (the data set) without copying it.
                view = memoryview(chunk)
                content.update(view[:_META_HEAD])
                content.update(view[_META_HEAD:])
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path, size, digest.hexdigest(), content.hexdigest(), bool(prefixed)


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
        path, size, sha256, content_sha256, prefixed = _spool(stream, limit)
        _check_preamble(path, size)
        parsed = read_instance(path, size)
        if prefixed:
            parsed.warnings = [*(parsed.warnings or ()), PREAMBLE_ADDED]
        if expected_study_uid and parsed.study_uid != expected_study_uid:
            raise DicomRejected(f"StudyInstanceUID {parsed.study_uid} differs from the study in the request path "
                                f"({expected_study_uid})", code="study_mismatch")
        if expected_sop_uid is not None and parsed.sop_uid != expected_sop_uid:
            raise DicomRejected(f"the data set's SOPInstanceUID {parsed.sop_uid} differs from the announced "
                                f"Affected SOP Instance UID {expected_sop_uid[:64]}", code="sop_mismatch")
        if batch is not None:
            outcome = batch.add(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                                filename=filename, source=source, jurisdiction=jurisdiction,
                                content_sha256=content_sha256)
            path = None  # the batch owns the spooled file now
            return outcome
        return _index_and_store(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                                filename=filename, source=source, jurisdiction=jurisdiction,
                                content_sha256=content_sha256)
    except DicomRejected as exc:
        # Name the instance when the file was readable, so that STOW can report which one failed.
        uids = {"sop_instance_uid": parsed.sop_uid, "sop_class_uid": parsed.sop_class_uid,
                "study_instance_uid": parsed.study_uid, "series_instance_uid": parsed.series_uid} if parsed else {}
        outcome = IngestOutcome(filename=filename, status=Status.REJECTED, reason=exc.reason, code=exc.code, **uids)
        if isinstance(batch, IngestBatch):
            batch.settled(outcome)
        return outcome
    finally:
        if path and os.path.exists(path):
            os.unlink(path)


def _set_existing(item: _Pending, existing: Instance, *, stored_path: str | None = None) -> None:
    """The outcome of an instance already held: a duplicate when its data set is the one stored (whatever
    door wrote the file meta), else a conflict. ``stored_path``: the other copy's spooled file, when it was
    stored in this same transaction."""
    outcome = item.outcome
    outcome.sop_instance_uid = existing.sop_instance_uid
    outcome.sop_class_uid = existing.sop_class_uid
    outcome.study_instance_uid = existing.study.study_instance_uid
    outcome.series_instance_uid = existing.series.series_instance_uid
    outcome.instance = existing
    same = _same_as_stored(item, existing, stored_path)
    if same:
        outcome.status, outcome.code, outcome.reason = Status.DUPLICATE, "", f"already stored ({same})"
    else:
        outcome.status, outcome.code = Status.CONFLICT, "conflict"
        outcome.reason = ("an instance with this SOPInstanceUID is already stored with different content (another "
                          "data set, not just another file header); it was not overwritten")


def _same_as_stored(item: _Pending, existing: Instance, stored_path: str | None) -> str:
    """Why ``item`` is the instance already stored ("" when it is not): the same bytes, the same data set
    after the file meta (the fingerprint), or the same elements in another encoding (compared in full,
    only when the fingerprints differ: implicit against explicit VR, or a row from before fingerprints)."""
    if existing.sha256 == item.sha256:
        return "identical bytes"
    if item.content_sha256 and existing.content_sha256 == item.content_sha256:
        return "the same data set"
    try:
        if stored_path is not None:
            same = same_data_set(item.path, stored_path)
        else:
            with default_storage.open(existing.storage_key, "rb") as stored:
                same = same_data_set(item.path, stored)
    except OSError:
        logger.warning("could not read %s to compare it with a copy sent again", existing.storage_key,
                       exc_info=True)
        return ""
    return "the same data set in another encoding" if same else ""


def _find_existing(organization: Organization, sop_uid: str) -> Instance | None:
    return (Instance.objects.select_related("study", "series")
            .filter(organization=organization, sop_instance_uid=sop_uid)[:1].first())


def _index_and_store(*, organization, parsed: ParsedInstance, path, size, sha256, filename, source,
                     jurisdiction, content_sha256: str = "") -> IngestOutcome:
    """Index and store one instance in its own transaction (raises on a server-side failure)."""
    item = _Pending(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256, source=source,
                    jurisdiction=jurisdiction, outcome=_pending_outcome(parsed, filename=filename, size=size),
                    content_sha256=content_sha256)
    _store_items([item], raise_errors=True)
    return item.outcome


def _study_defaults(organization: Organization, parsed: ParsedInstance, jurisdiction) -> dict:
    country, region = jurisdiction or (organization.country, organization.region)
    f = parsed.field
    return {
        "patient_id": f("PatientID"),
        "patient_name": f("PatientName"),
        "patient_birth_date": f("PatientBirthDate"),
        "patient_sex": f("PatientSex"),
        "accession_number": f("AccessionNumber"),
        "study_description": f("StudyDescription"),
        "study_date": f("StudyDate"),
        "study_time": f("StudyTime"),
        "study_id": f("StudyID"),
        "referring_physician_name": f("ReferringPhysicianName"),
        "institution_name": f("InstitutionName"),
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
    content_sha256: str = ""


def _pending_outcome(parsed: ParsedInstance, *, filename: str, size: int) -> IngestOutcome:
    return IngestOutcome(filename=filename, status=Status.PENDING, sop_instance_uid=parsed.sop_uid,
                         sop_class_uid=parsed.sop_class_uid, study_instance_uid=parsed.study_uid,
                         series_instance_uid=parsed.series_uid, size=size, warnings=list(parsed.warnings or ()))


class IngestBatch:
    """Index and store the instances of one request (a STOW body, an uploaded zip) with few commits.

    ``add`` keeps the spooled, parsed instance; every ``max_instances`` instances or ``max_bytes``
    bytes, and when the batch closes, they are stored together in one transaction: each instance in
    its own savepoint (all-or-nothing: its row, its file and its counters, or none of them), the
    study and series counters added once per flush with ``F()`` increments, then one commit. No
    transaction is open while the request body is read. If the commit fails, the instances of that
    flush are reported as failures and their files removed. Use as a context manager; the outcomes
    returned by ``add`` are complete once it exits (or after ``flush``).

    ``audit`` (called with a list of outcomes, e.g. ``audit_ingest`` with the request's actor): the record
    of what a flush stored is written in that flush's transaction, as its last statement, so that
    instances are never committed without it (a crash between two commits cannot leave one). It covers
    the flush's instances and the refusals settled since the previous flush (``settled``); refusals left
    at the end, or outcomes whose transaction did not commit, are recorded on their own when the batch
    closes.
    """

    def __init__(self, *, max_instances: int = 50, max_bytes: int = 256 * 1024 * 1024,
                 audit: Callable[[list[IngestOutcome]], object] | None = None) -> None:
        self.max_instances = max_instances
        self.max_bytes = max_bytes
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._rows = RowCache()  # the study and series of a request are looked up once, not once per flush
        self._audit = audit
        self._unaudited: list[IngestOutcome] = []

    def __enter__(self) -> IngestBatch:
        return self

    def __exit__(self, *exc_info) -> None:
        # Instances added before an error in the request (a body cut off) are complete: store them.
        self.flush()
        if self._audit is not None and self._unaudited:
            self._audit(self._unaudited)
            self._unaudited = []

    def settled(self, outcome: IngestOutcome) -> None:
        """An outcome decided without the batch (a refused file): recorded with the next flush."""
        self._unaudited.append(outcome)

    def add(self, *, organization: Organization, parsed: ParsedInstance, path: str, size: int, sha256: str,
            filename: str, source: str, jurisdiction: tuple[str, str] | None = None,
            content_sha256: str = "") -> IngestOutcome:
        """Take ownership of the spooled file at ``path``; the outcome is completed at the next flush."""
        item = _Pending(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                        source=source, jurisdiction=jurisdiction, content_sha256=content_sha256,
                        outcome=_pending_outcome(parsed, filename=filename, size=size))
        self._pending.append(item)
        self._unaudited.append(item.outcome)
        self._pending_bytes += size
        if len(self._pending) >= self.max_instances or self._pending_bytes >= self.max_bytes:
            self.flush()
        return item.outcome

    def flush(self) -> None:
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        if not pending:
            return
        outcomes = list(self._unaudited)
        record = (lambda: self._audit(outcomes)) if self._audit is not None else None
        if _store_items(pending, raise_errors=False, rows=self._rows, before_commit=record) and record is not None:
            self._unaudited = self._unaudited[len(outcomes):]


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
            filename: str, source: str, jurisdiction: tuple[str, str] | None = None,
            content_sha256: str = "") -> IngestOutcome:
        item = _Pending(organization=organization, parsed=parsed, path=path, size=size, sha256=sha256,
                        source=source, jurisdiction=jurisdiction, content_sha256=content_sha256,
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
        self.created_series: set[int] = set()  # by this transaction, not counted in its study yet
        self.written: list[str] = []


def _store_items(pending: list[_Pending], *, raise_errors: bool, rows: RowCache | None = None,
                 before_commit: Callable[[], object] | None = None) -> bool:
    """Store ``pending`` in one transaction: all at once when nothing goes wrong, else one savepoint each.
    ``before_commit`` runs in that transaction after everything else (the audit record). Answers whether the
    transaction committed."""
    # Every transaction takes its row locks in one global order (study, series, instance UIDs; counters
    # by primary key at the end), so concurrent batches wait for each other but never deadlock. The
    # sort is stable: of one SOP instance sent twice, the first is the one stored.
    pending = sorted(pending, key=lambda i: (i.organization.pk, i.parsed.study_uid, i.parsed.series_uid,
                                             i.parsed.sop_uid))
    try:
        return _store_together(pending, rows, before_commit) or \
            _store_one_by_one(pending, raise_errors=raise_errors, rows=rows, before_commit=before_commit)
    finally:
        if rows is not None and any(item.outcome.code == "processing_failure" for item in pending):
            rows.clear()
        for item in pending:
            if os.path.exists(item.path):
                os.unlink(item.path)


def _store_together(pending: list[_Pending], rows: RowCache | None = None,
                    before_commit: Callable[[], object] | None = None) -> bool:
    """The fast path for a batch: one query for the SOP instances already held (and the studies and series
    not known yet), one INSERT per kind of new row (studies, series, instances), the counters sent together,
    then one commit. Any error rolls the whole transaction back, removes the files
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
                # The studies and series not known yet come with the same query (a one-instance request
                # then costs one SELECT before its INSERT).
                known = _existing_uids(org_pk, uids, flush, wanted=_unknown_rows(pending, flush, org_pk))
                if not known:  # the common case: one cheap query, no rows to build
                    continue
                for instance in (Instance.objects.select_related("study", "series")
                                 .filter(organization_id=org_pk, sop_instance_uid__in=known)):
                    existing[(org_pk, instance.sop_instance_uid)] = instance
            _create_rows(pending, flush)
            first: dict[tuple[int, str], _Pending] = {}
            repeats: list[tuple[_Pending, _Pending]] = []
            new: list[Instance] = []
            stored: list[tuple[_Pending, Instance]] = []
            now = timezone.now()
            for item in pending:
                uid = (item.organization.pk, item.parsed.sop_uid)
                if uid in existing:
                    _set_existing(item, existing[uid])
                    continue
                if uid in first:  # the same SOP instance twice in one batch: the first one is stored
                    repeats.append((item, first[uid]))
                    continue
                first[uid] = item
                study, series, series_created, modality = _rows_for(item, flush)
                instance = _new_instance(item, study, series, now)
                new.append(instance)
                stored.append((item, instance))
                _remember(flush, item, study, series, series_created, modality)
            _insert_rows(new)
            # The files last (the rows are in, pending the commit), each durable before the commit.
            written = Written()
            for item, instance in stored:
                flush.written.append(instance.storage_key)
                write_file(instance.storage_key, item.path, written)
            written.sync()
            for item, instance in stored:
                item.outcome.status, item.outcome.instance = Status.STORED, instance
            for item, original in repeats:
                _set_existing(item, original.outcome.instance, stored_path=original.path)
            _add_counters(flush)
            if before_commit is not None:
                before_commit()
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


def _store_one_by_one(pending: list[_Pending], *, raise_errors: bool, rows: RowCache | None = None,
                      before_commit: Callable[[], object] | None = None) -> bool:
    """Store ``pending`` in one transaction, one savepoint per instance when there are several; answers
    whether it committed."""
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
            if before_commit is not None:
                before_commit()
        if rows is not None:
            rows.keep(flush)
        return True
    except Exception as exc:
        _remove(flush.written)
        for item in pending:
            if item.outcome.status in (Status.PENDING, Status.STORED):
                item.outcome.instance = None
                _resolve_failure(item, exc, raise_errors=raise_errors)
        return False


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
            _set_existing(item, existing)
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
        _set_existing(item, _find_existing(organization, parsed.sop_uid))
        return None
    study, series, series_created, modality = _rows_for(item, flush)
    instance = _new_instance(item, study, series, timezone.now())
    instance.save(force_insert=True)
    flush.written.append(instance.storage_key)
    written = Written()
    write_file(instance.storage_key, item.path, written)
    written.sync()
    item.outcome.status, item.outcome.instance = Status.STORED, instance
    stored = (study, series, series_created, modality)
    if not defer_cache:
        _remember(flush, item, *stored)
    return stored


def _rows_for(item: _Pending, flush: _Flush) -> tuple[Study, Series, bool, str]:
    """The study and series rows of an instance (created when new; reused within one transaction).

    Rows already known to this transaction (or to the batch's ``RowCache``) cost nothing; else one query
    looks both up; only a new study or series goes through ``get_or_create``."""
    organization, parsed = item.organization, item.parsed
    modality = parsed.field("Modality")
    study = flush.studies.get((organization.pk, parsed.study_uid))
    series = flush.series.get((study.pk, parsed.series_uid)) if study is not None else None
    if series is not None:
        # the first instance of a series this flush created counts it (``_remember``)
        created = series.pk in flush.created_series
        flush.created_series.discard(series.pk)
        return study, series, created, modality
    found_study, found_series = _lookup_rows(organization.pk, parsed.study_uid, parsed.series_uid)
    study = study or found_study
    if study is None:
        study, _ = Study.objects.get_or_create(
            organization=organization, study_instance_uid=parsed.study_uid,
            defaults=_study_defaults(organization, parsed, item.jurisdiction))
    series_created = False
    series = found_series if found_series is not None and found_series.study_id == study.pk else None
    if series is None:
        series, series_created = Series.objects.get_or_create(
            study=study, series_instance_uid=parsed.series_uid, defaults=_series_defaults(parsed))
    return study, series, series_created, modality


def _series_defaults(parsed: ParsedInstance) -> dict:
    f = parsed.field
    return {"modality": f("Modality"), "series_number": f("SeriesNumber"),
            "series_description": f("SeriesDescription"), "body_part_examined": f("BodyPartExamined"),
            "series_date": f("SeriesDate")}


def _lookup_rows(organization_pk: int, study_uid: str, series_uid: str) -> tuple[Study | None, Series | None]:
    """The study (and its series) by UID in one query, as model instances whose other fields load lazily."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT st.id, se.id " + _rows_from_clause(), [series_uid, organization_pk, study_uid])
        row = cursor.fetchone()
    return _rows_from(organization_pk, study_uid, series_uid, row)


def _rows_from_clause() -> str:
    """A study by UID and its series by UID (parameters: series UID, organization, study UID)."""
    return (f"FROM {_qn(Study._meta.db_table)} st LEFT OUTER JOIN {_qn(Series._meta.db_table)} se "
            "ON se.study_id = st.id AND se.series_instance_uid = %s "
            "WHERE st.organization_id = %s AND st.study_instance_uid = %s")


def _rows_from(organization_pk: int, study_uid: str, series_uid: str, row) -> tuple[Study | None, Series | None]:
    if row is None:
        return None, None
    study = Study.from_db(connection.alias, ["id", "organization_id", "study_instance_uid"],
                          [int(row[0]), organization_pk, study_uid])
    series = None
    if row[1] is not None:
        series = Series.from_db(connection.alias, ["id", "study_id", "series_instance_uid"],
                                [int(row[1]), study.pk, series_uid])
        series.study = study
    return study, series


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _new_instance(item: _Pending, study: Study, series: Series, now) -> Instance:
    """The index row of one instance (not saved yet), under the server-built storage key."""
    organization, parsed = item.organization, item.parsed
    f = parsed.field
    return Instance(
        organization=organization, study=study, series=series, sop_instance_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid, instance_number=f("InstanceNumber"),
        transfer_syntax_uid=parsed.transfer_syntax_uid, number_of_frames=f("NumberOfFrames") or 1,
        rows=f("Rows"), columns=f("Columns"), bits_allocated=f("BitsAllocated"),
        samples_per_pixel=f("SamplesPerPixel"), burned_in_annotation=f("BurnedInAnnotation").upper(),
        size=item.size, sha256=item.sha256, content_sha256=item.content_sha256,
        storage_key=storage_key(organization, parsed.study_uid, parsed.series_uid, parsed.sop_uid),
        pixel_data_offset=parsed.pixel_data_offset, pixel_data_length=parsed.pixel_data_length,
        dicom_json=parsed.dicom_json, received_at=now, received_via=item.source)


def _insert_rows(objects: list, *, unique: tuple[str, ...] | None = None) -> list:
    """One multi-row INSERT of new rows of one model (their primary keys set from RETURNING); returns the
    objects inserted. ``unique``: the columns of a unique constraint; a row that would break it is skipped
    (ON CONFLICT DO NOTHING) and left out of the result.

    Written here rather than with ``bulk_create``: Django compiles and adapts every value of every row
    (and on PostgreSQL escapes each into an UNNEST array literal), which cost more CPU than the rest of
    the indexing; and ``bulk_create`` sets no primary key when it ignores conflicts."""
    if not objects:
        return []
    model = type(objects[0])
    if not connection.features.can_return_rows_from_bulk_insert:
        if unique is not None:
            return []  # the caller creates each row on its own
        model.objects.bulk_create(objects)
        return objects
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(_qn(f.column) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    conflict = f" ON CONFLICT ({', '.join(_qn(c) for c in unique)}) DO NOTHING" if unique else ""
    unique_fields = [model._meta.get_field(c) for c in unique or ()]
    returning = ", ".join(_qn(c) for c in (model._meta.pk.column, *(f.column for f in unique_fields)))
    size = max(1, connection.ops.bulk_batch_size(fields, objects) or len(objects))
    inserted = []
    with connection.cursor() as cursor:
        for start in range(0, len(objects), size):
            chunk = objects[start:start + size]
            params = []
            for obj in chunk:
                params += [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
            sql = (f"INSERT INTO {_qn(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 - values bound
                   f"{', '.join([row_sql] * len(chunk))}{conflict} RETURNING {returning}")
            cursor.execute(sql, params)
            returned = cursor.fetchall()
            if unique:
                by_key = {tuple(getattr(obj, f.attname) for f in unique_fields): obj for obj in chunk}
                chunk = [by_key[tuple(row[1:])] for row in returned]
            for obj, row in zip(chunk, returned, strict=True):
                obj.pk = row[0]
                obj._state.adding = False
                obj._state.db = connection.alias
                inserted.append(obj)
    return inserted


def _unknown_rows(pending: list[_Pending], flush: _Flush, organization_pk: int) -> list[tuple[str, str]]:
    """The (study UID, series UID) pairs of the organization's instances whose rows this flush does not know."""
    wanted = {}
    for item in pending:
        if item.organization.pk != organization_pk:
            continue
        study = flush.studies.get((organization_pk, item.parsed.study_uid))
        if study is None or (study.pk, item.parsed.series_uid) not in flush.series:
            wanted[(item.parsed.study_uid, item.parsed.series_uid)] = None
    return list(wanted)


def _existing_uids(organization_pk: int, uids: list[str], flush: _Flush, *, wanted: list[tuple[str, str]]
                   ) -> set[str]:
    """Which of these SOP Instance UIDs the organization already holds; in the same query, the studies and
    series of the ``wanted`` (study UID, series UID) pairs that exist, kept in ``flush``."""
    instance_table = _qn(Instance._meta.db_table)
    sql = (f"SELECT 0, sop_instance_uid, NULL, NULL, NULL FROM {instance_table} "  # noqa: S608 - values bound
           f"WHERE organization_id = %s AND sop_instance_uid IN ({', '.join(['%s'] * len(uids))})")
    params: list = [organization_pk, *uids]
    if wanted:
        study_uids = list(dict.fromkeys(study for study, _series in wanted))
        series_uids = list(dict.fromkeys(series for _study, series in wanted))
        series_in, studies_in = ", ".join(["%s"] * len(series_uids)), ", ".join(["%s"] * len(study_uids))
        sql += (" UNION ALL SELECT 1, st.study_instance_uid, st.id, se.series_instance_uid, se.id "  # noqa: S608
                f"FROM {_qn(Study._meta.db_table)} st LEFT OUTER JOIN {_qn(Series._meta.db_table)} se "
                f"ON se.study_id = st.id AND se.series_instance_uid IN ({series_in}) "
                f"WHERE st.organization_id = %s AND st.study_instance_uid IN ({studies_in})")
        params += [*series_uids, organization_pk, *study_uids]
    known: set[str] = set()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, uid, study_pk, series_uid, series_pk in cursor.fetchall():
            if kind == 0:
                known.add(uid)
                continue
            found_study, found_series = _rows_from(organization_pk, uid, series_uid, (study_pk, series_pk))
            study = flush.studies.setdefault((organization_pk, uid), found_study)
            if found_series is not None:
                found_series.study = study
                flush.series.setdefault((study.pk, series_uid), found_series)
    return known


def _create_rows(pending: list[_Pending], flush: _Flush) -> None:
    """Create the studies, then the series, that no row exists for yet, each kind in one INSERT (a batch of
    many small studies would otherwise cost a lookup and two ``get_or_create`` per study). A row another
    transaction created meanwhile is skipped here (ON CONFLICT DO NOTHING) and found by ``_rows_for``."""
    studies: dict[tuple[int, str], Study] = {}
    for item in pending:  # sorted by UIDs: rows are inserted, and locked, in the global order
        key = (item.organization.pk, item.parsed.study_uid)
        if key not in flush.studies and key not in studies:
            studies[key] = Study(organization=item.organization, study_instance_uid=item.parsed.study_uid,
                                 **_study_defaults(item.organization, item.parsed, item.jurisdiction))
    for study in _insert_rows(list(studies.values()), unique=("organization_id", "study_instance_uid")):
        flush.studies[(study.organization_id, study.study_instance_uid)] = study
    series_rows: dict[tuple[int, str], Series] = {}
    for item in pending:
        study = flush.studies.get((item.organization.pk, item.parsed.study_uid))
        if study is None or (study.pk, item.parsed.series_uid) in flush.series:
            continue
        series_rows.setdefault((study.pk, item.parsed.series_uid), Series(
            study=study, series_instance_uid=item.parsed.series_uid, **_series_defaults(item.parsed)))
    for series in _insert_rows(list(series_rows.values()), unique=("study_id", "series_instance_uid")):
        flush.series[(series.study_id, series.series_instance_uid)] = series
        flush.created_series.add(series.pk)


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
    """Add the counters of this transaction: increments in SQL, rows in primary-key order (series, then
    studies) so that concurrent batches never deadlock and never lose an update."""
    series_table, study_table = _qn(Series._meta.db_table), _qn(Study._meta.db_table)
    modalities = {}
    if flush.new_modalities:
        # Read under a lock (FOR NO KEY UPDATE: inserts referencing the study are not blocked).
        modalities = dict(Study.objects.select_for_update(no_key=True).filter(pk__in=flush.new_modalities)
                          .order_by("pk").values_list("pk", "modalities_in_study"))
    now = Study._meta.get_field("last_received_at").get_db_prep_save(timezone.now(), connection)
    with sent_together(), connection.cursor() as cursor:
        for pk in sorted(flush.series_counts):
            count, size = flush.series_counts[pk]
            sql = (f"UPDATE {series_table} SET number_of_instances = number_of_instances + %s, "  # noqa: S608
                   "total_size = total_size + %s WHERE id = %s")
            cursor.execute(sql, [count, size, pk])
        for pk in sorted(flush.study_counts):
            count, size, new_series = flush.study_counts[pk]
            # new images for a deleted study bring it back (deleted_at cleared)
            assignments = ["number_of_instances = number_of_instances + %s", "total_size = total_size + %s",
                           "last_received_at = %s", "deleted_at = NULL"]
            params = [count, size, now]
            if new_series:
                assignments.append("number_of_series = number_of_series + %s")
                params.append(new_series)
            if pk in flush.new_modalities:
                current = modalities.get(pk) or ""
                for modality in flush.new_modalities[pk]:
                    if f"\\{modality}\\" not in current:
                        current = (current or "\\") + f"{modality}\\"
                assignments.append("modalities_in_study = %s")
                params.append(current)
            cursor.execute(f"UPDATE {study_table} SET {', '.join(assignments)} WHERE id = %s",  # noqa: S608 - values bound
                           [*params, pk])


def ingest_files(*, organization: Organization, files: list[tuple[str, BinaryIO]], source: str,
                 expected_study_uid: str | None = None, jurisdiction: tuple[str, str] | None = None,
                 actor=None, request=None) -> list[IngestOutcome]:
    """Ingest several files in one ``IngestBatch``; one audit row per study touched (not one per instance),
    committed with the instances it records."""
    audit = functools.partial(audit_ingest, organization=organization, source=source, actor=actor, request=request)
    with IngestBatch(audit=audit) as batch:
        return [ingest_stream(organization=organization, stream=stream, filename=name, source=source,
                              expected_study_uid=expected_study_uid, jurisdiction=jurisdiction, batch=batch)
                for name, stream in files]


def audit_ingest(outcomes: list[IngestOutcome], *, organization: Organization, source: str, actor=None,
                 request=None, api_key=None, extra: dict | None = None) -> None:
    """One audit row per study touched, with the counts per outcome (an API key is named by its prefix); then
    the higher layers hear of the studies that received images (``studies.hooks``: every door calls this)."""
    per_study: dict[str, Counter] = {}
    for outcome in outcomes:
        per_study.setdefault(outcome.study_instance_uid or "-", Counter())[outcome.status] += 1
    who = {"api_key": api_key.prefix} if api_key is not None else {}
    for study_uid, counts in per_study.items():
        audit_record(action="study.ingested", actor=actor, request=request, organization=organization,
                     object_type="studies.study", object_id=study_uid,
                     extra={"source": source, **counts, **who, **(extra or {})})
    stored = sorted({o.instance.study_id for o in outcomes if o.status == Status.STORED and o.instance is not None})
    hooks.studies_received(organization_id=organization.pk, study_ids=stored, source=source)
