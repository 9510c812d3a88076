"""HL7 v2.5.1 ORU^R01 for a report, built with hl7apy.

Layout (IHE Radiology practice):

- MSH-18 ``UNICODE UTF-8``: names and text are sent as written; the caller encodes the string as UTF-8.
- ORC-2 / OBR-2 placer order number: the RIS's own order number when the read came from its order (the
  RIS finds its order by it), else the read request's id; ORC-3 / OBR-3 filler order number and
  OBR-18 (placer field 1): the accession number; OBR-25 result status P/F/C.
- OBR-32 principal result interpreter: the radiologist (NPI as id, credentials as degree).
- OBX 1: the study instance UID (``ST``, OBX-3 ``113014^DICOM Study^DCM``).
- Then one ``TX`` OBX per section (OBX-3 the section's LOINC code, OBX-4 the section number) whose
  OBX-5 repeats once per line of text (HL7's TX convention: each repetition displays as a line), one
  ``ST`` OBX per structured field (OBX-6 its unit), one ``TX`` OBX for the critical-result
  communication, and one per addendum (LOINC 55107-7, OBX-14 its time, OBX-16 its signer).
  OBX-11 repeats the result status (P/F/C).

  Why not one OBX per line: hl7apy spends about 8 ms per segment, so a 1 MB report (12,500 lines)
  took 95 s; a repetition costs about 0.1 ms.

Every text value goes into the message as an hl7apy datatype object (``ST``/``TX``), so hl7apy
escapes ``|^~\\&``; nothing here escapes by hand. The message is assembled at hl7apy's tolerant level
because OBX-5's type varies per OBX; the tests re-parse it at the strict level and validate it.
"""

from __future__ import annotations

from datetime import date, datetime

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Field, Message, Segment
from hl7apy.v2_5_1 import ST, TX, get_base_datatypes

from reporting.delivery import (
    AMENDED,
    FINAL,
    LOINC_ADDENDUM,
    LOINC_DIAGNOSTIC_IMAGING,
    PRELIMINARY,
    SECTION_LOINC,
    check_document,
    invalid,
    name_parts,
    utc,
)
from reporting.document import Person, ReportDocument

VERSION = "2.5.1"
BASE_DATATYPES = get_base_datatypes()
RESULT_STATUS = {PRELIMINARY: "P", FINAL: "F", AMENDED: "C"}
ORDER_STATUS = {PRELIMINARY: "IP", FINAL: "CM", AMENDED: "CM"}
STUDY_UID_CODE = ("113014", "DICOM Study", "DCM")
CRITICAL_CODE = ("CRITICAL", "Critical result communication", "99READROOM")
# hl7apy's ST/IS/TX maxima (checked when a message is parsed at the strict level).
ST_MAX = 199
IS_MAX = 20
TX_MAX = 65536 // 2  # hl7apy's TX maximum, with room for escape sequences to grow the line


