"""Browser uploads: one file per request, which is a DICOM file, a DICOMDIR or a .zip (a CD/DVD export).

The kind is decided by the bytes, never by the name. A zip is checked as a whole before a single
entry is read: entry count and total uncompressed size (zip bombs), and every entry name and type
(absolute paths, ``..``, links: zip-slip). One unsafe entry refuses the whole archive, so nothing of
it is stored. Entries are then streamed one by one into the one ingest service; their names are
labels for the result list only (ingest builds every storage key from validated UIDs), and nothing
is ever extracted to a path. DICOMDIR (the index of a CD) and non-DICOM files are skipped with a
reason: the images it lists are ingested from their own files, found by content.
"""

from __future__ import annotations

import functools
import stat
import struct
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import AuditEvent, Organization
from accounts.policy import Actor
from core.errors import NotFound
from studies import policy
from studies.ingest import IngestBatch, IngestOutcome, Source, Status, audit_ingest, ingest_files, ingest_stream

SKIPPED = "skipped"  # not an image to ingest (DICOMDIR, a README on a CD): not an error
REFUSED_ARCHIVE_CODES = frozenset({"zip_unsafe", "zip_too_large", "zip_too_many_entries"})
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty archive
HEAD_BYTES = 4096
_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_MB = 1024 * 1024


@dataclass
class UploadResult:
    """What the upload page reports for one uploaded file (and, for an archive, for each entry)."""

    file: str
    status: str
    reason: str = ""
    code: str = ""
    study_instance_uid: str = ""
    sop_instance_uid: str = ""
    size: int = 0
    entries: list[UploadResult] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        body = {"file": self.file, "status": self.status, "reason": self.reason, "code": self.code,
                "study_instance_uid": self.study_instance_uid, "sop_instance_uid": self.sop_instance_uid,
                "size": self.size}
        if self.entries is not None:
            body["entries"] = [entry.as_dict() for entry in self.entries]
            body["counts"] = dict(self.counts)
        return body

    @property
    def study_uids(self) -> set[str]:
        found = {self.study_instance_uid} if self.study_instance_uid else set()
        for entry in self.entries or ():
            found |= entry.study_uids
        return found


def _from_outcome(outcome: IngestOutcome) -> UploadResult:
    return UploadResult(file=outcome.filename, status=outcome.status, reason=outcome.reason, code=outcome.code,
                        study_instance_uid=outcome.study_instance_uid, sop_instance_uid=outcome.sop_instance_uid,
                        size=outcome.size)


# --- what kind of file is it -----------------------------------------------------------------------

def media_storage_sop_class(head: bytes) -> str | None:
    """MediaStorageSOPClassUID from the file meta group of a Part 10 file's first bytes, or None.

    Group 0002 is always explicit VR little endian, so a few lines read it without handing the
    untrusted bytes to a full parser.
    """
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    pos = 132
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            return None
        vr = head[pos + 4:pos + 6]
        if vr in _LONG_LENGTH_VRS:
            if pos + 12 > len(head):
                return None
            length, value_at = struct.unpack_from("<I", head, pos + 8)[0], pos + 12
        else:
            length, value_at = struct.unpack_from("<H", head, pos + 6)[0], pos + 8
        if element == 0x0002:
            return head[value_at:value_at + length].rstrip(b"\x00 ").decode("ascii", "replace")
        pos = value_at + length
    return None


def is_dicomdir(head: bytes) -> bool:
    return media_storage_sop_class(head) == DICOMDIR_SOP_CLASS


