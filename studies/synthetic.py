"""Fictional but realistic DICOM studies made with pydicom, for the demo world, tests and benchmarks.

Nothing here is committed as a file: studies are generated at set-up. Pixel data are simple
phantoms (an elliptical body with organs), enough for thumbnails, windowing and the viewer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"
MG_IMAGE = "1.2.840.10008.5.1.4.1.1.1.2"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
UID_ROOT = "1.2.826.0.1.3680043.10.1478."  # an example root for fictional data


@dataclass
class Patient:
    name: str  # DICOM PN, e.g. "Rivera^Ana"
    patient_id: str
    birth_date: date
    sex: str


@dataclass
class StudySpec:
    """What to generate; UIDs are made fresh unless given."""

    patient: Patient
    accession: str
    description: str
    study_date: date
    institution: str = "Lakeside Imaging"
    referring: str = "Okafor^Chidi^^Dr"
    study_uid: str = field(default_factory=lambda: generate_uid(prefix=UID_ROOT))


def _phantom(rows: int, cols: int, z: float = 0.5, *, seed: int = 0) -> np.ndarray:
    """A body-shaped phantom in CT numbers + 1024 (air 0, fat ~930, soft tissue ~1064, bone ~1900)."""
    y, x = np.mgrid[-1:1:complex(rows), -1:1:complex(cols)]
    image = np.zeros((rows, cols), dtype=np.float32)
    body = (x / 0.85) ** 2 + (y / 0.62) ** 2 <= 1
    image[body] = 1064
    image[((x / 0.8) ** 2 + (y / 0.57) ** 2 > 1) & body] = 930
    spine = ((x) / 0.08) ** 2 + ((y - 0.35) / 0.08) ** 2 <= 1
    image[spine] = 1900
    r = 0.18 + 0.08 * np.sin(z * np.pi)
    for cx in (-0.38, 0.38):
        image[((x - cx) / r) ** 2 + ((y + 0.05) / (r * 1.3)) ** 2 <= 1] = 250  # lungs
    rng = np.random.default_rng(seed)
    image += rng.normal(0, 6, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 4095).astype(np.uint16)


def _base(spec: StudySpec, *, modality: str, sop_class: str, series_uid: str, series_number: int,
          series_description: str, instance_number: int, body_part: str, transfer_syntax: str) -> Dataset:
    meta = FileMetaDataset()
    sop_uid = generate_uid(prefix=UID_ROOT)
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = spec.patient.name
    ds.PatientID = spec.patient.patient_id
    ds.PatientBirthDate = spec.patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = spec.patient.sex
    ds.AccessionNumber = spec.accession
    ds.StudyDescription = spec.description
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = spec.study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "083000"
    ds.StudyID = spec.accession[-6:]
    ds.ReferringPhysicianName = spec.referring
    ds.InstitutionName = spec.institution
    ds.Manufacturer = "ReadRoom Synthetic"
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.InstanceNumber = instance_number
    ds.BodyPartExamined = body_part
    ds.BurnedInAnnotation = "NO"
    return ds


def _set_pixels(ds: Dataset, pixels: np.ndarray, *, window: tuple[int, int] | None, rescale: bool,
                monochrome: str = "MONOCHROME2") -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = monochrome
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if rescale:
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.tobytes()


def to_bytes(ds: Dataset) -> bytes:
    """Encode as a Part 10 file (preamble + DICM), compressing when the transfer syntax asks for it."""
    if ds.file_meta.TransferSyntaxUID == RLELossless and "PixelData" in ds:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(RLELossless)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True,
               implicit_vr=ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian, little_endian=True)
    return buffer.getvalue()


def ct_series(spec: StudySpec, *, slices: int = 150, size: int = 512, transfer_syntax: str = ExplicitVRLittleEndian,
              series_number: int = 2, description: str = "AXIAL 2.5MM") -> list[Dataset]:
    series_uid = generate_uid(prefix=UID_ROOT)
    frame_of_reference = generate_uid(prefix=UID_ROOT)
    out = []
    base_phantom = _phantom(size, size, seed=1)
    for i in range(slices):
        ds = _base(spec, modality="CT", sop_class=CT_IMAGE, series_uid=series_uid, series_number=series_number,
                   series_description=description, instance_number=i + 1, body_part="CHEST",
                   transfer_syntax=transfer_syntax)
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SliceThickness = 2.5
        ds.PixelSpacing = [0.7, 0.7]
        ds.ImagePositionPatient = [-179.2, -179.2, -i * 2.5]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.KVP = 120
        z = i / max(slices - 1, 1)
        pixels = base_phantom.copy()
        y, x = np.mgrid[-1:1:complex(size), -1:1:complex(size)]
        r = 0.18 + 0.08 * np.sin(z * np.pi)
        for cx in (-0.38, 0.38):
            lung = ((x - cx) / r) ** 2 + ((y + 0.05) / (r * 1.3)) ** 2 <= 1
            pixels[lung] = 250
        _set_pixels(ds, pixels, window=(40, 400), rescale=True)
        out.append(ds)
    return out


def mr_study(spec: StudySpec, *, slices: int = 24, size: int = 256) -> list[Dataset]:
    out = []
    for number, (description, scale) in enumerate([("AX T1", 0.8), ("AX T2 FLAIR", 1.2), ("SAG T1", 1.0)], 1):
        series_uid = generate_uid(prefix=UID_ROOT)
        for i in range(slices):
            ds = _base(spec, modality="MR", sop_class=MR_IMAGE, series_uid=series_uid, series_number=number,
                       series_description=description, instance_number=i + 1, body_part="BRAIN",
                       transfer_syntax=ExplicitVRLittleEndian)
            ds.MagneticFieldStrength = 1.5
            ds.SliceThickness = 5
            ds.PixelSpacing = [0.9, 0.9]
            ds.ImagePositionPatient = [-115, -115, i * 5.0]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            pixels = (_phantom(size, size, i / slices, seed=number).astype(np.float32) * scale / 2).clip(0, 4095)
            _set_pixels(ds, pixels.astype(np.uint16), window=(600, 1200), rescale=False)
            out.append(ds)
    return out


def radiograph(spec: StudySpec, *, modality: str = "CR", views: tuple[str, ...] = ("PA", "LATERAL"),
               rows: int = 1024, cols: int = 880) -> list[Dataset]:
    series_uid = generate_uid(prefix=UID_ROOT)
    out = []
    for i, view in enumerate(views, 1):
        ds = _base(spec, modality=modality, sop_class=CR_IMAGE if modality == "CR" else DX_IMAGE,
                   series_uid=series_uid, series_number=1, series_description=f"CHEST {view}", instance_number=i,
                   body_part="CHEST", transfer_syntax=ExplicitVRLittleEndian)
        ds.ViewPosition = view
        ds.PixelSpacing = [0.2, 0.2]
        pixels = 4095 - _phantom(rows, cols, seed=i + 10).astype(np.int32) * 2
        _set_pixels(ds, pixels.clip(0, 4095).astype(np.uint16), window=(2048, 4096), rescale=False)
        out.append(ds)
    return out


def mammogram(spec: StudySpec, *, rows: int = 1024, cols: int = 800) -> list[Dataset]:
    series_uid = generate_uid(prefix=UID_ROOT)
    out = []
    for i, (laterality, view) in enumerate([("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")], 1):
        ds = _base(spec, modality="MG", sop_class=MG_IMAGE, series_uid=series_uid, series_number=1,
                   series_description="SCREENING MAMMOGRAM", instance_number=i, body_part="BREAST",
                   transfer_syntax=ExplicitVRLittleEndian)
        ds.ImageLaterality = laterality
        ds.ViewPosition = view
        ds.PresentationIntentType = "FOR PRESENTATION"
        y, x = np.mgrid[0:1:complex(rows), 0:1:complex(cols)]
        breast = (x / 0.75) ** 2 + ((y - 0.5) / 0.48) ** 2 <= 1
        if laterality == "L":
            breast = breast[:, ::-1]
        pixels = np.where(breast, 2600, 200).astype(np.float32)
        pixels += np.random.default_rng(i).normal(0, 40, size=pixels.shape)
        _set_pixels(ds, pixels.clip(0, 4095).astype(np.uint16), window=(2400, 1800), rescale=False)
        out.append(ds)
    return out


def ultrasound(spec: StudySpec, *, frames: int = 3) -> list[Dataset]:
    """Ultrasound with the patient's name burned into the pixels (BurnedInAnnotation YES)."""
    series_uid = generate_uid(prefix=UID_ROOT)
    out = []
    for i in range(frames):
        ds = _base(spec, modality="US", sop_class=US_IMAGE, series_uid=series_uid, series_number=1,
                   series_description="ABDOMEN US", instance_number=i + 1, body_part="ABDOMEN",
                   transfer_syntax=ExplicitVRLittleEndian)
        ds.BurnedInAnnotation = "YES"
        rows, cols = 480, 640
        y, x = np.mgrid[0:1:complex(rows), -1:1:complex(cols)]
        fan = (y > 0.08) & (np.abs(x) < y * 0.9)
        pixels = np.where(fan, np.random.default_rng(i).integers(20, 180, size=(rows, cols)), 0).astype(np.uint8)
        pixels[8:24, 8:200] = 255  # where the scanner prints the patient's name
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = pixels.tobytes()
        out.append(ds)
    return out


