"""The report as a DICOM Basic Text SR in the report's own study, so it travels with the images.

Content follows TID 2000 (Basic Diagnostic Imaging Report): a root CONTAINER "Diagnostic imaging
report" (LOINC 18748-4) holding the observer context (TID 1001), one CONTAINER per section headed
by a CID 7001 code with one TEXT item (CID 7002 concept) for its text, structured fields and the
critical-result communication as TEXT items under a private scheme (99READROOM), and one
"Addendum" CONTAINER per addendum.

Identity: the series UID is derived from the report id alone (every version of a report sits in
one SR series); the instance UID from the report id, the phase (preliminary or signed) and the
number of addenda, so re-delivering the same content is idempotent and each addendum yields a new
instance that names its predecessor (Predecessor Documents Sequence).
"""

from __future__ import annotations

import io
import uuid
from datetime import date, datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from reporting.delivery import PRELIMINARY, check_document, utc
from reporting.document import Person, ReportDocument

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://readroom/reporting/sr")
PRIVATE_SCHEME = "99READROOM"
ROOT = ("18748-4", "LN", "Diagnostic imaging report")
# section code -> (CID 7001 heading, CID 7002 text concept)
SECTION_CONCEPTS = {
    "clinical_information": (("121060", "DCM", "History"), ("121060", "DCM", "History")),
    "comparison": (("121066", "DCM", "Prior Procedure Descriptions"), ("121065", "DCM", "Procedure Description")),
    "technique": (("121064", "DCM", "Current Procedure Descriptions"), ("121065", "DCM", "Procedure Description")),
    "findings": (("121070", "DCM", "Findings"), ("121071", "DCM", "Finding")),
    "impression": (("121072", "DCM", "Impressions"), ("121073", "DCM", "Impression")),
    "other": (("121070", "DCM", "Findings"), ("121071", "DCM", "Finding")),
}
ADDENDUM = ("121078", "DCM", "Addendum")
CRITICAL = ("CRITICAL", PRIVATE_SCHEME, "Critical result communication")


def basic_text_sr(doc: ReportDocument) -> bytes:
    """The report as a DICOM Part 10 file (Explicit VR Little Endian, UTF-8 text)."""
    check_document(doc)
    sop_uid = instance_uid(doc.report_id, doc.status, len(doc.addenda))
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = sop_uid
    moment = _content_time(doc)
    ds.InstanceCreationDate, ds.InstanceCreationTime = _da(moment), _tm(moment)
    ds.TimezoneOffsetFromUTC = "+0000"
    _patient_and_study(ds, doc)
    _series(ds, doc)
    _document_general(ds, doc, moment)
    _content(ds, doc)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def series_uid(report_id: str) -> str:
    return _derived_uid(f"series/{report_id}")


def instance_uid(report_id: str, status: str, addenda: int) -> str:
    phase = "preliminary" if status == PRELIMINARY else "signed"
    return _derived_uid(f"instance/{report_id}/{phase}/{addenda}")


def _derived_uid(name: str) -> str:
    """A UUID-derived UID (PS3.5 B.2, root 2.25) from a name-based UUID: the same name, the same UID.
    (pydicom's generate_uid ignores its entropy sources under the 2.25 root and returns a random one.)"""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}"


