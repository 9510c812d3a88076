"""De-identification of DICOM JSON for preview access (DICOM PS3.15 Annex E).

``deidentify_json`` applies the Basic Application Level Confidentiality Profile to one DICOM JSON
object (PS3.18 F.2), with two options (docs/decisions/0003-preview-deidentification.md):

- **Retain UIDs Option**: a preview grant is per study and the viewer addresses series and
  instances by their UIDs, so UIDs are kept.
- **Retain Longitudinal Temporal Information with Modified Dates Option**: every date (DA) and the
  date part of every date-time (DT) is shifted back by a whole number of days that is the same for
  all instances of a study (derived from the study's key with an HMAC of ``SECRET_KEY``), so
  intervals within the study survive while the real dates do not. Times of day are kept. The
  patient's birth date is removed outright.

Which attributes the profile removes (X), empties (Z) or replaces with dummies (D) comes from the
table maintained in the ``dicom-anonymizer`` package (generated from PS3.15 Table E.1-1). Where the
table allows a choice we take the stronger one: removal. All private attributes (odd groups) go,
curve data (50xx) and overlay data and comments (60xx) go, sequences are de-identified item by
item. Bulk data references are kept as they are (the caller decides whether to serve them).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta
from typing import Any

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as ps315
from django.conf import settings

REMOVE = "X"
EMPTY = "Z"
DUMMY = "D"
KEEP_UID = "U"
RECURSE = "R"  # a sequence that refers to other instances by UID: keep it, de-identify its items

# dicom-anonymizer category → our action (the strongest where the profile offers a choice).
_CATEGORY_ACTIONS = {
    "D_TAGS": DUMMY,
    "Z_TAGS": EMPTY,
    "X_TAGS": REMOVE,
    "U_TAGS": KEEP_UID,
    "Z_D_TAGS": DUMMY,
    "X_Z_TAGS": REMOVE,
    "X_D_TAGS": REMOVE,
    "X_Z_D_TAGS": REMOVE,
    "X_Z_U_STAR_TAGS": RECURSE,
}

PATIENT_NAME = "00100010"
PATIENT_ID = "00100020"
PATIENT_BIRTH_DATE = "00100030"
PATIENT_IDENTITY_REMOVED = "00120062"
DEIDENTIFICATION_METHOD = "00120063"
DEIDENTIFICATION_METHOD_CODE_SEQUENCE = "00120064"
LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED = "00280303"

METHOD = "PS3.15 E.1 Basic Profile; Retain UIDs; Modified Dates"  # LO: at most 64 characters
# PS3.16 CID 7050 De-identification Method
METHOD_CODES = [
    ("113100", "Basic Application Confidentiality Profile"),
    ("113110", "Retain UIDs Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
]
DUMMY_TEXT = "ANONYMIZED"
DATE_VRS = {"DA", "DT"}
TEXT_VRS = {"AE", "AS", "CS", "LO", "LT", "SH", "ST", "UC", "UR", "UT"}
NUMBER_STRING_VRS = {"IS", "DS"}
NUMERIC_VRS = {"FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"}
SHIFT_MIN_DAYS = 365
SHIFT_SPAN_DAYS = 3650


def _action_tables() -> tuple[dict[int, str], list[tuple[int, int, int, int, str]]]:
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, action in _CATEGORY_ACTIONS.items():
        for entry in getattr(ps315, category):
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = action
            else:  # (group, element, group mask, element mask): repeating groups such as 50xx, 60xx
                group, element, group_mask, element_mask = entry
                masked.append((group, element, group_mask, element_mask, action))
    return exact, masked


EXACT_ACTIONS, MASKED_ACTIONS = _action_tables()


def profile_action(tag: int) -> str | None:
    """What the profile does with a public attribute (None: not listed, kept)."""
    action = EXACT_ACTIONS.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for m_group, m_element, group_mask, element_mask, m_action in MASKED_ACTIONS:
        if group & group_mask == m_group and element & element_mask == m_element & element_mask:
            return m_action
    return None


def study_key_for(study) -> str:
    """The key that makes date shifts and pseudonyms stable per study (and different between studies)."""
    return f"{study.organization_id}:{study.study_instance_uid}"


def _digest(study_key: str, purpose: str) -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), f"readroom-deid:{purpose}:{study_key}".encode(),
                    hashlib.sha256).digest()


def date_shift_days(study_key: str) -> int:
    """How many days this study's dates move back: 365–4014, the same for every instance of the study."""
    return SHIFT_MIN_DAYS + int.from_bytes(_digest(study_key, "date-shift")[:4], "big") % SHIFT_SPAN_DAYS