def with_private_and_nested_phi(ds: Dataset, canary: str) -> Dataset:
    """Plant a canary string in PHI attributes, a nested sequence and a private tag (privacy tests)."""
    ds.PatientName = f"{canary}^Name"
    ds.PatientID = f"{canary}-ID"
    ds.OtherPatientIDs = f"{canary}-OTHER"
    ds.PatientAddress = f"{canary} Street 1"
    ds.InstitutionName = f"{canary} Hospital"
    ds.ReferringPhysicianName = f"{canary}^Referrer"
    ds.AccessionNumber = canary[:16]
    ds.StudyDescription = f"CT {canary}"
    item = Dataset()
    item.PatientName = f"{canary}^Nested"
    item.InstitutionName = f"{canary} Nested Hospital"
    ds.RequestAttributesSequence = Sequence([item])
    block = ds.private_block(0x0009, "READROOM TEST", create=True)
    block.add_new(0x01, "LO", f"{canary} private")
    return ds


def demo_patient(n: int = 0) -> Patient:
    names = ["Rivera^Ana", "Nguyen^Minh", "Johnson^Tamara", "Kowalski^Piotr", "Haddad^Leila", "Brooks^Samuel"]
    return Patient(name=names[n % len(names)], patient_id=f"MRN{100200 + n}",
                   birth_date=date(1950, 1, 1) + timedelta(days=3650 + 977 * n), sex="FM"[n % 2])


__all__ = ["ImplicitVRLittleEndian", "ExplicitVRLittleEndian", "RLELossless"]
