"""Builders for the delivery tests: a study with a non-ASCII patient, a report signed through the real
services with its after-commit delivery run, and addenda."""

from __future__ import annotations

from datetime import date, timedelta
from io import BytesIO
from itertools import count

from django.utils import timezone

from accounts.models import RadiologistProfile
from reporting.models import Report
from reporting.services import reports
from studies import synthetic
from studies.ingest import Source, ingest_stream
from tests.marketplace.helpers import actor
from tests.reporting.conftest import assigned_read, make_template

HOSTILE = 'Mass <script>alert("x")</script> & |^~\\& <b>not bold</b>'
PATIENT_NAME = "Ñúñez^Zoë^Łucja"
READER_NAME = "Ana María Groß"
READER_NPI = "1234567893"
_seq = count(1)
FIELDS = [
    {"code": "severity", "label": "Severity", "kind": "choice", "section": "impression",
     "choices": [["1", "Mild"], ["2", "Moderate"], ["3", "Severe"]]},
    {"code": "shift", "label": "Midline shift", "kind": "number", "unit": "mm", "section": "findings"},
]


def delivery_template():
    """The CT head template of the reporting tests, with a pick list and a number with a unit."""
    return make_template(fields=FIELDS)


def unicode_study(center):
    """A one-slice CT at ``center`` whose patient is named with letters outside ASCII."""
    n = next(_seq)
    patient = synthetic.Patient(name=PATIENT_NAME, patient_id=f"MRN-U{n}", birth_date=date(1961, 2, 3), sex="F")
    spec = synthetic.StudySpec(patient=patient, accession=f"ACC{n:05d}", description="CT HEAD WO CONTRAST",
                               study_date=date(2026, 11, 1), referring="Zola^Émile^^Dr")
    outcome = None
    for ds in synthetic.ct_series(spec, slices=1, size=32):
        outcome = ingest_stream(organization=center, stream=BytesIO(synthetic.to_bytes(ds)), filename="u.dcm",
                                source=Source.IMPORT, jurisdiction=(center.country, center.region))
        assert outcome.status == "stored", outcome.reason
    study = outcome.instance.study
    study.refresh_from_db()
    return study


def open_report(cast, **post_fields) -> Report:
    """The cast radiologist's open draft on a CT of ``unicode_study`` at the cast's center."""
    read_request = assigned_read(cast, study=unicode_study(cast.center), **post_fields)
    RadiologistProfile.objects.filter(user=cast.radiologist).update(display_name=READER_NAME,
                                                                   credentials_line="MD, FACR", npi=READER_NPI)
    return reports.report_open(actor=actor(cast.radiologist), read_request=read_request)


def write(cast, report: Report, fields: dict | None = None, **sections) -> Report:
    return reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                               sections={**report.sections, **sections}, fields={**report.fields, **(fields or {})})


def sign(cast, report: Report, capture, *, critical: bool = False) -> Report:
    """Sign at service level (second factor just passed) and run the after-commit delivery."""
    critical_input = reports.CriticalInput(
        category=1, finding="Acute subdural hematoma", contacted_name="Nurse Chloé Dubois",
        contacted_at=timezone.now() - timedelta(minutes=1), method="phone", read_back=True) if critical else None
    with capture(execute=True):
        signed = reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version,
                                     second_factor_age=0, critical=critical_input)
    return Report.objects.get(pk=signed.pk)


def add_addendum(cast, report: Report, text: str, capture):
    with capture(execute=True):
        return reports.addendum_sign(actor=actor(cast.radiologist), report=report, text=text, second_factor_age=0)


def signed_report(cast, capture, *, critical: bool = False, **post_fields) -> Report:
    """A final report with hostile text in its findings, delivered."""
    report = open_report(cast, clinical_history="Fell from a ladder.", **post_fields)
    report = write(cast, report, fields={"severity": "2", "shift": "3"},
                   findings=f"Left frontal: {HOSTILE}\nNo midline shift.",
                   impression="Small left frontal contusion.")
    return sign(cast, report, capture, critical=critical)
