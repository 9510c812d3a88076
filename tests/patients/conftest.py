"""A patient with a personal space, their images as real DICOM bytes, and the upload endpoint."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from accounts.patients import patient_details_save
from accounts.policy import actor_for_user
from studies import synthetic
from studies.ingest import Source, ingest_stream
from studies.models import Study
from tests.factories import UserFactory

UPLOAD_URL = "/my/images/upload/file/"


def give_details(user: User, *, country="US", region="NM", born=date(1979, 4, 2)):
    return patient_details_save(actor=actor_for_user(user), date_of_birth=born, country=country, region=region)


def new_patient(email: str, **details) -> User:
    user = UserFactory(email=email, kind=User.Kind.PATIENT)
    give_details(user, **details)
    return user


@pytest.fixture
def patient(cast) -> User:
    """The cast's patient, with details given (so their personal space exists), living in New Mexico."""
    give_details(cast.patient)
    return cast.patient


def ct_bytes(seed: int = 3, n: int = 3, *, accession="PT0001", description="CT ABDOMEN", size=32) -> list[bytes]:
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(seed), accession=accession, description=description,
                               study_date=date(2026, 9, 14))
    return [synthetic.to_bytes(ds) for ds in synthetic.ct_series(spec, slices=n, size=size)]


def study_in(organization, seed: int = 5, *, accession="PT0005", n: int = 1) -> Study:
    """A real study ingested into ``organization`` (a center or a personal space)."""
    outcome = None
    for data in ct_bytes(seed, n, accession=accession):
        outcome = ingest_stream(organization=organization, stream=io.BytesIO(data), filename="x.dcm",
                                source=Source.IMPORT)
        assert outcome.status == "stored", outcome.reason
    return outcome.instance.study


def send(client, data: bytes, name="IM000001", **fields):
    return client.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, data, content_type="application/octet-stream"),
                                    **fields})


def stored_files() -> list[str]:
    """Every file in default storage, as keys relative to its root."""
    root = Path(default_storage.location)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
