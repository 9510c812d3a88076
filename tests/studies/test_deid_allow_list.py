"""Previews by allow-list (issue 20 item 4, docs/decisions/0009-preview-allow-list.md): every attribute of
pydicom's data dictionary that can hold text is planted with a canary, and none reaches a preview."""

from __future__ import annotations

import base64
import json

import pytest
from pydicom.datadict import DicomDictionary, RepeatersDictionary, keyword_for_tag

from studies.deid import ALLOWED, ALLOWED_KEYWORDS, DUMMY_TEXT, deidentify_json, pseudonym

KEY = "1:1.2.826.0.1.3680043.10.1478.9"
CANARY = "CANARY-7Q"  # not a date, number, UID or vocabulary word in any case
CS_CANARY = "CANARY7Q"  # a well-formed code string, so that only the allow-list and vocabulary stop it
# Every VR whose value is text in DICOM JSON (PN is an object of text).
STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


def _planted(vr: str, canary: str = CANARY) -> dict | None:
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": f"{canary}^Name", "Ideographic": canary, "Phonetic": canary}]}
    if vr in STRING_VRS:
        return {"vr": vr, "Value": [canary, f"CT {canary} CHEST"]}
    if vr in BINARY_VRS:
        return {"vr": vr, "InlineBinary": base64.b64encode(canary.encode()).decode()}
    if vr == "SQ":
        return {"vr": vr, "Value": [{"0040A160": {"vr": "UT", "Value": [canary]},  # Text Value in an item
                                     "00081155": {"vr": "UI", "Value": [canary]},
                                     "00091010": {"vr": "LO", "Value": [canary]}}]}
    return None


def _dictionary_body(canary: str = CANARY) -> dict:
    body = {}
    for tag, entry in DicomDictionary.items():
        element = _planted(entry[0].split(" ")[0], canary)
        if element is not None:
            body[f"{tag:08X}"] = element
    for mask, entry in RepeatersDictionary.items():  # 60xx overlays, 50xx curves, …: their first group
        element = _planted(entry[0].split(" ")[0], canary)
        if element is not None:
            body[mask.replace("x", "0").upper()] = element
    return body


def _assert_no_canary(out: dict, canary: str = CANARY) -> None:
    text = json.dumps(out)
    assert canary not in text
    assert canary.lower() not in text.lower()
    assert base64.b64encode(canary.encode()).decode() not in text


@pytest.mark.parametrize("canary", [CANARY, CS_CANARY])
def test_no_attribute_of_the_data_dictionary_carries_a_canary_into_a_preview(canary):
    body = _dictionary_body(canary)
    assert len(body) > 3000  # really the whole dictionary, not a handful of tags
    assert "60000022" in body
    assert "50002500" in body
    out = deidentify_json(body, study_key=KEY)
    _assert_no_canary(out, canary)
    assert set(out) <= set(ALLOWED) | {"00100010", "00100020", "00120062", "00120063", "00120064", "00280303"}


def test_unknown_public_private_overlay_binary_and_nested_text_all_go():
    body = {
        "00471234": {"vr": "LO", "Value": ["CT CHEST"]},  # an unknown public tag, even with harmless words
        "00091010": {"vr": "LO", "Value": ["CT CHEST"]},  # private
        "60000022": {"vr": "LO", "Value": ["CT CHEST"]},  # Overlay Description
        "00283010": {"vr": "SQ", "Value": [{"0040A160": {"vr": "UT", "Value": ["CT CHEST"]}}]},  # VOI LUT Sequence
        "00420011": {"vr": "OB", "InlineBinary": base64.b64encode(b"%PDF").decode()},  # Encapsulated Document
        "7FE00010": {"vr": "OW", "BulkDataURI": "https://example.test/bulk"},
        "00080060": {"vr": "CS", "Value": ["CT"]},
    }
    out = deidentify_json(body, study_key=KEY)
    assert out["00080060"] == {"vr": "CS", "Value": ["CT"]}
    for tag in ("00471234", "00091010", "60000022", "00283010", "00420011", "7FE00010"):
        assert tag not in out


