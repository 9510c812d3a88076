"""The stored DICOM JSON: ingest's fast builder gives exactly pydicom's ``to_json_dict`` (PS3.18 F.2)."""

from __future__ import annotations

import io
import json
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from studies import synthetic
from studies.dicom import (
    BULK_TAGS,
    INDEX_DATES,
    INDEX_INTS,
    INDEX_TEXT,
    INDEX_UIDS,
    dataset_json_dict,
    index_fields,
    int_or_none,
    parse_da,
    read_instance,
    reference_json_dict,
    text,
)


def _file(ds: Dataset, syntax=ExplicitVRLittleEndian) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _both(data: bytes) -> tuple[dict, dict]:
    """(fast, pydicom) for the same file, read as ingest reads it (bulk elements removed)."""
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for builder in (dataset_json_dict, reference_json_dict):
            ds = pydicom.dcmread(io.BytesIO(data), defer_size=1024)
            for tag in [t for t in ds.keys() if t in BULK_TAGS]:  # noqa: SIM118 - a Dataset yields elements
                del ds[tag]
            results.append(json.loads(json.dumps(builder(ds), sort_keys=True)))
    return results[0], results[1]


def _base(**overrides) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def _awkward() -> Dataset:
    """Values whose encoding rules differ by VR: padding, multi-values, empties, numbers, sequences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some values are invalid on purpose
        return _awkward_values(_base())


def _awkward_values(ds: Dataset) -> Dataset:
    ds.PatientName = "Doe^John^^Dr "
    ds.ReferringPhysicianName = "A^B\\C^D"
    ds.PerformingPhysicianName = "X^Y\\Z^^"
    ds.OperatorsName = "   "
    ds.PatientID = "  leading and trailing  "
    ds.OtherPatientIDs = "one\\two \\ three"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Modality = "CT"
    ds.BodyPartExamined = ""
    ds.StudyDate = "20240131"
    ds.StudyTime = "101530.123456 "
    ds.AcquisitionDateTime = "20240131101530.5+0100"
    ds.PatientAge = "045Y"
    ds.InstanceNumber = "  12"
    ds.SeriesNumber = "+7"
    ds.AcquisitionNumber = ""
    ds.ReferencedFrameNumber = "1\\2\\3"
    ds.SliceThickness = "1.25"
    ds.PixelSpacing = [" .5", "-2e-3"]
    ds.ImagePositionPatient = ["-125", "-125.0", "1E2"]
    ds.WindowCenter = "40\\400"
    ds.WindowWidth = "1."
    ds.Rows = 512
    ds.Columns = 512
    ds.BitsAllocated = 16
    ds.PixelRepresentation = 1
    ds.add_new(0x00280106, "SS", -2000)  # US or SS in the dictionary: left to pydicom when implicit
    ds.add_new(0x00181310, "US", [0, 512, 512, 0])  # AcquisitionMatrix, multi-valued US
    ds.add_new(0x00180088, "DS", "")  # SpacingBetweenSlices, empty
    ds.add_new(0x00280030, "DS", ["0.5", "0.5"])
    ds.add_new(0x00189306, "FD", 1.5)
    ds.add_new(0x00189307, "FD", [1.5, -2.25])
    ds.add_new(0x00189311, "FD", 0.1)
    ds.add_new(0x00189352, "FL", [0.5, 0.1])
    ds.add_new(0x00189345, "FD", 12.000000001)
    ds.add_new(0x00209241, "FL", 3.14159)
    ds.add_new(0x00209057, "UL", 4000000000)
    ds.add_new(0x00209157, "UL", [1, 2, 3])
    ds.add_new(0x00189219, "SS", -5)
    ds.add_new(0x00080005, "CS", "ISO_IR 192")
    ds.add_new(0x00081030, "LO", "Tête, cou & thorax \\ suite")
    ds.add_new(0x00324000, "LT", "line one\r\nline two \\ with a backslash  ")
    ds.add_new(0x00400280, "ST", "short text  ")
    ds.add_new(0x00081190, "UR", "http://example.org/a b  ")
    ds.add_new(0x00400241, "AE", " STORESCU ")
    ds.add_new(0x00080054, "AE", ["AE1 ", " AE2"])
    ds.add_new(0x00081199, "SQ", Sequence([_base(ReferencedSOPInstanceUID=generate_uid())]))
    ds.add_new(0x00209116, "AT", [0x00100010, 0x00100020])
    ds.add_new(0x00282000, "OB", b"\x01\x02\x03\x04")
    ds.add_new(0x00189346, "UT", "unlimited text " * 40)
    block = ds.private_block(0x0009, "READROOM TEST", create=True)
    block.add_new(0x01, "LO", "private value ")
    block.add_new(0x02, "US", 7)
    block.add_new(0x03, "SH", ["a", "b"])
    ds.add_new(0x00280020, "UI", "1.2.3\x00")
    ds.add_new(0x00281101, "US", [4096, 0, 16])  # a LUT descriptor: pydicom fixes its first value
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_the_fast_builder_equals_pydicom_on_awkward_values(syntax):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _file(_awkward(), syntax)
    fast, reference = _both(data)
    assert fast == reference


@pytest.mark.parametrize(("charset", "name", "encoding"), [
    ("ISO_IR 100", "Müller^Jörg", "latin-1"),
    ("ISO_IR 192", "Müller^Jörg", "utf-8"),
    ("", "Smith^John", "ascii"),
    ("ISO_IR 6", "Smith^John", "ascii"),
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう", "iso2022_jp"),
    ("ISO_IR 192", "Bad^Bytes", "bad-utf8"),
])
def test_the_fast_builder_equals_pydicom_in_each_character_set(charset, name, encoding):
    ds = _base()
    if charset:
        ds.SpecificCharacterSet = charset
    if encoding == "bad-utf8":
        ds.add_new(0x00100010, "PN", b"Bad^\xff\xfeBytes")
        ds.add_new(0x00081030, "LO", b"caf\xe9")
    else:
        ds.PatientName = name
        plain = encoding in ("ascii", "iso2022_jp")  # values the character set can encode
        ds.StudyDescription = "Thorax, etude" if plain else "Thorax, étude"
        ds.InstitutionName = "Hopital" if plain else "Hôpital"
    fast, reference = _both(_file(ds))
    assert fast == reference


@pytest.mark.parametrize("kind", ["ct", "ct-implicit", "mr", "cr", "mammo", "us", "private-nested"])
def test_the_fast_builder_equals_pydicom_on_the_demo_modalities(study_spec, kind):
    makers = {
        "ct": lambda: synthetic.ct_series(study_spec, slices=1, size=32)[0],
        "ct-implicit": lambda: synthetic.ct_series(study_spec, slices=1, size=32,
                                                   transfer_syntax=ImplicitVRLittleEndian)[0],
        "mr": lambda: synthetic.mr_study(study_spec, slices=1, size=32)[0],
        "cr": lambda: synthetic.radiograph(study_spec)[0],
        "mammo": lambda: synthetic.mammogram(study_spec, rows=64, cols=48)[0],
        "us": lambda: synthetic.ultrasound(study_spec, frames=2)[0],
        "private-nested": lambda: synthetic.with_private_and_nested_phi(
            synthetic.ct_series(study_spec, slices=1, size=32)[0], "CANARY"),
    }
    fast, reference = _both(synthetic.to_bytes(makers[kind]()))
    assert fast == reference


def test_read_instance_stores_the_same_json_as_pydicom(tmp_path):
    ds = _awkward()
    ds.PixelData = b"\x00\x01" * 16
    ds.SamplesPerPixel = 1
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 4
    path = tmp_path / "one.dcm"
    data = _file(ds)
    path.write_bytes(data)
    parsed = read_instance(str(path), len(data))
    stored = json.loads(parsed.dicom_json)
    _fast, reference = _both(data)
    reference["7FE00010"] = {"vr": "OW", "BulkDataURI": "__INSTANCE_URL__/bulkdata/7FE00010"}
    assert stored == dict(sorted(reference.items()))
    assert list(stored) == sorted(stored)


def _fields_both(data: bytes) -> tuple[dict, dict]:
    """(index_fields from the JSON, the same attributes read from the data set one by one as ingest did)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), defer_size=1024)
        for tag in [t for t in ds.keys() if t in BULK_TAGS]:  # noqa: SIM118 - a Dataset yields elements
            del ds[tag]
        fast = index_fields(ds, dataset_json_dict(ds))
        reference = {keyword: str(ds.get(keyword, "") or "") for keyword in INDEX_UIDS}
        reference |= {keyword: text(ds, keyword, limit) for keyword, limit in INDEX_TEXT.items()}
        reference |= {keyword: int_or_none(ds, keyword) for keyword in INDEX_INTS}
        reference |= {keyword: parse_da(ds.get(keyword)) for keyword in INDEX_DATES}
    return fast, reference