def is_part10(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def is_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGIC


def _read_head(fileobj: BinaryIO) -> bytes:
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(0)
    return head


_DICOMDIR_REASON = "DICOMDIR is the index of a CD/DVD export, not an image: the images it lists are read from " \
                   "their own files"


# --- zip archives ----------------------------------------------------------------------------------

def entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an archive entry is unsafe to accept (zip-slip), or None."""
    normalized = info.filename.replace("\\", "/")  # zipfile already cut the name at any NUL byte
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":" and normalized[0].isalpha()):
        return "its path is absolute"
    if ".." in normalized.split("/"):
        return "its path contains '..' (it would point outside the archive)"
    mode = info.external_attr >> 16
    if stat.S_IFMT(mode) == stat.S_IFLNK:
        return "it is a symbolic link"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "it is not a regular file (device, pipe or socket)"
    return None


def _archive_rejected(name: str, reason: str, *, code: str, size: int,
                      entries: list[UploadResult] | None = None) -> UploadResult:
    return UploadResult(file=name, status=Status.REJECTED, reason=reason, code=code, size=size,
                        entries=entries or [], counts=Counter(e.status for e in entries or []))


def _plan_archive(archive: zipfile.ZipFile, name: str, size: int) -> tuple[list[zipfile.ZipInfo], UploadResult | None]:
    """Check the whole archive from its central directory, before any entry is decompressed."""
    infos = archive.infolist()
    if len(infos) > settings.DICOM_ZIP_MAX_ENTRIES:
        return [], _archive_rejected(
            name, f"the archive has {len(infos)} entries, more than the limit of {settings.DICOM_ZIP_MAX_ENTRIES}; "
                  "nothing was extracted or stored", code="zip_too_many_entries", size=size)
    declared = sum(info.file_size for info in infos)
    if declared > settings.DICOM_MAX_UPLOAD_BYTES:
        return [], _archive_rejected(
            name, f"the archive would expand to {declared / _MB:,.1f} MB, more than the limit of "
                  f"{settings.DICOM_MAX_UPLOAD_BYTES / _MB:,.0f} MB (a zip bomb?); nothing was extracted or stored",
            code="zip_too_large", size=size)
    unsafe = [UploadResult(file=info.filename[:300], status=Status.REJECTED, code="unsafe_entry",
                           reason=f"unsafe archive entry: {problem}")
              for info in infos if (problem := entry_problem(info))]
    if unsafe:
        listed = ", ".join(repr(e.file) for e in unsafe[:3]) + (" …" if len(unsafe) > 3 else "")
        return [], _archive_rejected(
            name, f"the archive contains {len(unsafe)} unsafe entr{'y' if len(unsafe) == 1 else 'ies'} "
                  f"({listed}: {unsafe[0].reason.removeprefix('unsafe archive entry: ')}); "
                  "the whole archive was refused and nothing was stored", code="zip_unsafe", size=size,
            entries=unsafe)
    files = [info for info in infos if not info.is_dir()]
    if not files:
        return [], _archive_rejected(name, "the archive is empty", code="zip_empty", size=size)
    return files, None


def _ingest_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, organization: Organization,
                  source: str, jurisdiction, batch: IngestBatch) -> UploadResult | IngestOutcome:
    """The entry's result when it is settled at once (skipped, refused), else its ingest outcome (completed
    when ``batch`` flushes)."""
    label = info.filename[:300]
    if info.flag_bits & 0x1:
        return UploadResult(file=label, status=Status.REJECTED, code="encrypted",
                            reason="the entry is encrypted (password-protected zips are not supported)")
    try:
        with archive.open(info) as fh:
            head = fh.read(HEAD_BYTES)
        if not is_part10(head):
            return UploadResult(file=label, status=SKIPPED, code="not_dicom", size=info.file_size,
                                reason="not a DICOM file (no 'DICM' after the 128-byte preamble)")
        if is_dicomdir(head):
            return UploadResult(file=label, status=SKIPPED, code="dicomdir", size=info.file_size,
                                reason=_DICOMDIR_REASON)
        with archive.open(info) as fh:
            return ingest_stream(organization=organization, stream=fh, filename=label, source=source,
                                 jurisdiction=jurisdiction, batch=batch)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
        # A corrupt entry, a CRC mismatch (sizes that lie), an unsupported compression method. Ingest
        # stores only after the whole entry was read, so nothing of it was kept.
        return UploadResult(file=label, status=Status.REJECTED, code="bad_entry",
                            reason=f"the entry could not be read from the archive ({str(exc)[:200]})")


def _summary(counts: Counter) -> str:
    words = {Status.STORED: "stored", Status.DUPLICATE: "already present", Status.CONFLICT: "conflicting",
             Status.REJECTED: "rejected", SKIPPED: "skipped"}
    return ", ".join(f"{counts[k]} {w}" for k, w in words.items() if counts.get(k))


def ingest_archive(*, organization: Organization, fileobj: BinaryIO, filename: str, size: int,
                   source: str = Source.UPLOAD, jurisdiction=None,
                   audit: Callable[[list[IngestOutcome]], object] | None = None
                   ) -> tuple[UploadResult, list[IngestOutcome]]:
    """Check a zip as a whole, then ingest each DICOM entry. Returns the result and the ingest outcomes.
    ``audit``: how to record them, in the transactions that store them (``IngestBatch``)."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        return _archive_rejected(filename, f"not a readable zip archive ({str(exc)[:200]})", code="zip_invalid",
                                 size=size), []
    with archive:
        files, refused = _plan_archive(archive, filename, size)
        if refused is not None:
            return refused, []
        settled: list[UploadResult | IngestOutcome] = []
        with IngestBatch(audit=audit) as batch:  # few commits for the archive; outcomes final once it exits
            for info in files:
                settled.append(_ingest_entry(archive, info, organization=organization, source=source,
                                             jurisdiction=jurisdiction, batch=batch))
    outcomes = [e for e in settled if isinstance(e, IngestOutcome)]
    entries = [_from_outcome(e) if isinstance(e, IngestOutcome) else e for e in settled]
    counts = Counter(e.status for e in entries)
    ok = counts[Status.STORED] + counts[Status.DUPLICATE]
    if ok == 0:
        status, code = Status.REJECTED, "zip_no_dicom"
        reason = "no DICOM image in the archive could be stored" + (f" ({_summary(counts)})" if counts else "")
    else:
        status = Status.STORED if counts[Status.STORED] else Status.DUPLICATE
        code = "partial" if counts[Status.REJECTED] or counts[Status.CONFLICT] else ""
        reason = _summary(counts)
    uids = {e.study_instance_uid for e in entries if e.study_instance_uid}
    return UploadResult(file=filename, status=status, reason=reason, code=code, size=size, entries=entries,
                        counts=dict(counts), study_instance_uid=next(iter(uids)) if len(uids) == 1 else ""), outcomes


