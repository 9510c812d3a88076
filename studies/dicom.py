"""Reading untrusted DICOM safely: UID rules, parsing with every failure turned into a clear reason.

Never ``force=True``: a file must carry the 128-byte preamble and ``DICM``. Every exception a
malformed file can raise inside pydicom becomes a ``DicomRejected`` with a reason a person can read.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from datetime import date

import pydicom
from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
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
                TypeError, AttributeError, IndexError, NotImplementedError, OverflowError, UnicodeError, zlib.error)
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
INT32_MAX = 2**31 - 1


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
    return _clean(str(value), limit)


def _clean(value: str, limit: int) -> str:
    # NUL and other control characters are not valid in DICOM text and PostgreSQL refuses NUL.
    if not value.isprintable():
        value = "".join(ch for ch in value if ch >= " " or ch in "\t")
    return value.strip()[:limit]


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
    # The attributes the index keeps (``index_fields``): keyword -> value, as ``text``/``int_or_none``/
    # ``parse_da`` on the data set would give them.
    fields: dict | None = None
    # Values that could not be converted (left out of the DICOM JSON and the index): said to the sender.
    warnings: list[str] | None = None

    def field(self, keyword: str):
        if self.fields is None:
            self.fields = index_fields(self.dataset, None)
        return self.fields[keyword]


def _depth(ds: Dataset, level: int = 0) -> int:
    """How deep sequences nest. Looks only at sequence elements, so deferred bulk data stays unread."""
    deepest = level
    for tag, raw in list(ds.items()):
        vr = getattr(raw, "VR", None) or dictionary_vr_or_none(tag)
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


_PIXEL_DATA = Tag(0x7FE00010)


def read_instance(path: str, file_size: int) -> ParsedInstance:
    """Parse a Part 10 file from disk (large values are deferred, never loaded)."""
    try:
        ds = pydicom.dcmread(path, defer_size=1024)
        deflated = str(ds.file_meta.get("TransferSyntaxUID", "")) == DEFLATED_LE
        # Look at the raw elements first, before anything converts (and so reads) their values.
        offset = length = None
        bulk: dict[str, str] = {}
        has_sequence = False
        for tag, raw in list(ds.items()):
            value_length = getattr(raw, "length", None)
            value_tell = getattr(raw, "value_tell", None)
            vr = getattr(raw, "VR", None) or dictionary_vr_or_none(tag) or ""
            defined = value_length is not None and value_length != 0xFFFFFFFF
            # A deflated data set's positions are in the inflated stream: the file's size says nothing.
            if defined and value_tell is not None and value_tell + value_length > file_size and not deflated:
                raise DicomRejected(f"the file is truncated: element ({tag.group:04X},{tag.element:04X}) "
                                    f"needs {value_length} bytes but the file ends first")
            if tag == _PIXEL_DATA:
                offset, length = value_tell, value_length
            if tag in BULK_TAGS or (vr in BINARY_VRS and defined and value_length > BULK_THRESHOLD):
                bulk[f"{tag:08X}"] = vr or "OB"
                del ds[tag]
            elif vr == "SQ":
                has_sequence = True
        transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
        if not transfer_syntax:
            raise DicomRejected("the file meta information has no TransferSyntaxUID")
        require_uid(transfer_syntax, "TransferSyntaxUID")
        if has_sequence and _depth(ds) > MAX_SEQUENCE_DEPTH:
            raise DicomRejected(f"sequences are nested deeper than {MAX_SEQUENCE_DEPTH} levels")
        warned: list[str] = []
        body = dataset_json_dict(ds, warned)
        fields = index_fields(ds, body)
        _check_counts(fields, warned)
        study_uid = require_uid(fields["StudyInstanceUID"], "StudyInstanceUID")
        series_uid = require_uid(fields["SeriesInstanceUID"], "SeriesInstanceUID")
        sop_uid = require_uid(fields["SOPInstanceUID"], "SOPInstanceUID")
        sop_class_uid = require_uid(fields["SOPClassUID"], "SOPClassUID")
        if offset is not None and length == 0xFFFFFFFF:
            length = max(file_size - offset, 0)  # encapsulated: fragments run to the end of the data set
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
                          pixel_data_offset=offset, pixel_data_length=length, dicom_json=dicom_json, fields=fields,
                          warnings=warned)


def _check_counts(fields: dict, warned: list[str]) -> None:
    """NumberOfFrames must be a real count (a permanent refusal, not "retry later" from a database
    constraint); other indexed numbers out of the index's range are left out, with a warning."""
    frames = fields.get("NumberOfFrames")
    if frames is not None and not 1 <= frames <= INT32_MAX:
        raise DicomRejected(f"NumberOfFrames (0028,0008) is {frames}: an image has at least one frame",
                            code="invalid_value")
    for keyword in ("SeriesNumber", "InstanceNumber", "Rows", "Columns", "BitsAllocated", "SamplesPerPixel"):
        value = fields.get(keyword)
        low = -INT32_MAX - 1 if keyword in ("SeriesNumber", "InstanceNumber") else 0
        high = 32767 if keyword in ("BitsAllocated", "SamplesPerPixel") else INT32_MAX
        if value is not None and not low <= value <= high:
            fields[keyword] = None
            warned.append(f"{keyword} {value} is out of range: left out of the index")


