"""DICOM fixtures: fictional studies generated with pydicom, and private storage per test."""

from __future__ import annotations

import io
from datetime import date

import pytest

from studies import synthetic


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Each test stores into its own folder (the S3 variant is exercised by the storage tests)."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}


@pytest.fixture
def study_spec():
    return synthetic.StudySpec(patient=synthetic.demo_patient(0), accession="ACC000123",
                               description="CT CHEST WITH CONTRAST", study_date=date(2026, 11, 2))


@pytest.fixture
def ct_files(study_spec):
    """Five CT slices as Part 10 bytes (explicit VR little endian)."""
    return [synthetic.to_bytes(ds) for ds in synthetic.ct_series(study_spec, slices=5, size=128)]


def as_stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
