"""The report as delivered: one immutable data contract that every delivery builder reads.

The reporting services assemble a ``ReportDocument`` from the models; the builders in
``reporting.delivery`` turn it into PDF, HL7 v2, FHIR and DICOM SR without touching the database,
so the same signed content always yields the same output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

IMPRESSION = "impression"


@dataclass(frozen=True)
class Person:
    """A radiologist or a signer."""

    name: str  # display name, e.g. "Ana María Núñez"
    credentials: str  # e.g. "MD, FACR"
    npi: str = ""  # 10 digits or ""


@dataclass(frozen=True)
class Center:
    """The imaging center that receives the report."""

    name: str
    address: str = ""
    phone: str = ""
    timezone: str = "UTC"  # IANA zone, used for times printed on the PDF
    hl7_facility: str = ""  # HD namespace id used as receiving facility in MSH-6


@dataclass(frozen=True)
class Patient:
    name: str  # DICOM PN, e.g. "Doe^Jane^^^" (may be non-ASCII)
    patient_id: str
    issuer: str = ""
    birth_date: date | None = None
    sex: str = ""  # M/F/O/""


@dataclass(frozen=True)
class Study:
    study_instance_uid: str
    accession_number: str = ""
    study_date: date | None = None
    modality: str = ""
    description: str = ""


@dataclass(frozen=True)
class Section:
    code: str  # clinical_information | comparison | technique | findings | impression | other
    title: str
    text: str


@dataclass(frozen=True)
class Field:
    """A structured field value (e.g. the BI-RADS assessment category)."""

    code: str
    label: str
    value: str
    unit: str = ""


@dataclass(frozen=True)
class CriticalResult:
    category: int  # 1 immediate, 2 urgent, 3 non-urgent
    contacted: str
    contacted_at: datetime
    method: str
    read_back: bool


@dataclass(frozen=True)
class Addendum:
    number: int
    text: str
    signer: Person
    signed_at: datetime  # aware UTC


@dataclass(frozen=True)
class ReportDocument:
    """Everything a delivery form shows about one report version (original plus its addenda)."""

    report_id: str  # UUID string, stable
    request_id: str  # the read request's public id (UUID string)
    status: str  # "preliminary" | "final" | "amended" (final with addenda)
    center: Center
    radiologist: Person
    patient: Patient
    study: Study
    template_name: str
    sections: tuple[Section, ...]
    fields: tuple[Field, ...] = ()
    clinical_history: str = ""
    ordering_physician: str = ""
    signed_at: datetime | None = None  # aware UTC; None for a preliminary not yet signed
    content_hash: str = ""  # sha256 hex of the signed content
    addenda: tuple[Addendum, ...] = ()
    critical: CriticalResult | None = None
    placer_order_number: str = ""  # the RIS's own order number when the read came from its order (issue 23)

    @property
    def impression(self) -> str:
        """Text of the impression section ("" when the template has none)."""
        return next((s.text for s in self.sections if s.code == IMPRESSION), "")
