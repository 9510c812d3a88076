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
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from core.sql import insert_rows
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
from studies.ingest_rows import (
    Flush,
    RowCache,
    add_counters,
    create_rows,
    existing_uids,
    new_instance,
    remember,
    rows_for,
    unknown_rows,
)
from studies.models import Instance

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
    flush = Flush(rows)
    try:
        with transaction.atomic():
            existing: dict[tuple[int, str], Instance] = {}
            by_org: dict[int, list[str]] = {}
            for item in pending:
                by_org.setdefault(item.organization.pk, []).append(item.parsed.sop_uid)
            for org_pk, uids in by_org.items():
                # The studies and series not known yet come with the same query (a one-instance request
                # then costs one SELECT before its INSERT).
                known = existing_uids(org_pk, uids, flush, wanted=unknown_rows(pending, flush, org_pk))
                if not known:  # the common case: one cheap query, no rows to build
                    continue
                for instance in (Instance.objects.select_related("study", "series")
                                 .filter(organization_id=org_pk, sop_instance_uid__in=known)):
                    existing[(org_pk, instance.sop_instance_uid)] = instance
            create_rows(pending, flush)
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
                study, series, series_created, modality = rows_for(item, flush)
                instance = new_instance(item, study, series, now)
                new.append(instance)
                stored.append((item, instance))
                remember(flush, item, study, series, series_created, modality)
            insert_rows(new)
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
            add_counters(flush)
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
    flush = Flush(rows)
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
                        remember(flush, item, *stored)
            add_counters(flush)
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


def _store_one(item: _Pending, flush: Flush, *, defer_cache: bool = False):
    """Index one instance and write its file, as the last step (the caller's transaction or savepoint)."""
    organization, parsed = item.organization, item.parsed
    found = (Instance.objects.filter(organization=organization, sop_instance_uid=parsed.sop_uid)
             .values_list("pk", flat=True)[:1])
    if found:
        _set_existing(item, _find_existing(organization, parsed.sop_uid))
        return None
    study, series, series_created, modality = rows_for(item, flush)
    instance = new_instance(item, study, series, timezone.now())
    instance.save(force_insert=True)
    flush.written.append(instance.storage_key)
    written = Written()
    write_file(instance.storage_key, item.path, written)
    written.sync()
    item.outcome.status, item.outcome.instance = Status.STORED, instance
    stored = (study, series, series_created, modality)
    if not defer_cache:
        remember(flush, item, *stored)
    return stored


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