def test_a_referenced_image_keeps_only_the_uids_the_viewer_follows():
    out = deidentify_json({"00081140": {"vr": "SQ", "Value": [
        {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
         "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
         "00081160": {"vr": "IS", "Value": [2]},
         "00081030": {"vr": "LO", "Value": ["CT CHEST"]},  # allowed at the top level, not inside the item
         "0040A160": {"vr": "UT", "Value": [CANARY]}},
        {"0040A160": {"vr": "UT", "Value": [CANARY]}}]}}, study_key=KEY)  # an item with nothing kept goes
    assert out["00081140"] == {"vr": "SQ", "Value": [
        {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
         "00081155": {"vr": "UI", "Value": ["1.2.3.4"]}, "00081160": {"vr": "IS", "Value": [2]}}]}


def _legitimate(vr: str):
    return {"DA": "20250601", "DT": "20250601101500", "TM": "101500", "UI": "1.2.3.4", "AS": "047Y",
            "CS": "CT", "LO": "CT CHEST", "SH": "CT", "SQ": None}.get(vr, 1)


# The allow-list of docs/decisions/0009-preview-allow-list.md, typed here again so that a change to either shows.
DECISION_0009 = {
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "SeriesNumber", "InstanceNumber", "AcquisitionNumber", "ImageType", "InstanceAvailability",
    "ReferencedImageSequence", "Modality", "ModalitiesInStudy", "BodyPartExamined", "StudyDescription",
    "SeriesDescription", "Laterality", "ImageLaterality", "ViewPosition", "PatientPosition", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "AcquisitionDateTime", "StudyTime", "SeriesTime", "AcquisitionTime",
    "ContentTime", "PatientAge", "PatientSex", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
    "NumberOfSeriesRelatedInstances", "NumberOfFrames", "Rows", "Columns", "SamplesPerPixel",
    "PhotometricInterpretation", "PlanarConfiguration", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "PixelSpacing", "PixelAspectRatio", "SliceThickness", "SpacingBetweenSlices",
    "SliceLocation", "ImagePositionPatient", "ImageOrientationPatient", "WindowCenter", "WindowWidth",
    "RescaleIntercept", "RescaleSlope", "RescaleType", "BurnedInAnnotation", "LossyImageCompression",
}


def test_the_allow_list_is_the_one_the_decision_record_gives():
    assert {keyword_for_tag(int(tag, 16)) for tag in ALLOWED} == DECISION_0009
    assert set(ALLOWED_KEYWORDS) == DECISION_0009


