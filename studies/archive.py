"""Browser uploads: one file per request, which is a DICOM file, a DICOMDIR or a .zip (a CD/DVD export).

The kind is decided by the bytes, never by the name. A zip is checked as a whole before a single
entry is read: entry count, total expanded size and expansion ratio of the archive and of each entry,
entries whose data overlap (zip bombs), and every entry name and type (absolute paths, ``..``, links:
zip-slip). While an entry is decompressed its real output is counted again against the same limits
(``_LimitedEntry``), before ingest writes anything. One unsafe entry refuses the whole archive, so nothing of
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
REFUSED_ARCHIVE_CODES = frozenset({"zip_unsafe", "zip_too_large", "zip_too_many_entries", "zip_ratio",
                                   "zip_overlapping"})
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


def _expanded_limit() -> int:
    return min(settings.DICOM_MAX_UPLOAD_BYTES, settings.DICOM_ZIP_MAX_EXPANDED_BYTES)


def ratio_problem(expanded: int, compressed: int) -> str | None:
    """Why ``compressed`` bytes expanding to ``expanded`` look like a bomb, or None. Small expansions are let be
    (a tiny blank file compresses a thousandfold and harms nobody)."""
    if expanded <= settings.DICOM_ZIP_RATIO_FLOOR_BYTES:
        return None
    ratio = expanded / max(compressed, 1)
    if ratio <= settings.DICOM_ZIP_MAX_RATIO:
        return None
    return (f"{compressed:,} compressed bytes expand to {expanded / _MB:,.1f} MB, {ratio:,.0f} times, more than "
            f"the limit of {settings.DICOM_ZIP_MAX_RATIO} times")


def overlapping_entry(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    """The first entry whose compressed data runs into the next entry's header (or the central directory): many
    entries sharing one stream are how a small zip makes a server decompress gigabytes. Reads 30-byte local
    headers only."""
    fp = archive.fp
    spans = []
    for info in sorted(infos, key=lambda i: i.header_offset):
        fp.seek(info.header_offset)
        header = fp.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            return info  # the central directory points at no local header: refused like an overlap
        name_length, extra_length = struct.unpack_from("<HH", header, 26)
        spans.append((info, info.header_offset, info.header_offset + 30 + name_length + extra_length +
                      info.compress_size))
    end_of_data = getattr(archive, "start_dir", None)
    for (info, _start, end), following in zip(spans, [*spans[1:], None], strict=False):
        limit = following[1] if following else end_of_data
        if limit is not None and end > limit:
            return info
    return None


def _plan_archive(archive: zipfile.ZipFile, name: str, size: int) -> tuple[list[zipfile.ZipInfo], UploadResult | None]:
    """Check the whole archive from its central directory, before any entry is decompressed."""
    infos = archive.infolist()
    if len(infos) > settings.DICOM_ZIP_MAX_ENTRIES:
        return [], _archive_rejected(
            name, f"the archive has {len(infos)} entries, more than the limit of {settings.DICOM_ZIP_MAX_ENTRIES}; "
                  "nothing was extracted or stored", code="zip_too_many_entries", size=size)
    declared = sum(info.file_size for info in infos)
    if declared > _expanded_limit():
        return [], _archive_rejected(
            name, f"the archive would expand to {declared / _MB:,.1f} MB, more than the limit of "
                  f"{_expanded_limit() / _MB:,.0f} MB (a zip bomb?); nothing was extracted or stored",
            code="zip_too_large", size=size)
    if problem := ratio_problem(declared, size):
        return [], _archive_rejected(name, f"the archive {name!r} is refused: {problem} (a zip bomb?); nothing was "
                                           "extracted or stored", code="zip_ratio", size=size)
    for info in infos:
        if problem := ratio_problem(info.file_size, info.compress_size):
            return [], _archive_rejected(
                name, f"the entry {info.filename[:200]!r} of {name!r} is refused: {problem} (a zip bomb?); the whole "
                      "archive was refused and nothing was stored", code="zip_ratio", size=size)
    if (overlap := overlapping_entry(archive, infos)) is not None:
        return [], _archive_rejected(
            name, f"the entry {overlap.filename[:200]!r} of {name!r} overlaps another entry's data (a zip bomb "
                  "shares one compressed stream between entries); the whole archive was refused and nothing was "
                  "stored", code="zip_overlapping", size=size)
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


class ExpansionLimit(ValueError):
    """An entry's real output passed a limit while it was being decompressed (nothing of it is stored)."""


@dataclass
class _Budget:
    """What the whole archive may still expand to, counted from the bytes really decompressed."""

    left: int


class _LimitedEntry:
    """An entry's stream that counts what it really yields (not what the directory declares) and stops at the
    entry's declared size, the archive's expansion budget and the ratio limit, before ingest stores anything."""

    def __init__(self, stream: BinaryIO, info: zipfile.ZipInfo, budget: _Budget) -> None:
        self._stream, self._info, self._budget, self.read_so_far = stream, info, budget, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.read_so_far += len(chunk)
        self._budget.left -= len(chunk)
        name = self._info.filename[:200]
        if self.read_so_far > self._info.file_size:
            raise ExpansionLimit(f"the entry {name!r} expands past the {self._info.file_size:,} bytes it declares")
        if self._budget.left < 0:
            raise ExpansionLimit(f"the archive expands past the limit of {_expanded_limit() / _MB:,.0f} MB at the "
                                 f"entry {name!r}")
        if problem := ratio_problem(self.read_so_far, self._info.compress_size):
            raise ExpansionLimit(f"the entry {name!r} is refused: {problem}")
        return chunk

    def __getattr__(self, name: str):  # seek/tell/readinto and the rest, as the underlying entry stream
        return getattr(self._stream, name)


def _ingest_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, organization: Organization,
                  source: str, jurisdiction, batch: IngestBatch, budget: _Budget) -> UploadResult | IngestOutcome:
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
            return ingest_stream(organization=organization, stream=_LimitedEntry(fh, info, budget),
                                 filename=label, source=source, jurisdiction=jurisdiction, batch=batch)
    except ExpansionLimit as exc:
        return UploadResult(file=label, status=Status.REJECTED, code="zip_expansion", reason=str(exc))
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
        budget = _Budget(left=_expanded_limit())
        with IngestBatch(audit=audit) as batch:  # few commits for the archive; outcomes final once it exits
            for info in files:
                settled.append(_ingest_entry(archive, info, organization=organization, source=source,
                                             jurisdiction=jurisdiction, batch=batch, budget=budget))
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
