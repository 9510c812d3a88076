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
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
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
                  max_size: int | None = None, batch: IngestBatch | None = None) -> IngestOutcome:
    """Ingest one file from a stream for ``organization``; never raises for bad input.

    With ``batch``, a readable instance is handed to the batch and its outcome (status ``pending``)
    is completed when the batch flushes; refusals are final at once. Without, the instance is
    indexed and stored before this returns.
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
            _store_items(pending, raise_errors=False)


PROCESSING_FAILURE_REASON = "the instance could not be stored because of a server-side failure; retry later"


class _Flush:
    """What one transaction of a batch learned: rows to reuse, counters to add, files written."""

    def __init__(self) -> None:
        self.studies: dict[tuple[int, str], Study] = {}
        self.series: dict[tuple[int, str], Series] = {}
        self.series_counts: dict[int, list[int]] = {}  # series pk -> [instances, bytes]
        self.study_counts: dict[int, list[int]] = {}  # study pk -> [instances, bytes, new series]
        self.new_modalities: dict[int, list[str]] = {}
        self.written: list[str] = []


def _store_items(pending: list[_Pending], *, raise_errors: bool) -> None:
    """Store ``pending`` in one transaction, one savepoint per instance when there are several."""
    flush = _Flush()
    alone = len(pending) == 1
    # Every transaction takes its row locks in one global order (study, series, instance UIDs; counters
    # by primary key at the end), so concurrent batches wait for each other but never deadlock. The
    # sort is stable: of one SOP instance sent twice, the first is the one stored.
    pending = sorted(pending, key=lambda i: (i.organization.pk, i.parsed.study_uid, i.parsed.series_uid,
                                             i.parsed.sop_uid))
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
    except Exception as exc:
        _remove(flush.written)
        for item in pending:
            if item.outcome.status in (Status.PENDING, Status.STORED):
                item.outcome.instance = None
                _resolve_failure(item, exc, raise_errors=raise_errors)
    finally:
        for item in pending:
            if os.path.exists(item.path):
                os.unlink(item.path)


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
    organization, parsed, size = item.organization, item.parsed, item.size
    ds = parsed.dataset
    found = (Instance.objects.filter(organization=organization, sop_instance_uid=parsed.sop_uid)
             .values_list("pk", flat=True)[:1])
    if found:
        _set_existing(item.outcome, _find_existing(organization, parsed.sop_uid), sha256=item.sha256)
        return None
    now = timezone.now()
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
    key = storage_key(organization, parsed.study_uid, parsed.series_uid, parsed.sop_uid)
    instance = Instance.objects.create(
        organization=organization, study=study, series=series, sop_instance_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid, instance_number=int_or_none(ds, "InstanceNumber"),
        transfer_syntax_uid=parsed.transfer_syntax_uid, number_of_frames=int_or_none(ds, "NumberOfFrames") or 1,
        rows=int_or_none(ds, "Rows"), columns=int_or_none(ds, "Columns"),
        bits_allocated=int_or_none(ds, "BitsAllocated"), samples_per_pixel=int_or_none(ds, "SamplesPerPixel"),
        burned_in_annotation=text(ds, "BurnedInAnnotation", 16).upper(), size=size, sha256=item.sha256,
        storage_key=key, pixel_data_offset=parsed.pixel_data_offset, pixel_data_length=parsed.pixel_data_length,
        dicom_json=parsed.dicom_json, received_at=now, received_via=item.source)
    flush.written.append(key)
    _write_file(key, item.path)
    item.outcome.status, item.outcome.instance = Status.STORED, instance
    stored = (study, series, series_created, modality)
    if not defer_cache:
        _remember(flush, item, *stored)
    return stored


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
        with open(path, "rb") as fh:
            saved = default_storage.save(key, File(fh, name=os.path.basename(key)))
        if saved != key:
            default_storage.delete(saved)
            raise OSError(f"storage saved {saved!r} instead of {key!r}")
    except Exception:
        logger.exception("storing %s failed; the index change is rolled back", key)
        if default_storage.exists(key):
            default_storage.delete(key)
        raise


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
