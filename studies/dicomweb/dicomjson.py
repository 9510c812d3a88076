"""DICOM JSON (PS3.18 Annex F) building blocks for DICOMweb answers: elements, tags, responses.

Values are encoded as F.2 prescribes: person names as ``{"Alphabetic": ...}`` objects, IS/DS and
binary numbers as JSON numbers, dates as ``YYYYMMDD`` strings. An attribute without a value is
``{"vr": ...}`` with no ``Value`` (a zero-length attribute).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

from django.http import HttpResponse
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

DICOM_JSON = "application/dicom+json"
SPECIFIC_CHARACTER_SET = "ISO_IR 192"  # JSON is UTF-8


def element(vr: str, *values) -> dict:
    """One DICOM JSON attribute; ``None`` and empty strings are left out (no values → zero-length)."""
    kept = [v for v in values if v is not None and v != ""]
    if not kept:
        return {"vr": vr}
    if vr == "PN":
        kept = [{"Alphabetic": str(v)} for v in kept]
    return {"vr": vr, "Value": kept}


# --- encoders for index columns: value → DICOM JSON, as an object or directly as JSON text ----------
# Both forms must give the same JSON (tests/studies/test_qido.py holds them to it): objects are what
# de-identification works on, text is the fast path for rows shown in full.

quote = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (the body is UTF-8)
NUMBER_VRS = frozenset({"IS", "US"})


def value_encoder(vr: str, *, constant: str | None = None, multi_value: bool = False,
                  computed: bool = False) -> Callable[[object], dict]:
    """A function turning one stored value into its DICOM JSON attribute object."""
    if computed:
        fixed = element(vr, constant)
        return lambda _v: fixed
    if multi_value:
        def codes(v) -> dict:
            values = multi(v)
            return {"vr": vr, "Value": values} if values else {"vr": vr}
        return codes
    if vr == "PN":
        return lambda v: {"vr": "PN", "Value": [{"Alphabetic": v}]} if v else {"vr": "PN"}
    if vr == "DA":
        return lambda v: {"vr": "DA", "Value": [v.strftime("%Y%m%d")]} if v else {"vr": "DA"}
    if vr in NUMBER_VRS:
        return lambda v: {"vr": vr, "Value": [int(v)]} if v is not None else {"vr": vr}
    return lambda v: {"vr": vr, "Value": [v]} if v else {"vr": vr}


def text_encoder(tag: str, vr: str, *, constant: str | None = None, multi_value: bool = False,
                 computed: bool = False) -> Callable[[object], str]:
    """The same as ``value_encoder``, as the JSON text of ``"tag": {...}``."""
    empty = f'"{tag}":{{"vr":"{vr}"}}'
    head = f'"{tag}":{{"vr":"{vr}","Value":['
    if computed:
        fixed = head + quote(constant) + "]}" if constant else empty
        return lambda _v: fixed
    if multi_value:
        def codes(v) -> str:
            values = multi(v)
            return head + ",".join(quote(c) for c in values) + "]}" if values else empty
        return codes
    if vr == "PN":
        head += '{"Alphabetic":'
        return lambda v: head + quote(v) + "}]}" if v else empty
    if vr == "DA":
        return lambda v: head + v.strftime('"%Y%m%d"') + "]}" if v else empty
    if vr in NUMBER_VRS:
        return lambda v: head + str(int(v)) + "]}" if v is not None else empty
    return lambda v: head + quote(v) + "]}" if v else empty


def da(value: date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def multi(value: str) -> list[str]:
    """A backslash-delimited multi-value string ("\\CT\\MR\\" or "CT\\MR") as its values."""
    return [v for v in (value or "").split("\\") if v]


def tag_hex(name: str) -> str | None:
    """The 8-hex-digit tag for a keyword (``PatientName``) or a tag (``00100010``), else None."""
    name = (name or "").strip()
    if len(name) == 8:
        try:
            int(name, 16)
        except ValueError:
            pass
        else:
            return name.upper()
    tag = tag_for_keyword(name)
    return f"{tag:08X}" if tag is not None else None


def keyword(tag: str) -> str:
    try:
        return keyword_for_tag(int(tag, 16)) or tag
    except (ValueError, TypeError):
        return tag


def vr_of(tag: str) -> str:
    try:
        return dictionary_VR(int(tag, 16)).split(" ")[0]
    except (KeyError, ValueError):
        return "UN"


def dicom_json_response(payload, *, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """``application/dicom+json`` (UTF-8, compact; never cached by shared caches: it holds PHI)."""
    return dicom_json_text_response(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), status=status,
                                    headers=headers)


def dicom_json_text_response(text: str, *, status: int = 200, headers: dict | None = None) -> HttpResponse:
    """The same for JSON text built by the caller."""
    response = HttpResponse(text.encode("utf-8"), status=status, content_type=DICOM_JSON)
    response["Cache-Control"] = "private, no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response