# --- the attributes the index keeps ---------------------------------------------------------------------
# Read from the DICOM JSON just built (a dict lookup) instead of converting each element again through
# ``Dataset.get`` (~50 µs each, ~25 per instance). Only plain JSON values are used (strings, one int);
# anything else (a PN with ideographic groups, a value of an unexpected VR, a sequence) is read from the
# data set exactly as before, so the result is always what ``text``/``int_or_none``/``parse_da``/``str``
# of ``ds.get`` give (tests/studies/test_ingest_json.py compares both).

INDEX_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
INDEX_TEXT = {"PatientID": 64, "PatientName": 324, "PatientSex": 16, "AccessionNumber": 16, "StudyDescription": 200,
              "StudyTime": 16, "StudyID": 16, "ReferringPhysicianName": 324, "InstitutionName": 200,
              "Modality": 16, "SeriesDescription": 200, "BodyPartExamined": 64, "BurnedInAnnotation": 16}
INDEX_INTS = ("SeriesNumber", "InstanceNumber", "NumberOfFrames", "Rows", "Columns", "BitsAllocated",
              "SamplesPerPixel")
INDEX_DATES = ("PatientBirthDate", "StudyDate", "SeriesDate")
_MISSING = object()


def _tag_hex(keyword: str) -> str:
    return f"{Tag(keyword):08X}"


_INDEX_KEYS = {keyword: _tag_hex(keyword) for keyword in (*INDEX_UIDS, *INDEX_TEXT, *INDEX_INTS, *INDEX_DATES)}


def _json_strings(entry) -> list[str] | None | object:
    """The values of a JSON element when they are plain strings (PN: alphabetic only); [] when it has none;
    ``_MISSING`` when they are anything else."""
    if "Value" not in entry:
        return [] if "BulkDataURI" not in entry and "InlineBinary" not in entry else _MISSING
    out = []
    for value in entry["Value"]:
        if type(value) is str:
            out.append(value)
        elif type(value) is dict and entry.get("vr") == "PN" and set(value) <= {"Alphabetic"}:
            out.append(value.get("Alphabetic", ""))
        else:
            return _MISSING
    return out


def index_fields(ds: Dataset, body: dict | None) -> dict:
    """keyword -> value of every attribute ingest indexes, equal to reading them from ``ds`` one by one."""
    fields: dict = {}
    body = body or {}
    for keyword in INDEX_UIDS:
        entry = body.get(_INDEX_KEYS[keyword])
        values = _json_strings(entry) if entry is not None else []
        if values is not _MISSING and len(values) == 1 and uid_problem(values[0]) is None:
            fields[keyword] = values[0]
        else:
            fields[keyword] = str(ds.get(keyword, "") or "")
    for keyword, limit in INDEX_TEXT.items():
        entry = body.get(_INDEX_KEYS[keyword])
        values = _json_strings(entry) if entry is not None else []
        if values is _MISSING or (entry is not None and entry.get("vr") == "PN" and len(values) > 1):
            fields[keyword] = text(ds, keyword, limit)
        else:
            fields[keyword] = _clean("\\".join(values), limit)
    for keyword in INDEX_INTS:
        entry = body.get(_INDEX_KEYS[keyword])
        if entry is None or ("Value" not in entry and "BulkDataURI" not in entry and "InlineBinary" not in entry):
            fields[keyword] = None
        elif len(entry.get("Value") or ()) == 1 and type(entry["Value"][0]) is int:
            fields[keyword] = entry["Value"][0]
        else:
            fields[keyword] = int_or_none(ds, keyword)
    for keyword in INDEX_DATES:
        entry = body.get(_INDEX_KEYS[keyword])
        values = _json_strings(entry) if entry is not None else []
        if values is _MISSING or len(values) > 1:
            fields[keyword] = parse_da(ds.get(keyword))
        else:
            fields[keyword] = parse_da(values[0] if values else None)
    return fields


