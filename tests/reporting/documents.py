"""Sample report documents for the delivery builder tests: a preliminary STAT report, a final
report with addenda and a critical result, and a 1 MB body."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

from reporting.document import (
    Addendum,
    Center,
    CriticalResult,
    Field,
    Patient,
    Person,
    ReportDocument,
    Section,
    Study,
)

HOSTILE = 'Mass <script>alert("x")</script> & |^~\\& <b>not bold</b> 5 mm'
RADIOLOGIST = Person(name="Ana María Núñez", credentials="MD, FACR", npi="1234567893")
SIGNER = Person(name="Jürgen Groß", credentials="MD", npi="1245319599")
CENTER = Center(
    name="Clínica Imagen del Sur",
    address="12 Rue de l'Église, Lyon",
    phone="+33 4 00 00 00 00",
    timezone="America/Chicago",
    hl7_facility="SURIMG",
)
PATIENT = Patient(
    name="Zoë^Ångström^Łucja^^", patient_id="MRN-0042", issuer="SURIMG", birth_date=date(1961, 2, 3), sex="F"
)
STUDY = Study(
    study_instance_uid="1.2.826.0.1.3680043.8.498.1234567890",
    accession_number="ACC-2024-0001",
    study_date=date(2024, 11, 5),
    modality="CT",
    description="CT chest with contrast",
)
SECTIONS = (
    Section("clinical_information", "Clinical information", "Cough for three weeks."),
    Section("comparison", "Comparison", "None."),
    Section("technique", "Technique", "Axial CT of the chest after IV contrast."),
    Section("findings", "Findings", f"Lungs: {HOSTILE}\nPleura: no effusion.\n\nHeart: normal size."),
    Section("impression", "Impression", "1. Right upper lobe mass, suspicious.\n2. No effusion."),
)


def final(**changes) -> ReportDocument:
    doc = ReportDocument(
        report_id="0b6f3c1e-8f4a-4b7e-9a55-3d7c2f1e9a10",
        request_id="5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        status="final",
        center=CENTER,
        radiologist=RADIOLOGIST,
        patient=PATIENT,
        study=STUDY,
        template_name="CT chest",
        sections=SECTIONS,
        fields=(Field("lung_rads", "Lung-RADS category", "4B"), Field("nodule_size", "Nodule size", "23", "mm")),
        clinical_history="Smoker, 40 pack-years.",
        ordering_physician="Dr. Émile Zola",
        signed_at=datetime(2024, 11, 5, 22, 15, 30, tzinfo=UTC),
        content_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    )
    return dataclasses.replace(doc, **changes)


def preliminary(**changes) -> ReportDocument:
    return final(status="preliminary", signed_at=None, content_hash="", **changes)


def amended(**changes) -> ReportDocument:
    addenda = (
        Addendum(1, "Correction: the mass measures 25 mm.", SIGNER, datetime(2024, 11, 6, 8, 0, tzinfo=UTC)),
        Addendum(2, f"Second look {HOSTILE}", RADIOLOGIST, datetime(2024, 11, 7, 9, 30, tzinfo=UTC)),
    )
    critical = CriticalResult(
        category=1,
        contacted="Nurse Chloé Dubois",
        contacted_at=datetime(2024, 11, 5, 22, 20, tzinfo=UTC),
        method="phone",
        read_back=True,
    )
    return final(status="amended", addenda=addenda, critical=critical, **changes)


def huge(**changes) -> ReportDocument:
    """A findings section of about 1 MB: 12,500 lines of 80 characters."""
    line = "Findings line with words enough to fill a printed line in the report body ok. "
    body = "\n".join(f"{n:05d} {line}"[:80] for n in range(12_500))
    sections = (*SECTIONS[:3], Section("findings", "Findings", body), SECTIONS[4])
    return final(sections=sections, **changes)