def _odd_index_values(ds: Dataset) -> Dataset:
    """Indexed attributes in every shape: multi-valued, padded, empty, control characters, wrong VRs."""
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.ReferringPhysicianName = "A^B\\C^D"
    ds.PatientID = "  ID\x00\x01 with controls  "
    ds.StudyDescription = "x" * 300
    ds.InstitutionName = ["One", "Two"]
    ds.add_new(0x00080060, "CS", "")  # Modality, empty
    ds.add_new(0x00200011, "IS", "1\\2")  # SeriesNumber, two values
    ds.add_new(0x00200013, "IS", " 7 ")  # InstanceNumber, padded
    ds.add_new(0x00280008, "IS", "")  # NumberOfFrames, empty
    ds.add_new(0x00280010, "US", 512)  # Rows
    ds.add_new(0x00280011, "US", [512, 256])  # Columns, two values
    ds.StudyDate = "20240230"  # not a date
    ds.SeriesDate = ["20240101", "20240102"]
    ds.PatientBirthDate = "19800101"
    ds.add_new(0x00080201, "SH", "+0100")
    ds.BurnedInAnnotation = "yes "
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_the_indexed_attributes_equal_reading_them_from_the_data_set(study_spec, syntax):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _odd_index_values(_base())
        ds.SpecificCharacterSet = "ISO_IR 192"
    fast, reference = _fields_both(_file(ds, syntax))
    assert fast == reference
    for maker in (lambda: synthetic.ct_series(study_spec, slices=1, size=32)[0],
                  lambda: synthetic.mammogram(study_spec, rows=64, cols=48)[0],
                  lambda: synthetic.with_private_and_nested_phi(synthetic.ct_series(study_spec, slices=1, size=32)[0],
                                                                "CANARY"),
                  _awkward):
        fast, reference = _fields_both(_file(maker(), syntax) if maker is _awkward else synthetic.to_bytes(maker()))
        assert fast == reference
