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
                  max_size: int | None = None) -> IngestOutcome:
    """Ingest one file from a stream for ``organization``; never raises for bad input."""
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


def _existing_outcome(existing: Instance, *, sha256: str, filename: str, size: int) -> IngestOutcome:
    common = {"filename": filename, "sop_instance_uid": existing.sop_instance_uid,
              "sop_class_uid": existing.sop_class_uid, "study_instance_uid": existing.study.study_instance_uid,
              "series_instance_uid": existing.series.series_instance_uid, "size": size, "instance": existing}
    if existing.sha256 == sha256:
        return IngestOutcome(status=Status.DUPLICATE, reason="already stored (identical bytes)", **common)
    return IngestOutcome(status=Status.CONFLICT, code="conflict",
                         reason="an instance with this SOPInstanceUID is already stored with different content; "
                                "it was not overwritten", **common)


def _index_and_store(*, organization, parsed: ParsedInstance, path, size, sha256, filename, source,
                     jurisdiction) -> IngestOutcome:
    try:
        return _index_and_store_once(organization=organization, parsed=parsed, path=path, size=size,
                                     sha256=sha256, filename=filename, source=source, jurisdiction=jurisdiction)
    except IntegrityError:
        # Another request stored the same SOP instance at the same moment: report what is there now.
        existing = (Instance.objects.select_related("study", "series")
                    .filter(organization=organization, sop_instance_uid=parsed.sop_uid).first())
        if existing is None:
            raise
        return _existing_outcome(existing, sha256=sha256, filename=filename, size=size)


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


@transaction.atomic
def _index_and_store_once(*, organization, parsed: ParsedInstance, path, size, sha256, filename, source,
                          jurisdiction) -> IngestOutcome:
    ds = parsed.dataset
    existing = (Instance.objects.select_related("study", "series")
                .filter(organization=organization, sop_instance_uid=parsed.sop_uid).first())
    if existing is not None:
        return _existing_outcome(existing, sha256=sha256, filename=filename, size=size)

    now = timezone.now()
    # The study row is locked (FOR UPDATE) as it is read: counters and modalities change together,
    # one writer at a time.
    study, _ = Study.objects.select_for_update().get_or_create(
        organization=organization, study_instance_uid=parsed.study_uid,
        defaults=_study_defaults(organization, ds, jurisdiction))
    modality = text(ds, "Modality", 16)
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
        burned_in_annotation=text(ds, "BurnedInAnnotation", 16).upper(), size=size, sha256=sha256,
        storage_key=key, pixel_data_offset=parsed.pixel_data_offset, pixel_data_length=parsed.pixel_data_length,
        dicom_json=parsed.dicom_json, received_at=now, received_via=source)
    Series.objects.filter(pk=series.pk).update(number_of_instances=F("number_of_instances") + 1,
                                               total_size=F("total_size") + size)
    study_updates = {"number_of_instances": F("number_of_instances") + 1, "total_size": F("total_size") + size,
                     "last_received_at": now}
    if series_created:
        study_updates["number_of_series"] = F("number_of_series") + 1
        if modality and f"\\{modality}\\" not in (study.modalities_in_study or ""):
            study_updates["modalities_in_study"] = (study.modalities_in_study or "\\") + f"{modality}\\"
    if study.deleted_at is not None:
        study_updates["deleted_at"] = None  # new images for a deleted study bring it back
    Study.objects.filter(pk=study.pk).update(**study_updates)
    _write_file(key, path)
    return IngestOutcome(filename=filename, status=Status.STORED, sop_instance_uid=parsed.sop_uid,
                         sop_class_uid=parsed.sop_class_uid, study_instance_uid=parsed.study_uid,
                         series_instance_uid=parsed.series_uid, size=size, instance=instance)


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