# --- DICOM JSON of a data set (PS3.18 F.2), fast -------------------------------------------------------
# pydicom's ``Dataset.to_json_dict`` turns every raw element into a DataElement first (value classes,
# validation, MultiValue): ~2 ms for a CT header, most of the parse. ``dataset_json_dict`` encodes the
# common raw elements (text, UIDs, codes, dates, IS/DS, binary numbers) straight from their bytes, with
# exactly pydicom's rules, and hands everything else (sequences, binary values, AT, private or unknown
# tags, deferred values, any unusual character set or value) to pydicom element by element, so the
# result is the same dict pydicom builds (tests/studies/test_ingest.py compares both on many files).

_VALUE_ERRORS = (ValueError, TypeError, OverflowError, UnicodeError, KeyError, IndexError, struct.error,
                 NotImplementedError)


def _keyword(tag) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or "private or unknown"


def _raw_text(element) -> str:
    value = getattr(element, "value", None)
    if isinstance(value, bytes):
        value = value[:40].decode("latin-1")
    return repr(str(value)[:40])


def _bulk_uri(element) -> str:
    return f"{BULK_PLACEHOLDER}/bulkdata/{element.tag:08X}"


def reference_json_dict(ds: Dataset) -> dict:
    """pydicom's own DICOM JSON for ``ds`` (what ``dataset_json_dict`` must equal)."""
    return ds.to_json_dict(bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=_bulk_uri)


# SpecificCharacterSet values with one single-byte or UTF-8 code (no ISO 2022 code extensions).
_PLAIN_CHARSETS = {"": "iso8859", "ISO_IR 6": "iso8859", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf-8"}
_SPLIT_VRS = frozenset({"AS", "CS", "UI"})  # pydicom's multi_string: strip trailing spaces/NULs, split
_DATE_VRS = frozenset({"DA", "DT", "TM"})  # the same while pydicom.config.datetime_conversion is off
_TEXT_MULTI_VRS = frozenset({"LO", "SH", "UC"})  # split, then strip each value's trailing spaces/NULs
_TEXT_SINGLE_VRS = frozenset({"LT", "ST", "UT"})  # one value, trailing spaces/NULs stripped
_NUMBER_FORMATS = {"US": ("H", 2, int), "SS": ("h", 2, int), "UL": ("L", 4, int), "SL": ("l", 4, int),
                   "UV": ("Q", 8, int), "SV": ("q", 8, int), "FL": ("f", 4, float), "FD": ("d", 8, float)}
_IS_RE = re.compile(r"[+-]?[0-9]+")
_DS_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_LUT_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})