def _file_meta(sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _patient_and_study(ds: Dataset, doc: ReportDocument) -> None:
    patient, study = doc.patient, doc.study
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    if patient.issuer:
        ds.IssuerOfPatientID = patient.issuer
    ds.PatientBirthDate = _da(patient.birth_date) if patient.birth_date else ""
    ds.PatientSex = patient.sex if patient.sex in {"M", "F", "O"} else ""
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = _da(study.study_date) if study.study_date else ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = study.accession_number
    ds.ReferringPhysicianName = doc.ordering_physician
    if study.description:
        ds.StudyDescription = study.description


def _series(ds: Dataset, doc: ReportDocument) -> None:
    ds.Modality = "SR"
    ds.SeriesInstanceUID = series_uid(doc.report_id)
    ds.SeriesNumber = 9000  # apart from the modality's own series numbers
    ds.SeriesDescription = "ReadRoom report"
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.Manufacturer = "ReadRoom"
    ds.InstitutionName = doc.center.name[:64]


def _document_general(ds: Dataset, doc: ReportDocument, moment: datetime) -> None:
    signed = doc.status != PRELIMINARY
    # 1 for a preliminary, 2 for the signed report, 2 + n after n addenda.
    ds.InstanceNumber = 1 if not signed else 2 + len(doc.addenda)
    ds.ContentDate, ds.ContentTime = _da(moment), _tm(moment)
    ds.CompletionFlag = "COMPLETE" if signed else "PARTIAL"
    ds.VerificationFlag = "VERIFIED" if signed else "UNVERIFIED"
    ds.PreliminaryFlag = "FINAL" if signed else "PRELIMINARY"
    ds.PerformedProcedureCodeSequence = Sequence()
    if signed:
        observers = [(doc.radiologist, doc.signed_at)] + [(a.signer, a.signed_at) for a in doc.addenda]
        ds.VerifyingObserverSequence = Sequence([_verifier(doc, person, when) for person, when in observers])
    if doc.addenda:
        ds.PredecessorDocumentsSequence = Sequence([_predecessor(doc)])


def _verifier(doc: ReportDocument, person: Person, when: datetime) -> Dataset:
    item = Dataset()
    item.VerifyingObserverName = person.name
    item.VerifyingOrganization = doc.center.name[:64]
    item.VerificationDateTime = _dt(when)
    item.VerifyingObserverIdentificationCodeSequence = Sequence(
        [_code(person.npi, "NPI", f"{person.name}, {person.credentials}".strip(", ")[:64])] if person.npi else []
    )
    return item


def _predecessor(doc: ReportDocument) -> Dataset:
    """The previous signed version: the same report with one addendum fewer."""
    previous = Dataset()
    previous.ReferencedSOPClassUID = BASIC_TEXT_SR
    previous.ReferencedSOPInstanceUID = instance_uid(doc.report_id, doc.status, len(doc.addenda) - 1)
    series = Dataset()
    series.SeriesInstanceUID = series_uid(doc.report_id)
    series.ReferencedSOPSequence = Sequence([previous])
    study = Dataset()
    study.StudyInstanceUID = doc.study.study_instance_uid
    study.ReferencedSeriesSequence = Sequence([series])
    return study


def _content(ds: Dataset, doc: ReportDocument) -> None:
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code(*ROOT)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2000"
    ds.ContentTemplateSequence = Sequence([template])
    items = [
        _item("HAS OBS CONTEXT", "CODE", ("121005", "DCM", "Observer Type"), ("121006", "DCM", "Person")),
        _item("HAS OBS CONTEXT", "PNAME", ("121008", "DCM", "Person Observer Name"), doc.radiologist.name),
    ]
    if doc.clinical_history:
        items.append(_section(SECTION_CONCEPTS["clinical_information"], doc.clinical_history))
    for section in doc.sections:
        items.append(_section(SECTION_CONCEPTS.get(section.code, SECTION_CONCEPTS["other"]), section.text))
    for field in doc.fields:
        value = f"{field.value} {field.unit}".strip()
        items.append(_item("CONTAINS", "TEXT", (field.code[:16], PRIVATE_SCHEME, field.label[:64]), value))
    if doc.critical is not None:
        critical = doc.critical
        text = (
            f"Category {critical.category}; communicated to {critical.contacted} by {critical.method} at "
            f"{utc(critical.contacted_at, 'critical.contacted_at'):%Y-%m-%d %H:%M} UTC; "
            f"read back: {'yes' if critical.read_back else 'no'}."
        )
        items.append(_item("CONTAINS", "TEXT", CRITICAL, text))
    for addendum in doc.addenda:
        text = f"{addendum.text}\n\nSigned by {addendum.signer.name} at {_dt(addendum.signed_at)}"
        items.append(_section((ADDENDUM, ADDENDUM), text))
    ds.ContentSequence = Sequence(items)


def _section(concepts, text: str) -> Dataset:
    heading, concept = concepts
    container = _item("CONTAINS", "CONTAINER", heading)
    container.ContinuityOfContent = "SEPARATE"
    container.ContentSequence = Sequence([_item("CONTAINS", "TEXT", concept, text)])
    return container


def _item(relationship: str, value_type: str, concept, value=None) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([_code(*concept)])
    if value_type == "TEXT":
        item.TextValue = value
    elif value_type == "CODE":
        item.ConceptCodeSequence = Sequence([_code(*value)])
    elif value_type == "PNAME":
        item.PersonName = value
    return item


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue = value
    code.CodingSchemeDesignator = scheme
    code.CodeMeaning = meaning
    return code


def _content_time(doc: ReportDocument) -> datetime:
    """When this version's content was fixed: the last signature; for an unsigned preliminary
    (no clock passed in, to stay deterministic) the study date."""
    if doc.addenda:
        return utc(doc.addenda[-1].signed_at, "addenda.signed_at")
    if doc.signed_at is not None:
        return utc(doc.signed_at, "signed_at")
    day = doc.study.study_date or date(1970, 1, 1)
    return datetime(day.year, day.month, day.day)  # noqa: DTZ001 (a date, no clock)


def _da(value: date | datetime) -> str:
    return value.strftime("%Y%m%d")


def _tm(value: datetime) -> str:
    return value.strftime("%H%M%S")


def _dt(value: datetime) -> str:
    return utc(value, "signed_at").strftime("%Y%m%d%H%M%S+0000")