# --- one uploaded file -----------------------------------------------------------------------------

def upload_ingest(*, actor: Actor, organization: Organization, fileobj: BinaryIO, filename: str, size: int,
                  skip_non_dicom: bool = False, request: HttpRequest | None = None) -> UploadResult:
    """Ingest one file sent from the upload page: a DICOM instance, a DICOMDIR (skipped) or a zip.

    Only the center's admins and technologists send studies; anyone else is told the page does not
    exist. Each study touched gets one audit row (who sent what, how many stored/duplicate/refused).
    ``skip_non_dicom``: the file is part of a dropped folder (a CD/DVD export carries a viewer, a
    README...), so a file without the DICOM preamble is skipped rather than reported as rejected.
    """
    if not policy.can_send_studies(actor, organization):
        raise NotFound()
    label = (filename or "upload")[:300]
    head = _read_head(fileobj)
    if is_zip(head):
        audit = functools.partial(audit_ingest, organization=organization, source=Source.UPLOAD, actor=actor.user,
                                  request=request)
        result, _outcomes = ingest_archive(organization=organization, fileobj=fileobj, filename=label, size=size,
                                           audit=audit)
        if result.code in REFUSED_ARCHIVE_CODES:  # a zip-slip or zip-bomb attempt is a security event
            audit_record(action="study.upload_refused", actor=actor.user, request=request, organization=organization,
                         outcome=AuditEvent.Outcome.DENIED, reason=result.reason[:500],
                         extra={"file": label, "code": result.code, "size": size})
    elif is_dicomdir(head):
        return UploadResult(file=label, status=SKIPPED, code="dicomdir", reason=_DICOMDIR_REASON, size=size)
    elif skip_non_dicom and not is_part10(head):
        return UploadResult(file=label, status=SKIPPED, code="not_dicom", size=size,
                            reason="not a DICOM file (no 'DICM' after the 128-byte preamble)")
    else:
        outcome = ingest_files(organization=organization, files=[(label, fileobj)], source=Source.UPLOAD,
                               actor=actor.user, request=request)[0]
        return _from_outcome(outcome)
    return result
