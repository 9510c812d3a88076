"""De-identification of DICOM JSON (PS3.15 Annex E Basic Profile, Retain UIDs, Modified Dates)."""

from __future__ import annotations

import base64
import json
from datetime import date, timedelta

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from studies import synthetic
from studies.deid import (
    EXACT_ACTIONS,
    KEEP_UID,
    date_shift_days,
    deidentify_json,
    profile_action,
    pseudonym,
)

CANARY = "CANARY-7Q"
KEY = "1:1.2.826.0.1.3680043.10.1478.1"
TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UR", "UT"}
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


def _canary_element(vr: str) -> dict | None:
    """An element of this VR that carries the canary (None for VRs that cannot hold text)."""
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": f"{CANARY}^Name", "Ideographic": CANARY}]}
    if vr in TEXT_VRS:
        return {"vr": vr, "Value": [CANARY]}
    if vr in BINARY_VRS:
        return {"vr": vr, "InlineBinary": base64.b64encode(CANARY.encode()).decode()}
    if vr == "SQ":
        return {"vr": vr, "Value": [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": CANARY}]},
                                     "00081030": {"vr": "LO", "Value": [CANARY]},
                                     "00091010": {"vr": "LO", "Value": [CANARY]}}]}
    return None


def _every_listed_attribute_with_a_canary() -> dict:
    body = {}
    for tag, action in EXACT_ACTIONS.items():
        if action == KEEP_UID:
            continue
        try:
            vr = dictionary_VR(tag).split(" ")[0]
        except KeyError:
            continue
        element = _canary_element(vr)
        if element is not None:
            body[f"{tag:08X}"] = element
    return body


def test_every_attribute_the_profile_lists_loses_its_canary():
    body = _every_listed_attribute_with_a_canary()
    assert len(body) > 400  # the table really is the PS3.15 one, not a handful of tags
    out = deidentify_json(body, study_key=KEY)
    text = json.dumps(out)
    assert CANARY not in text
    assert base64.b64encode(CANARY.encode()).decode() not in text


def test_private_attributes_go_everywhere_and_sequences_are_deidentified_item_by_item():
    ds = synthetic.with_private_and_nested_phi(
        synthetic.ct_series(synthetic.StudySpec(patient=synthetic.demo_patient(1), accession="A1",
                                                description="CT", study_date=date(2025, 3, 4)),
                            slices=1, size=8)[0], CANARY)
    ds.ReferencedImageSequence = [Dataset()]
    ds.ReferencedImageSequence[0].ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedImageSequence[0].add_new(0x00290010, "LO", CANARY)
    body = ds.to_json_dict()
    out = deidentify_json(body, study_key=KEY)
    assert CANARY not in json.dumps(out)
    assert not [key for key in out if int(key[:4], 16) % 2]
    referenced = out["00081140"]["Value"][0]
    assert referenced["00081155"]["Value"] == ["1.2.3.4"]  # Retain UIDs: the viewer still links images
    assert "00290010" not in referenced


