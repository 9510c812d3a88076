"""The Basic Text SR builder, read back with pydicom and checked by DCMTK's dcmdump and dsrdump."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess

import pydicom
import pytest

from reporting.delivery.sr import BASIC_TEXT_SR, basic_text_sr
from tests.conftest import require_or_skip
from tests.reporting import documents


def read(doc) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(basic_text_sr(doc)))


def texts(ds) -> dict[str, str]:
    """Every TEXT item in the tree by its concept meaning (sections nest one level down)."""
    found: dict[str, str] = {}
    for item in ds.ContentSequence:
        if item.ValueType == "TEXT":
            found[item.ConceptNameCodeSequence[0].CodeMeaning] = item.TextValue
        for child in item.get("ContentSequence", []):
            key = f"{item.ConceptNameCodeSequence[0].CodeMeaning}/{child.ConceptNameCodeSequence[0].CodeMeaning}"
            found[key if key not in found else f"{key}+"] = child.TextValue
    return found


def test_final_sr_is_in_the_study_with_patient_attributes():
    ds = read(documents.final())
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == BASIC_TEXT_SR == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.StudyInstanceUID == documents.STUDY.study_instance_uid
    assert ds.AccessionNumber == "ACC-2024-0001"
    assert ds.Modality == "SR"
    assert str(ds.PatientName) == "Zoë^Ångström^Łucja^^"
    assert ds.PatientID == "MRN-0042"
    assert ds.PatientBirthDate == "19610203"
    assert ds.CompletionFlag == "COMPLETE"
    assert ds.VerificationFlag == "VERIFIED"
    observer = ds.VerifyingObserverSequence[0]
    assert str(observer.VerifyingObserverName) == "Ana María Núñez"
    assert observer.VerificationDateTime == "20241105221530+0000"
    assert observer.VerifyingObserverIdentificationCodeSequence[0].CodeValue == "1234567893"


def test_content_tree_follows_tid_2000():
    ds = read(documents.final())
    root = ds.ConceptNameCodeSequence[0]
    assert (root.CodeValue, root.CodingSchemeDesignator) == ("18748-4", "LN")
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    found = texts(ds)
    assert found["Findings/Finding"] == documents.SECTIONS[3].text
    assert documents.HOSTILE in found["Findings/Finding"]
    assert found["Impressions/Impression"] == documents.SECTIONS[4].text
    assert found["Current Procedure Descriptions/Procedure Description"] == documents.SECTIONS[2].text
    assert found["Lung-RADS category"] == "4B"
    assert found["Nodule size"] == "23 mm"
    findings = next(i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Findings")
    assert findings.ContentSequence[0].ConceptNameCodeSequence[0].CodeValue == "121071"
    assert findings.ContentSequence[0].ConceptNameCodeSequence[0].CodingSchemeDesignator == "DCM"


def test_preliminary_is_partial_and_unverified():
    ds = read(documents.preliminary())
    assert ds.CompletionFlag == "PARTIAL"
    assert ds.VerificationFlag == "UNVERIFIED"
    assert ds.PreliminaryFlag == "PRELIMINARY"
    assert "VerifyingObserverSequence" not in ds


def test_uids_are_stable_and_an_addendum_makes_a_new_instance():
    final, again = read(documents.final()), read(documents.final())
    preliminary, amended = read(documents.preliminary()), read(documents.amended())
    assert basic_text_sr(documents.final()) == basic_text_sr(documents.final())
    assert final.SOPInstanceUID == again.SOPInstanceUID
    assert len({preliminary.SOPInstanceUID, final.SOPInstanceUID, amended.SOPInstanceUID}) == 3
    assert preliminary.SeriesInstanceUID == final.SeriesInstanceUID == amended.SeriesInstanceUID
    assert final.SeriesInstanceUID != final.StudyInstanceUID
    other = read(documents.final(report_id="7d0c7f5e-1111-4c1c-9c1c-000000000000"))
    assert other.SOPInstanceUID != final.SOPInstanceUID
    assert other.SeriesInstanceUID != final.SeriesInstanceUID


def test_amended_sr_carries_addenda_signers_and_its_predecessor():
    doc = documents.amended()
    ds = read(doc)
    signers = [str(item.VerifyingObserverName) for item in ds.VerifyingObserverSequence]
    assert signers == ["Ana María Núñez", "Jürgen Groß", "Ana María Núñez"]
    addenda = [i for i in ds.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Addendum"]
    assert [a.ContentSequence[0].TextValue.split("\n\n")[0] for a in addenda] == [a.text for a in doc.addenda]
    critical = texts(ds)["Critical result communication"]
    assert "Category 1" in critical
    assert "Nurse Chloé Dubois" in critical
    predecessor = ds.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    one_addendum = dataclasses.replace(doc, addenda=doc.addenda[:1])
    assert predecessor.ReferencedSOPInstanceUID == read(one_addendum).SOPInstanceUID


def test_one_megabyte_body_is_kept_whole():
    doc = documents.huge()
    # DICOM text values drop trailing spaces (PS3.5 6.2: UT trailing spaces are insignificant).
    assert texts(read(doc))["Findings/Finding"] == doc.sections[3].text.rstrip(" ")


@pytest.fixture(scope="module")
def dcmtk():
    tools = {name: shutil.which(name) or "" for name in ("dcmdump", "dsrdump")}
    for name, path in tools.items():
        require_or_skip(bool(path), f"DCMTK's {name} (Debian package dcmtk)")
    return tools


@pytest.mark.parametrize("factory", [documents.preliminary, documents.final, documents.amended, documents.huge])
def test_dcmtk_parses_the_file_and_the_sr_tree_without_errors(factory, dcmtk, tmp_path):
    path = tmp_path / "report.dcm"
    path.write_bytes(basic_text_sr(factory()))
    dump = subprocess.run([dcmtk["dcmdump"], "+E", "-q", str(path)], capture_output=True, text=True, check=False)
    assert dump.returncode == 0, dump.stderr
    assert "E:" not in dump.stderr
    tree = subprocess.run([dcmtk["dsrdump"], "-q", str(path)], capture_output=True, text=True, check=False)
    assert tree.returncode == 0, tree.stderr
    assert "E:" not in tree.stderr
    assert "Basic Text SR Document" in tree.stdout