def _fast_value(vr: str, raw: bytes, text_codec: str) -> list | None | bool:
    """The JSON ``Value`` list for one raw element; None: no value; False: not handled here."""
    if vr in _NUMBER_FORMATS:
        fmt, size, kind = _NUMBER_FORMATS[vr]
        if len(raw) % size:
            return False
        return [kind(v) for v in struct.unpack(f"<{len(raw) // size}{fmt}", raw)] or None
    if 27 in raw:  # ESC: ISO 2022 code extensions, left to pydicom
        return False
    if vr in _TEXT_MULTI_VRS or vr in _TEXT_SINGLE_VRS or vr == "PN":
        try:
            text_value = raw.decode(text_codec)
        except UnicodeDecodeError:
            return False
    else:
        text_value = raw.decode("latin-1")
    if vr in _SPLIT_VRS or (vr in _DATE_VRS and not pydicom_config.datetime_conversion):
        items = text_value.rstrip(" \x00").split("\\")
    elif vr in _TEXT_MULTI_VRS:
        items = [v.rstrip("\x00 ") for v in text_value.split("\\")]
    elif vr in _TEXT_SINGLE_VRS:
        items = [text_value.rstrip("\x00 ")]
    elif vr == "UR":
        items = [text_value.rstrip()]
    elif vr == "AE":
        items = [v.strip() for v in text_value.split("\\")]
    elif vr == "PN":
        if "=" in text_value:
            return False  # ideographic / phonetic groups: pydicom splits them
        items = text_value.rstrip("\x00 ").split("\\")
        if len(items) == 1:
            return [{"Alphabetic": items[0]}] if items[0] else None
        if not all(items):
            return False
        return [{"Alphabetic": v} for v in items]
    elif vr == "IS" or vr == "DS":
        items = text_value.strip().rstrip(" \x00").split("\\")
        if len(items) == 1 and not items[0]:
            return None
        pattern, kind = (_IS_RE, int) if vr == "IS" else (_DS_RE, float)
        values = []
        for item in items:
            item = item.strip()
            if not pattern.fullmatch(item):
                return False
            values.append(kind(item))
        return values if all(map(math.isfinite, values)) else False
    else:
        return False
    if len(items) == 1:
        return items if items[0] else None
    return items


def dataset_json_dict(ds: Dataset, warned: list[str] | None = None) -> dict:
    """DICOM JSON of ``ds`` (bulk values by ``BULK_PLACEHOLDER`` URI), equal to ``reference_json_dict``.

    With ``warned``, an element whose value cannot be converted (an IS of ``1A``) is left out and named
    there instead of failing the whole file: real modalities send such values, and the file is kept
    byte for byte anyway."""
    charset = ds.get_item(0x00080005, keep_deferred=True) if 0x00080005 in ds else None
    value = charset.value if charset is not None else ""
    if isinstance(value, bytes):
        value = value.decode("latin-1").strip(" \x00")
    codec = _PLAIN_CHARSETS.get(value) if isinstance(value, str) else None
    encoding = getattr(ds, "original_encoding", (None, None))
    fast = codec is not None and encoding[1] is True
    body: dict = {}
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset yields elements, not tags
        element = ds.get_item(tag, keep_deferred=True)
        key = f"{tag:08X}"
        if fast and isinstance(element, RawDataElement) and element.value is not None \
                and element.is_little_endian and tag not in _LUT_DESCRIPTORS:
            vr = element.VR
            if vr is None and not tag.is_private:
                vr = dictionary_vr_or_none(tag)
            if vr is not None and vr != "UN":
                value = _fast_value(vr, element.value, codec) if element.length else None
                if value is not False:
                    body[key] = {"vr": vr, "Value": value} if value is not None else {"vr": vr}
                    continue
        if warned is None:
            body[key] = ds[tag].to_json_dict(bulk_data_element_handler=_bulk_uri, bulk_data_threshold=BULK_THRESHOLD)
            continue
        try:
            body[key] = ds[tag].to_json_dict(bulk_data_element_handler=_bulk_uri,
                                             bulk_data_threshold=BULK_THRESHOLD)
        except _VALUE_ERRORS as exc:
            warned.append(f"({tag.group:04X},{tag.element:04X}) {_keyword(tag)}: {_raw_text(element)} cannot be "
                          f"read as {getattr(element, 'VR', None) or '?'} ({str(exc)[:80]}): left out of the index")
    return body



# --- the content fingerprint: the data set without its File Meta Information --------------------------
# Each door writes its own file meta (the gateway's implementation version, the sender's header on STOW),
# so two copies of one instance differ there; duplicates are recognised by the data set that follows.
# A deflated data set is hashed inflated (two deflaters may compress one data set differently).

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
META_SEARCH_LIMIT = 256 * 1024  # a file meta longer than this is not one a real sender writes