def test_every_attribute_on_the_allow_list_is_shown_when_its_value_is_sound():
    body = {}
    for tag, vr in ALLOWED.items():
        value = _legitimate(vr)
        body[tag] = ({"vr": vr, "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]} if vr == "SQ"
                     else {"vr": vr, "Value": [value]})
    body["00100040"] = {"vr": "CS", "Value": ["F"]}
    out = deidentify_json(body, study_key=KEY)
    missing = [keyword_for_tag(int(tag, 16)) for tag in ALLOWED if tag not in out]
    assert missing == []
    assert len(ALLOWED) == len(ALLOWED_KEYWORDS)
    for tag, vr in ALLOWED.items():
        assert out[tag]["vr"] == vr


@pytest.mark.parametrize(("described", "shown"), [
    ("CT CHEST W/O CONTRAST", "CT CHEST W/O CONTRAST"),
    ("MRI brain w/ contrast for DOE^JOHN MRN 4471123", "brain w/ contrast"),
    ("Axial T2 FLAIR", "Axial T2 FLAIR"),
    ("Dr. Smith's patient, room 12", None),
])
def test_descriptions_keep_only_imaging_words(described, shown):
    out = deidentify_json({"00081030": {"vr": "LO", "Value": [described]},
                           "0008103E": {"vr": "LO", "Value": [described]}}, study_key=KEY)
    if shown is None:
        assert "00081030" not in out
        assert "0008103E" not in out
    else:
        assert out["00081030"] == out["0008103E"] == {"vr": "LO", "Value": [shown]}


@pytest.mark.parametrize(("age", "band"), [
    ("047Y", "040Y"), ("040Y", "040Y"), ("009Y", "000Y"), ("089Y", "080Y"), ("090Y", "090Y"), ("104Y", "090Y"),
    ("018M", "000Y"), ("003W", "000Y"), ("010D", "000Y"), ("47", None), ("", None), ("047X", None), (47, None),
])
def test_the_age_is_shown_as_its_decade(age, band):
    out = deidentify_json({"00101010": {"vr": "AS", "Value": [age]}}, study_key=KEY)
    assert out.get("00101010") == ({"vr": "AS", "Value": [band]} if band else None)


@pytest.mark.parametrize(("sex", "shown"), [("M", "M"), ("F", "F"), ("O", "O"), ("X", None), ("male", None)])
def test_the_sex_is_one_of_the_dicom_codes_or_nothing(sex, shown):
    out = deidentify_json({"00100040": {"vr": "CS", "Value": [sex]}}, study_key=KEY)
    assert out.get("00100040") == ({"vr": "CS", "Value": [shown]} if shown else None)


def test_values_must_have_the_shape_of_their_vr_and_the_vr_is_the_dictionarys():
    out = deidentify_json({
        "00280010": {"vr": "UT", "Value": ["512 rows, patient Doe"]},  # Rows: a number or nothing
        "00280011": {"vr": "US", "Value": [True]},  # a boolean is not a number
        "00281050": {"vr": "DS", "Value": [40, "forty"]},  # Window Center: numbers only
        "0020000D": {"vr": "UI", "Value": ["1.2.3 DOE"]},  # a UID is digits and dots
        "00080030": {"vr": "TM", "Value": ["10:15 Doe"]},  # a time is digits
        "00080031": {"vr": "TM", "Value": ["101500.25"]},
        "00080060": {"vr": "LT", "Value": ["MR"]},  # a claimed VR is not believed
    }, study_key=KEY)
    assert "00280010" not in out
    assert "00280011" not in out
    assert "0020000D" not in out
    assert "00080030" not in out
    assert out["00281050"] == {"vr": "DS", "Value": [40]}
    assert out["00080031"] == {"vr": "TM", "Value": ["101500.25"]}
    assert out["00080060"] == {"vr": "CS", "Value": ["MR"]}


def test_the_patient_is_a_dummy_name_and_a_pseudonym_and_absent_stays_absent():
    out = deidentify_json({"00100010": {"vr": "PN", "Value": [{"Alphabetic": CANARY}]},
                           "00100020": {"vr": "SH", "Value": [CANARY]}}, study_key=KEY)
    assert out["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": DUMMY_TEXT}]}
    assert out["00100020"] == {"vr": "LO", "Value": [pseudonym(KEY)]}
    bare = deidentify_json({}, study_key=KEY)
    assert "00100010" not in bare
    assert "00100020" not in bare
    assert bare["00120062"] == {"vr": "CS", "Value": ["YES"]}
    assert bare["00280303"] == {"vr": "CS", "Value": ["MODIFIED"]}


def test_an_attribute_that_is_not_an_object_or_has_no_value_is_left_out():
    out = deidentify_json({"00080060": "CT", "00080070": None, "0008103E": {"vr": "LO"},
                           "00081030": {"vr": "LO", "Value": None}, "00180015": {"vr": "CS", "Value": [None]}},
                          study_key=KEY)
    assert not {"00080060", "0008103E", "00081030", "00180015"} & set(out)


def test_the_preview_says_how_it_was_de_identified_in_dicom_codes():
    out = deidentify_json({}, study_key=KEY)
    assert out["00120063"] == {"vr": "LO", "Value": ["Preview allow-list; Retain UIDs; Modified Dates; Clean Descr."]}
    assert out["00120064"]["vr"] == "SQ"
    assert [{key: (element["vr"], element["Value"][0]) for key, element in item.items()}
            for item in out["00120064"]["Value"]] == [
        {"00080100": ("SH", code), "00080102": ("SH", "DCM"), "00080104": ("LO", meaning)}
        for code, meaning in (
            ("113100", "Basic Application Confidentiality Profile"),
            ("113105", "Clean Descriptors Option"),
            ("113110", "Retain UIDs Option"),
            ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
        )
    ]
    assert list(out) == sorted(out)