def pseudonym(study_key: str) -> str:
    """A stable dummy patient ID for the study that reveals nothing about the real one."""
    return "ANON-" + _digest(study_key, "patient-id")[:5].hex().upper()


def _shift_da(value: Any, days: int) -> str | None:
    text = str(value or "").strip().replace(".", "")  # ACR-NEMA style "YYYY.MM.DD" too
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        shifted = date(int(text[:4]), int(text[4:6]), int(text[6:])) - timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return shifted.strftime("%Y%m%d")


def _shift_dt(value: Any, days: int) -> str | None:
    text = str(value or "").strip()
    head = _shift_da(text[:8], days)
    if head is None:
        return None  # a partial date-time (year or month only) cannot be shifted: drop it
    rest = text[8:]
    tz = max(rest.find("+"), rest.find("-"))
    if tz >= 0:
        rest = rest[:tz]  # the UTC offset says where the patient was: drop it
    return head + rest


def _shifted(element: dict, days: int) -> dict:
    vr = element.get("vr")
    shift = _shift_da if vr == "DA" else _shift_dt
    values = [shift(v, days) for v in element.get("Value", []) if v not in (None, "")]
    values = [v for v in values if v]
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def _dummy(element: dict, study_key: str) -> dict:
    vr = element.get("vr", "UN")
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": DUMMY_TEXT}]}
    if vr in TEXT_VRS:
        return {"vr": vr, "Value": ["000Y" if vr == "AS" else DUMMY_TEXT]}
    if vr == "TM":
        return {"vr": vr, "Value": ["000000"]}
    if vr in NUMBER_STRING_VRS or vr in NUMERIC_VRS:
        return {"vr": vr, "Value": [0]}
    if vr == "SQ":
        return {"vr": vr, "Value": []}
    return {"vr": vr}  # binary, UN, AT: no value


def _is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


def _deidentify_object(body: dict, *, study_key: str, days: int) -> dict:
    out: dict[str, dict] = {}
    for key, element in body.items():
        try:
            tag = int(key, 16)
        except (TypeError, ValueError):
            continue  # not a DICOM JSON attribute key: nothing we can vouch for
        if len(key) != 8 or _is_private(tag) or not isinstance(element, dict):
            continue
        action = profile_action(tag)
        vr = element.get("vr")
        if key == PATIENT_BIRTH_DATE or action == REMOVE:
            continue
        if key == PATIENT_NAME:
            out[key] = {"vr": "PN", "Value": [{"Alphabetic": DUMMY_TEXT}]}
        elif key == PATIENT_ID:
            out[key] = {"vr": vr or "LO", "Value": [pseudonym(study_key)]}
        elif vr in DATE_VRS and action in (None, EMPTY, DUMMY):
            out[key] = _shifted(element, days)
        elif action == EMPTY:
            out[key] = {"vr": vr, "Value": []} if vr == "SQ" else {"vr": vr}
        elif action == DUMMY or (vr == "PN" and action is None):
            # Every person name goes, listed or not (defence in depth: a name is never needed to preview).
            out[key] = _dummy(element, study_key)
        elif vr == "SQ":
            items = element.get("Value") or []
            out[key] = {"vr": "SQ", "Value": [_deidentify_object(item, study_key=study_key, days=days)
                                              for item in items if isinstance(item, dict)]}
        else:  # not listed, or a UID kept under the Retain UIDs Option
            out[key] = element
    return out


def deidentify_json(body: dict, *, study_key: str) -> dict:
    """One DICOM JSON object de-identified for preview access (PS3.15 Annex E, see the module docstring)."""
    days = date_shift_days(study_key)
    out = _deidentify_object(body, study_key=study_key, days=days)
    out[PATIENT_IDENTITY_REMOVED] = {"vr": "CS", "Value": ["YES"]}
    out[DEIDENTIFICATION_METHOD] = {"vr": "LO", "Value": [METHOD]}
    out[DEIDENTIFICATION_METHOD_CODE_SEQUENCE] = {"vr": "SQ", "Value": [
        {"00080100": {"vr": "SH", "Value": [code]}, "00080102": {"vr": "SH", "Value": ["DCM"]},
         "00080104": {"vr": "LO", "Value": [meaning]}} for code, meaning in METHOD_CODES]}
    out[LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED] = {"vr": "CS", "Value": ["MODIFIED"]}
    return dict(sorted(out.items()))