def file_meta_end(head: bytes) -> tuple[int, str] | None:
    """(offset where the data set starts, TransferSyntaxUID) from a Part-10 file's first bytes; None while
    ``head`` is too short to tell. The meta group is explicit VR little endian by definition (PS3.10 7.1)."""
    position, syntax = 132, ""
    while True:
        if len(head) < position + 8:
            return None
        group, element = struct.unpack_from("<HH", head, position)
        if group != 0x0002:
            return position, syntax
        vr = head[position + 4:position + 6]
        if vr in _LONG_VRS:
            if len(head) < position + 12:
                return None
            (length,) = struct.unpack_from("<L", head, position + 8)
            start = position + 12
        else:
            (length,) = struct.unpack_from("<H", head, position + 6)
            start = position + 8
        if length == 0xFFFFFFFF:  # not valid in the meta group: treat the rest as the data set
            return position, syntax
        if element == 0x0010:
            if len(head) < start + length:
                return None
            syntax = head[start:start + length].decode("ascii", "replace").strip("\x00 ")
        position = start + length


PART10_PREFIX = b"\x00" * 128 + b"DICM"


def file_meta_without_preamble(head: bytes) -> bool:
    """Whether ``head`` starts with a File Meta element (group 0002, explicit VR) rather than the preamble: what
    pydicom's ``dcmwrite`` gives for a data set built in memory, and so what dicomweb-client sends."""
    return len(head) >= 8 and head[:2] == b"\x02\x00" and head[4:6].isalpha() and head[4:6].isupper()


class ContentDigest:
    """SHA-256 of a Part-10 file's data set (after the File Meta Information), fed the file in order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._head = bytearray()
        self._started = False
        self._inflater = None

    def update(self, chunk: bytes) -> None:
        if self._started:
            self._feed(chunk)
            return
        self._head += chunk
        found = file_meta_end(bytes(self._head))
        if found is None and len(self._head) < META_SEARCH_LIMIT:
            return
        start, syntax = found if found is not None else (0, "")  # no readable meta: the whole file
        if syntax == DEFLATED_LE:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        rest = bytes(self._head[start:])
        self._started, self._head = True, bytearray()
        self._feed(rest)

    def _feed(self, data: bytes) -> None:
        if self._inflater is None:
            self._digest.update(data)
            return
        try:
            while data:
                self._digest.update(self._inflater.decompress(data, 1024 * 1024))
                data = self._inflater.unconsumed_tail
        except zlib.error:
            self._inflater = None  # a broken stream: the file is refused by the parser anyway

    def hexdigest(self) -> str:
        if not self._started:
            self._started = True
            self._feed(b"")
            self._digest.update(bytes(self._head))  # shorter than any file meta: the bytes themselves
        return self._digest.hexdigest()


def content_digest(stream) -> str:
    """The content fingerprint of a whole file read from ``stream``."""
    digest = ContentDigest()
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


def same_data_set(first, second) -> bool:
    """Whether two Part-10 files (paths or file objects) hold the same data set, whatever their file meta
    and their encoding (implicit or explicit VR): compared element by element, values only, group lengths
    and the meta group left out. The slow path, for copies whose fingerprints differ."""
    try:
        with warnings.catch_warnings(action="ignore"):
            a = pydicom.dcmread(first, defer_size=1024)
            b = pydicom.dcmread(second, defer_size=1024)
            if _encapsulated(a) != _encapsulated(b):
                return False
            return _same_elements(a, b)
    except PARSE_ERRORS:
        return False


def _encapsulated(ds: Dataset) -> bool:
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
    return bool(syntax) and pydicom.uid.UID(syntax).is_encapsulated


def _same_elements(a: Dataset, b: Dataset) -> bool:
    tags_a = {t for t in a.keys() if t.element != 0 and t.group != 0x0002}  # noqa: SIM118
    tags_b = {t for t in b.keys() if t.element != 0 and t.group != 0x0002}  # noqa: SIM118
    if tags_a != tags_b:
        return False
    for tag in sorted(tags_a):
        va, vb = a[tag].value, b[tag].value
        if a[tag].VR == "SQ" or b[tag].VR == "SQ":
            if len(va) != len(vb) or not all(_same_elements(x, y) for x, y in zip(va, vb, strict=True)):
                return False
        elif va != vb:
            return False
    return True