def test_uids_and_the_image_pixel_module_are_kept():
    ds = synthetic.ct_series(synthetic.StudySpec(patient=synthetic.demo_patient(2), accession="A2",
                                                 description="CT", study_date=date(2025, 3, 4)), slices=1, size=8)[0]
    body = ds.to_json_dict(bulk_data_threshold=1, bulk_data_element_handler=lambda el: "uri")
    out = deidentify_json(body, study_key=KEY)
    for keyword_tag in ("0020000D", "0020000E", "00080018", "00080016", "00200052", "00280010", "00280011",
                        "00280100", "00280101", "00280103", "00280004", "00281050", "00281051", "00281052",
                        "00281053", "00280301", "00080060"):
        assert out[keyword_tag] == body[keyword_tag], keyword_tag
    assert out["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "ANONYMIZED"}]}
    assert out["00100020"]["Value"] == [pseudonym(KEY)]
    assert out["00120062"]["Value"] == ["YES"]
    assert len(out["00120063"]["Value"][0]) <= 64
    codes = [item["00080100"]["Value"][0] for item in out["00120064"]["Value"]]
    assert codes == ["113100", "113105", "113110", "113107"]
    assert out["00280303"]["Value"] == ["MODIFIED"]


def test_dates_shift_by_the_same_days_within_a_study_and_the_birth_date_goes():
    body = {
        "00080020": {"vr": "DA", "Value": ["20260310"]},  # Study Date: shifted
        "00080023": {"vr": "DA", "Value": ["20260311"]},  # Content Date
        "00080021": {"vr": "DA", "Value": ["2026.03.10"]},  # Series Date, ACR-NEMA dotted form: shifted too
        "0008002A": {"vr": "DT", "Value": ["20260310083000.123-0500"]},  # Acquisition DateTime
        "00080022": {"vr": "DA", "Value": ["2026"]},  # Acquisition Date that cannot be shifted: dropped
        "00143076": {"vr": "DA", "Value": ["20250101"]},  # Date of Gain Calibration: not on the allow-list
        "00100030": {"vr": "DA", "Value": ["19610407"]},  # Patient's Birth Date: removed
    }
    days = date_shift_days(KEY)
    assert 365 <= days < 365 + 3650
    out = deidentify_json(body, study_key=KEY)
    study = date.fromisoformat(out["00080020"]["Value"][0])
    assert (date(2026, 3, 10) - study).days == days
    assert out["00080020"]["vr"] == out["00080021"]["vr"] == out["00080023"]["vr"] == "DA"
    assert out["00080021"]["Value"] == out["00080020"]["Value"]
    assert (date.fromisoformat(out["00080023"]["Value"][0]) - study).days == 1
    assert out["0008002A"] == {"vr": "DT", "Value": [study.strftime("%Y%m%d") + "083000.123"]}  # offset dropped
    assert "00080022" not in out
    assert "00143076" not in out
    assert "00100030" not in out
    assert deidentify_json(body, study_key=KEY) == out  # deterministic


@pytest.mark.parametrize("offset", ["+0500", "-0500", "+0000", "-1200"])
def test_a_utc_offset_of_either_sign_is_dropped_from_a_date_time(offset):
    out = deidentify_json({"0008002A": {"vr": "DT", "Value": [f"20260310083000{offset}"]},
                           "00080020": {"vr": "DA", "Value": ["20260310"]}}, study_key=KEY)
    assert out["0008002A"]["Value"] == [out["00080020"]["Value"][0] + "083000"]


def test_a_date_time_without_a_time_keeps_only_its_shifted_date():
    out = deidentify_json({"0008002A": {"vr": "DT", "Value": ["20260310+0100"]},
                           "00080020": {"vr": "DA", "Value": ["20260310"]}}, study_key=KEY)
    assert out["0008002A"]["Value"] == out["00080020"]["Value"]


def test_different_studies_get_different_shifts_and_pseudonyms():
    keys = [f"1:1.2.3.{n}" for n in range(6)]
    assert len({date_shift_days(k) for k in keys}) > 1
    assert len({pseudonym(k) for k in keys}) == len(keys)


def test_shifts_run_from_one_year_to_eleven(settings):
    settings.SECRET_KEY = "a-fixed-secret-for-this-test-" * 2
    shifts = {date_shift_days(f"1:1.2.3.{n}") for n in range(30000)}
    assert min(shifts) == 365
    assert max(shifts) == 365 + 3650 - 1


def test_date_shift_depends_on_the_secret_key(settings):
    before = date_shift_days(KEY), pseudonym(KEY)
    settings.SECRET_KEY = "another-secret-" * 4
    assert (date_shift_days(KEY), pseudonym(KEY)) != before


@pytest.mark.parametrize(("tag", "expected"), [
    (0x60003000, "X"),  # Overlay Data
    (0x60024000, "X"),  # Overlay Comments, any 60xx group
    (0x50000010, "X"),  # Curve data
    (0x00100010, "Z"),  # Patient's Name
    (0x00081030, "X"),  # Study Description
    (0x00400275, "X"),  # Request Attributes Sequence
    (0x0020000D, "U"),  # Study Instance UID: kept
    (0x00280010, None),  # Rows: not listed
    (0x00080050, "Z"),  # Accession Number: emptied
    (0x001811BB, "D"),  # Acquisition Field Of View Label: a dummy
    (0x00081140, "R"),  # Referenced Image Sequence: kept, items de-identified
    # where the profile offers a choice, the stronger one: removal (X/Z, X/Z/D, X/D); dummy over empty (Z/D)
    (0x00400555, "X"),  # Acquisition Context Sequence (X/Z)
    (0x00181000, "X"),  # Device Serial Number (X/Z/D)
    (0x00181400, "X"),  # Acquisition Device Processing Description (X/D)
    (0x00700084, "D"),  # Content Creator's Name (Z/D)
])
def test_profile_actions_come_from_the_ps3_15_table(tag, expected):
    assert profile_action(tag) == expected


def test_a_person_name_the_table_misses_is_replaced_anyway():
    out = deidentify_json({"00142006": {"vr": "PN", "Value": [{"Alphabetic": CANARY}]},  # Evaluator Name
                           "00211234": {"vr": "PN", "Value": [{"Alphabetic": CANARY}]}}, study_key=KEY)
    assert CANARY not in json.dumps(out)


@pytest.mark.parametrize("real", ["20261231", "20261015", "20250101", "2026.11.02"])
def test_every_date_moves_back_by_exactly_the_studys_days(real):
    out = deidentify_json({"00080020": {"vr": "DA", "Value": [real]}}, study_key=KEY)
    digits = real.replace(".", "")
    expected = date(int(digits[:4]), int(digits[4:6]), int(digits[6:])) - timedelta(days=date_shift_days(KEY))
    assert out["00080020"] == {"vr": "DA", "Value": [expected.strftime("%Y%m%d")]}


@pytest.mark.parametrize("impossible", ["20260231", "20261301", "00000000", "2026-03-1"])
def test_a_date_that_does_not_exist_is_dropped_not_an_error(impossible):
    out = deidentify_json({"00080020": {"vr": "DA", "Value": [impossible]}}, study_key=KEY)
    assert "00080020" not in out
