"""Reading untrusted DICOM safely: UID rules, parsing with every failure turned into a clear reason.

Never ``force=True``: a file must carry the 128-byte preamble and ``DICM``. Every exception a
malformed file can raise inside pydicom becomes a ``DicomRejected`` with a reason a person can read.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from datetime import date

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
# The elements whose values are bulk data: kept out of the stored DICOM JSON and served by URI.
BULK_TAGS = {Tag(0x7FE00010), Tag(0x7FE00008), Tag(0x7FE00009), Tag(0x54001010), Tag(0x00420011)}
BULK_THRESHOLD = 64 * 1024  # other binary values above this are served by URI too
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
BULK_PLACEHOLDER = "__INSTANCE_URL__"
MAX_SEQUENCE_DEPTH = 32
PARSE_ERRORS = (InvalidDicomError, OSError, RecursionError, ValueError, KeyError, EOFError, struct.error,
                TypeError, AttributeError, IndexError, NotImplementedError, OverflowError, UnicodeError)


class DicomRejected(Exception):
    """The file is not acceptable; ``reason`` says why in words a technologist can act on."""

    def __init__(self, reason: str, *, code: str = "invalid_dicom") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def uid_problem(uid: str | None) -> str | None:
    """Why a UID is not acceptable (None when it is): digits and dots, no leading zeros, at most 64 chars."""
    if not uid:
        return "is missing"
    if len(uid) > 64:
        return f"is longer than 64 characters ({len(uid)})"
    if not UID_RE.match(uid):
        return "may contain only digits and dots (no leading zeros, no empty components)"
    return None


def require_uid(uid: str | None, name: str) -> str:
    problem = uid_problem(uid)
    if problem:
        raise DicomRejected(f"{name} {problem}: {str(uid)[:80]!r}", code="invalid_uid")
    return uid  # type: ignore[return-value]


def parse_da(value) -> date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    # NUL and other control characters are not valid in DICOM text and PostgreSQL refuses NUL.
    return "".join(ch for ch in str(value) if ch >= " " or ch in "\t").strip()[:limit]


def int_or_none(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class ParsedInstance:
    """What ingest needs from one file, read once."""

    dataset: Dataset
    transfer_syntax_uid: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    pixel_data_offset: int | None
    pixel_data_length: int | None
    dicom_json: str


def _depth(ds: Dataset, level: int = 0) -> int:
    """How deep sequences nest. Looks only at sequence elements, so deferred bulk data stays unread."""
    deepest = level
    for tag in list(ds.keys()):
        vr = getattr(ds.get_item(tag, keep_deferred=True), "VR", None) or dictionary_vr_or_none(tag)
        if vr != "SQ":
            continue
        for item in ds[tag].value:
            deepest = max(deepest, _depth(item, level + 1))
            if deepest > MAX_SEQUENCE_DEPTH:
                return deepest
    return deepest


def dictionary_vr_or_none(tag) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def read_instance(path: str, file_size: int) -> ParsedInstance:
    """Parse a Part 10 file from disk (large values are deferred, never loaded)."""
    try:
        ds = pydicom.dcmread(path, defer_size=1024)
        # Look at the raw elements first, before anything converts (and so reads) their values.
        offset = length = None
        bulk: dict[str, str] = {}
        for tag in list(ds.keys()):
            raw = ds.get_item(tag, keep_deferred=True)
            value_length = getattr(raw, "length", None)
            value_tell = getattr(raw, "value_tell", None)
            vr = getattr(raw, "VR", None) or dictionary_vr_or_none(tag) or ""
            defined = value_length is not None and value_length != 0xFFFFFFFF
            if defined and value_tell is not None and value_tell + value_length > file_size:
                raise DicomRejected(f"the file is truncated: element ({tag.group:04X},{tag.element:04X}) "
                                    f"needs {value_length} bytes but the file ends first")
            if tag == Tag(0x7FE00010):
                offset, length = value_tell, value_length
            if tag in BULK_TAGS or (vr in BINARY_VRS and defined and value_length > BULK_THRESHOLD):
                bulk[f"{tag:08X}"] = vr or "OB"
                del ds[tag]
        transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
        if not transfer_syntax:
            raise DicomRejected("the file meta information has no TransferSyntaxUID")
        require_uid(transfer_syntax, "TransferSyntaxUID")
        study_uid = require_uid(str(ds.get("StudyInstanceUID", "") or ""), "StudyInstanceUID")
        series_uid = require_uid(str(ds.get("SeriesInstanceUID", "") or ""), "SeriesInstanceUID")
        sop_uid = require_uid(str(ds.get("SOPInstanceUID", "") or ""), "SOPInstanceUID")
        sop_class_uid = require_uid(str(ds.get("SOPClassUID", "") or ""), "SOPClassUID")
        if _depth(ds) > MAX_SEQUENCE_DEPTH:
            raise DicomRejected(f"sequences are nested deeper than {MAX_SEQUENCE_DEPTH} levels")
        if offset is not None and length == 0xFFFFFFFF:
            length = file_size - offset  # encapsulated: fragments run to the end of the data set
        body = ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD,
                               bulk_data_element_handler=lambda el: f"{BULK_PLACEHOLDER}/bulkdata/{el.tag:08X}")
        for tag_hex, vr in bulk.items():
            body[tag_hex] = {"vr": "OW" if vr in ("OW", "OB or OW") else vr.split(" ")[0],
                             "BulkDataURI": f"{BULK_PLACEHOLDER}/bulkdata/{tag_hex}"}
        dicom_json = json.dumps(dict(sorted(body.items())), separators=(",", ":"))
    except DicomRejected:
        raise
    except InvalidDicomError as exc:
        raise DicomRejected(f"not a DICOM Part 10 file: {exc}") from exc
    except RecursionError as exc:
        raise DicomRejected("sequences are nested too deeply to read") from exc
    except PARSE_ERRORS as exc:
        raise DicomRejected(f"the file could not be read as DICOM ({exc.__class__.__name__}: {str(exc)[:200]})") \
            from exc
    return ParsedInstance(dataset=ds, transfer_syntax_uid=transfer_syntax, study_uid=study_uid,
                          series_uid=series_uid, sop_uid=sop_uid, sop_class_uid=sop_class_uid,
                          pixel_data_offset=offset, pixel_data_length=length, dicom_json=dicom_json)
