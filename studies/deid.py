"""De-identification of DICOM JSON for preview access: an allow-list (docs/decisions/0009-preview-allow-list.md).

``deidentify_json`` keeps only the attributes a reader needs to decide whether to claim a case
(``ALLOWED``): modality, body part, study and series descriptions after cleaning, image geometry,
counts, shifted dates, an age band, sex, and the UIDs the viewer addresses images by. Everything
else goes, whatever it is: unknown public tags, overlays, private tags, sequences (but the one
listed), binary values and bulk data references. What is kept is cleaned by kind:

- **text** (CS, LO, SH and the like) keeps only words of ``VOCABULARY`` (imaging terms), so a name,
  an accession number or any free text typed into a description does not survive;
- **numbers** must be JSON numbers, **UIDs** digits and dots, **times** digits;
- **dates** (DA, and the date part of DT) move back by a whole number of days, the same for every
  instance of a study (HMAC of ``SECRET_KEY`` and the study's key), so intervals survive; a UTC offset
  is dropped; a value that is not a date goes (Retain Longitudinal Temporal Information with
  Modified Dates Option, PS3.15 E.3.6);
- the patient's name becomes ``ANONYMIZED``, the patient ID a per-study pseudonym, the age its
  decade (90 and over as one band), the sex one of M, F, O;
- the VR written out is the data dictionary's, never the one the input claims.

The PS3.15 Table E.1-1 actions (``profile_action``, from the ``dicom-anonymizer`` package) are kept
for QIDO, which refuses to match on what a preview hides (decision 0003).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, timedelta
from typing import Any

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as ps315
from django.conf import settings
from pydicom.datadict import dictionary_VR, tag_for_keyword

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

PATIENT_AGE = "00101010"
PATIENT_SEX = "00100040"

METHOD = "Preview allow-list; Retain UIDs; Modified Dates; Clean Descr."  # LO: at most 64 characters
# PS3.16 CID 7050 De-identification Method
METHOD_CODES = [
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
    ("113110", "Retain UIDs Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
]
DUMMY_TEXT = "ANONYMIZED"
NUMBER_VRS = {"DS", "IS", "US"}  # the allow-list's numbers are JSON numbers
SHIFT_MIN_DAYS = 365
SHIFT_SPAN_DAYS = 3650
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_TIME = re.compile(r"(\d{2}){0,3}(\.\d{1,6})?")

# What a preview keeps (decision 0009). Patient name and ID are replaced, never copied.
ALLOWED_KEYWORDS = (
    # which images: UIDs (Retain UIDs Option), numbers, kind of object
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "SeriesNumber", "InstanceNumber", "AcquisitionNumber", "ImageType",
    "InstanceAvailability", "ReferencedImageSequence",
    # what was imaged
    "Modality", "ModalitiesInStudy", "BodyPartExamined", "StudyDescription", "SeriesDescription",
    "Laterality", "ImageLaterality", "ViewPosition", "PatientPosition",
    # when, shifted (dates) or as it was (times of day)
    "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "AcquisitionDateTime",
    "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime",
    # who, coarsely
    "PatientAge", "PatientSex",
    # counts
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances",
    "NumberOfFrames",
    # image geometry and display
    "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "PixelSpacing", "PixelAspectRatio", "SliceThickness",
    "SpacingBetweenSlices", "SliceLocation", "ImagePositionPatient", "ImageOrientationPatient",
    "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType",
    "BurnedInAnnotation", "LossyImageCompression",
)
SEQUENCE_ITEM_KEYWORDS = ("ReferencedSOPClassUID", "ReferencedSOPInstanceUID", "ReferencedFrameNumber")


def _tags(keywords) -> dict[str, str]:
    """keyword list → {"GGGGEEEE": dictionary VR}."""
    return {f"{tag_for_keyword(k):08X}": dictionary_VR(tag_for_keyword(k)).split(" ")[0] for k in keywords}


ALLOWED = _tags(ALLOWED_KEYWORDS)
SEQUENCE_ITEMS = _tags(SEQUENCE_ITEM_KEYWORDS)

# Words a kept text value may contain (everything else is dropped): modalities, body parts and
# regions, planes and techniques, and the defined terms of the kept CS attributes.
_WORDS = """
AR AS ASMT AU BDUS BI BMD CD CF CP CR CS CT CX DD DF DG DM DOC DS DX EC ECG EPS ES FA FID FS GM HC HD IO
IVOCT IVUS KER KO LEN LP LS MA MG MR MS NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN PR PT PX REG
RESP RF RG RTDOSE RTIMAGE RTPLAN RTRECORD RTSTRUCT RWV SEG SM SMR SR SRF ST STAIN TG US VA VF XA XC
ABDOMEN ABD ABDOMINAL PELVIS PELVIC CHEST THORAX THORACIC HEAD BRAIN NECK SKULL FACE ORBIT ORBITS SINUS
SINUSES SPINE CSPINE TSPINE LSPINE SSPINE CERVICAL LUMBAR SACRUM COCCYX EXTREMITY ARM LEG HAND FOOT WRIST
ANKLE KNEE HIP SHOULDER ELBOW FEMUR TIBIA HUMERUS PELVI BREAST HEART CARDIAC CORONARY AORTA LIVER KIDNEY
KIDNEYS RENAL PANCREAS SPLEEN BLADDER PROSTATE UTERUS OVARY THYROID LUNG LUNGS ABDPELV WHOLEBODY BODY
IAC TMJ JAW MANDIBLE CLAVICLE RIB RIBS STERNUM SCAPULA HEEL TOE FINGER FOREARM THIGH ZYGOMA NASAL
VESSEL VASCULAR ANGIO CTA MRA MRV VENOGRAM ARTERY CAROTID PULMONARY EMBOLISM PE GI GU ENDO
WITH WITHOUT W/O W/ WO W CONTRAST IV ORAL NONCONTRAST NON ENHANCED UNENHANCED AND OR PLUS +C -C C+ C-
AXIAL AX SAGITTAL SAG CORONAL COR OBLIQUE 3D 2D MPR MIP MINIP VR REFORMAT RECON THIN THICK SLICE SLICES
T1 T2 FLAIR DWI ADC SWI GRE STIR PD FS FATSAT DIXON TOF PERFUSION SPECT LOCALIZER SCOUT TOPOGRAM SURVIEW
BONE SOFT TISSUE LUNGWINDOW MEDIASTINUM WINDOW KERNEL STANDARD SHARP SMOOTH DOSE LOW HIGH ROUTINE
STAT SCREENING DIAGNOSTIC FOLLOW UP BILATERAL UNILATERAL LEFT RIGHT LT RT BILAT PA AP LAT LATERAL LL RL
LLD RLD LLO RLO CC MLO ML LM XCC SIO FB VIEW VIEWS PORTABLE UPRIGHT SUPINE PRONE DECUBITUS ERECT
HFS HFP FFS FFP HFDR HFDL FFDR FFDL R L B U M F O
ORIGINAL DERIVED PRIMARY SECONDARY OTHER SUMMARY ONLINE NEARLINE OFFLINE UNAVAILABLE YES NO 00 01
MONOCHROME1 MONOCHROME2 RGB PALETTE COLOR YBR_FULL YBR_FULL_422 YBR_PARTIAL_420 YBR_ICT YBR_RCT
HU US OD MGML PCNT CPS NONE ISO_IR 100 101 109 110 144 127 126 138 148 166 13 192 ISO_IR_100 ISO_IR_192
EXAM STUDY SERIES IMAGE IMAGES PROTOCOL
"""
VOCABULARY = frozenset(_WORDS.split())


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
    rest = re.split(r"[+-]", text[8:])[0]  # the UTC offset says where the patient was: drop it
    return head + rest if _TIME.fullmatch(rest) else None


def _age_band(value: Any) -> str | None:
    """A PatientAge (AS, ``nnnD/W/M/Y``) as the first year of its decade; 90 and over is one band."""
    text = str(value or "").strip().upper()
    if not re.fullmatch(r"\d{3}[DWMY]", text):
        return None
    years = int(text[:3]) if text[3] == "Y" else 0
    return f"{min(years // 10 * 10, 90):03d}Y"


def _clean_text(value: Any) -> str | None:
    """Only words of the vocabulary, in their order (Clean Descriptors Option): free text goes."""
    words = [w for w in re.split(r"[^A-Za-z0-9+/]+", str(value or "")) if w.upper() in VOCABULARY]
    return " ".join(words) or None


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _uid(value: Any) -> str | None:
    return value if isinstance(value, str) and _UID.fullmatch(value) else None


def _time(value: Any) -> str | None:
    return value if isinstance(value, str) and _TIME.fullmatch(value) else None


def _sex(value: Any) -> str | None:
    return value if value in ("M", "F", "O") else None


def _cleaner(vr: str, days: int):
    if vr == "DA":
        return lambda v: _shift_da(v, days)
    if vr == "DT":
        return lambda v: _shift_dt(v, days)
    if vr == "TM":
        return _time
    if vr == "UI":
        return _uid
    if vr in NUMBER_VRS:
        return _number
    return _clean_text  # any other VR: words of the vocabulary only (a number there is dropped: safe)


def _kept(tag: str, element: Any, *, days: int, allowed: dict[str, str]) -> dict | None:
    """The allow-listed attribute cleaned, or None when nothing of it may be shown."""
    if not isinstance(element, dict):
        return None
    vr = allowed[tag]
    raw = element.get("Value")
    if vr == "SQ":
        items = [_kept_item(item, days=days) for item in raw or [] if isinstance(item, dict)]
        items = [item for item in items if item]
        return {"vr": vr, "Value": items} if items else None
    clean = {PATIENT_AGE: _age_band, PATIENT_SEX: _sex}.get(tag) or _cleaner(vr, days)
    values = [clean(v) for v in raw if v is not None] if isinstance(raw, list) else []
    values = [v for v in values if v is not None]
    return {"vr": vr, "Value": values} if values else None


def _kept_item(item: dict, *, days: int) -> dict:
    """One item of an allowed sequence: its own allow-list (UIDs of the images it refers to)."""
    out = {}
    for tag in SEQUENCE_ITEMS:
        if tag in item:
            kept = _kept(tag, item[tag], days=days, allowed=SEQUENCE_ITEMS)
            if kept:
                out[tag] = kept
    return out


def deidentify_json(body: dict, *, study_key: str) -> dict:
    """One DICOM JSON object reduced to the preview allow-list and cleaned (see the module docstring)."""
    days = date_shift_days(study_key)
    out: dict[str, dict] = {}
    for tag in ALLOWED:
        if tag in body:
            kept = _kept(tag, body[tag], days=days, allowed=ALLOWED)
            if kept:
                out[tag] = kept
    if PATIENT_NAME in body:
        out[PATIENT_NAME] = {"vr": "PN", "Value": [{"Alphabetic": DUMMY_TEXT}]}
    if PATIENT_ID in body:
        out[PATIENT_ID] = {"vr": "LO", "Value": [pseudonym(study_key)]}
    out[PATIENT_IDENTITY_REMOVED] = {"vr": "CS", "Value": ["YES"]}
    out[DEIDENTIFICATION_METHOD] = {"vr": "LO", "Value": [METHOD]}
    out[DEIDENTIFICATION_METHOD_CODE_SEQUENCE] = {"vr": "SQ", "Value": [
        {"00080100": {"vr": "SH", "Value": [code]}, "00080102": {"vr": "SH", "Value": ["DCM"]},
         "00080104": {"vr": "LO", "Value": [meaning]}} for code, meaning in METHOD_CODES]}
    out[LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED] = {"vr": "CS", "Value": ["MODIFIED"]}
    return dict(sorted(out.items()))