def oru_r01(
    doc: ReportDocument,
    *,
    sending_application: str = "READROOM",
    sending_facility: str = "READROOM",
    receiving_application: str = "",
    control_id: str,
    now: datetime,
) -> str:
    """The report as one ORU^R01 message in ER7 with ``\\r`` segment separators."""
    check_document(doc)
    if not control_id:
        raise invalid("control_id", "control_id is required (MSH-10)")
    message = Message("ORU_R01", version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    _header(message, doc, sending_application, sending_facility, receiving_application, control_id, now)
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    _patient(result.add_group("ORU_R01_PATIENT"), doc)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    _order(order, doc, now)
    for obx in _observations(doc):
        order.add_group("ORU_R01_OBSERVATION").add(obx)
    return message.to_er7()


def _header(message, doc, sending_app, sending_facility, receiving_app, control_id, now) -> None:
    msh = message.msh
    _put(msh.msh_3, "hd_1", sending_app)
    _put(msh.msh_4, "hd_1", sending_facility)
    if receiving_app:
        _put(msh.msh_5, "hd_1", receiving_app)
    if doc.center.hl7_facility:
        _put(msh.msh_6, "hd_1", doc.center.hl7_facility)
    msh.msh_7.ts_1 = _ts(utc(now, "now"))
    msh.msh_9 = "ORU^R01^ORU_R01"
    _put(msh, "msh_10", control_id)
    msh.msh_11 = "P"
    msh.msh_12 = VERSION
    msh.msh_18 = "UNICODE UTF-8"


def _patient(group, doc: ReportDocument) -> None:
    pid = group.pid
    pid.pid_1 = "1"
    _put(pid.pid_3, "cx_1", doc.patient.patient_id)
    if doc.patient.issuer:
        _put(pid.pid_3.cx_4, "hd_1", doc.patient.issuer)
    family, given, middle, prefix, suffix = name_parts(doc.patient.name)
    for component, value in (("xpn_2", given), ("xpn_3", middle), ("xpn_4", suffix), ("xpn_5", prefix)):
        if value:
            _put(pid.pid_5, component, value)
    _put(pid.pid_5.xpn_1, "fn_1", family)
    if doc.patient.birth_date:
        pid.pid_7.ts_1 = _day(doc.patient.birth_date)
    if doc.patient.sex in {"M", "F", "O"}:
        pid.pid_8 = doc.patient.sex
    # The reading platform does not know the encounter; PV1-2 "U" says so rather than guessing.
    group.add_group("ORU_R01_VISIT").pv1.pv1_2 = "U"


def _order(order, doc: ReportDocument, now: datetime) -> None:
    status = RESULT_STATUS[doc.status]
    orc, obr = order.orc, order.obr
    orc.orc_1 = "RE"
    placer = doc.placer_order_number or doc.request_id
    _put(orc.orc_2, "ei_1", placer)
    obr.obr_1 = "1"
    _put(obr.obr_2, "ei_1", placer)
    if doc.study.accession_number:
        _put(orc.orc_3, "ei_1", doc.study.accession_number)
        _put(obr.obr_3, "ei_1", doc.study.accession_number)
        _put(obr, "obr_18", doc.study.accession_number)
    orc.orc_5 = ORDER_STATUS[doc.status]
    code, text = LOINC_DIAGNOSTIC_IMAGING
    _put(obr.obr_4, "ce_1", code)
    _put(obr.obr_4, "ce_2", doc.study.description or text)
    obr.obr_4.ce_3 = "LN"
    if doc.study.study_date:
        obr.obr_7.ts_1 = _day(doc.study.study_date)
    if doc.ordering_physician:
        _put(orc.orc_12.xcn_2, "fn_1", doc.ordering_physician)
        _put(obr.obr_16.xcn_2, "fn_1", doc.ordering_physician)
    obr.obr_22.ts_1 = _ts(utc(_status_time(doc) or now, "signed_at"))
    obr.obr_24 = "RAD"
    obr.obr_25 = status
    interpreter = obr.obr_32.ndl_1
    if doc.radiologist.npi:
        _put(interpreter, "cnn_1", doc.radiologist.npi)
        _put(interpreter, "cnn_9", "NPI")
    _put(interpreter, "cnn_2", doc.radiologist.name)
    # CNN-7 (degree) is a 20-character coded value; longer credentials travel in OBX-16 only.
    if 0 < len(doc.radiologist.credentials) <= IS_MAX:
        _put(interpreter, "cnn_7", doc.radiologist.credentials)


def _status_time(doc: ReportDocument) -> datetime | None:
    """When the result reached its current status: the last addendum, else the signature."""
    return doc.addenda[-1].signed_at if doc.addenda else doc.signed_at


def _observations(doc: ReportDocument):
    status = RESULT_STATUS[doc.status]
    signed = _ts(utc(doc.signed_at, "signed_at")) if doc.signed_at else ""
    set_ids = iter(range(1, 1_000_000_000))

    yield _obx(next(set_ids), "ST", STUDY_UID_CODE, "", [doc.study.study_instance_uid], status)
    sub_ids = (str(n) for n in range(1, 1_000_000_000))
    for section in doc.sections:
        code, _ = SECTION_LOINC.get(section.code, SECTION_LOINC["other"])
        concept = (code, section.title, "LN")
        yield _obx(next(set_ids), "TX", concept, next(sub_ids), _lines(section.text), status, signed, doc.radiologist)
    for field in doc.fields:
        concept = (field.code, field.label, "99READROOM")
        value_type = "ST" if len(field.value) <= ST_MAX else "TX"
        obx = _obx(next(set_ids), value_type, concept, next(sub_ids), [field.value], status, signed, doc.radiologist)
        if field.unit:
            _put(obx.obx_6, "ce_1", field.unit)
        yield obx
    if doc.critical is not None:
        lines = _critical_lines(doc)
        yield _obx(next(set_ids), "TX", CRITICAL_CODE, next(sub_ids), lines, status, signed, doc.radiologist)
    for addendum in doc.addenda:
        when = _ts(utc(addendum.signed_at, f"addenda[{addendum.number}].signed_at"))
        concept = (LOINC_ADDENDUM[0], f"Addendum {addendum.number}", "LN")
        yield _obx(next(set_ids), "TX", concept, next(sub_ids), _lines(addendum.text), status, when, addendum.signer)


def _obx(set_id, value_type, concept, sub_id, values, status, observed="", observer: Person | None = None):
    """One OBX; for TX each value is one repetition of OBX-5, which HL7 displays as one line."""
    obx = Segment("OBX", version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    obx.obx_1 = str(set_id)
    obx.obx_2 = value_type
    code, text, system = concept
    _put(obx.obx_3, "ce_1", code)
    _put(obx.obx_3, "ce_2", text)
    _put(obx.obx_3, "ce_3", system)
    if sub_id:
        _put(obx, "obx_4", sub_id)
    # OBX-5's type follows OBX-2; a typed Field makes hl7apy escape the text (a bare string would not).
    datatype = TX if value_type == "TX" else ST
    for value in values:
        observation = Field("OBX_5", datatype=value_type, version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
        observation.value = datatype(value)
        obx.add(observation)
    obx.obx_11 = status
    if observed:
        obx.obx_14.ts_1 = observed
    if observer is not None:
        if observer.npi:
            _put(obx.obx_16, "xcn_1", observer.npi)
        _put(obx.obx_16.xcn_2, "fn_1", observer.name)
        if observer.credentials:
            _put(obx.obx_16, "xcn_21", observer.credentials)
    return obx


def _put(parent, name: str, value: str) -> None:
    """Set a text leaf through the hl7apy datatype its definition names (ST, IS, ID...), which escapes it."""
    setattr(parent, name, BASE_DATATYPES[getattr(parent, name).datatype](value))


def _critical_lines(doc: ReportDocument) -> list[str]:
    critical = doc.critical
    when = utc(critical.contacted_at, "critical.contacted_at")
    return [
        f"Critical result, category {critical.category}.",
        f"Communicated to {critical.contacted} by {critical.method} at {when:%Y-%m-%d %H:%M} UTC; "
        f"read back: {'yes' if critical.read_back else 'no'}.",
    ]


def _lines(text: str) -> list[str]:
    """The text's lines, each at most TX_MAX characters (a longer one is wrapped onto the next line)."""
    lines = text.splitlines() or [""]
    return [chunk for line in lines for chunk in _chunks(line, TX_MAX)]


def _chunks(value: str, size: int) -> list[str]:
    return [value[start : start + size] for start in range(0, len(value), size)] or [""]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + "+0000"


def _day(day: date) -> str:
    return day.strftime("%Y%m%d")
