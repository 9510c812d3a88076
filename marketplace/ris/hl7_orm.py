"""What an ORM^O01 or OMI^O23 order message says, read with python-hl7 into ``OrderData``.

One message may carry several orders: each ORC starts one, and the OBR, TQ1, IPC and NTE segments after
it belong to it. Where the fields are read from (IHE Radiology Scheduled Workflow):

- ORC-1 order control (NW new, CA cancel, XO change); ORC-2 placer order number (OBR-2 if ORC-2 is empty);
- accession number: OBR-18 (ORM) or IPC-1 (OMI), else ORC-3 (filler order number);
- PID-3 patient id (the first identifier's id); PID-5 patient name, kept in the DICOM form
  ``Family^Given^Middle^Prefix^Suffix`` that studies hold, so the two compare and display alike;
- OBR-4 procedure code and text; modality from IPC-5 (OMI) or OBR-24;
- priority from ORC-7.6, OBR-27.6 or TQ1-9 (S stat, A urgent, R routine; anything else routine);
- ordering physician from OBR-16, else ORC-12, as text; clinical history from OBR-13 and the NTE-3 comments.

A missing or oversized required field is a ``Refusal`` (ACK AE) naming its HL7 location; values are read
unescaped by the library.
"""

from __future__ import annotations

import hl7

from marketplace.ris.hl7_ack import ERROR, REQUIRED_FIELD_MISSING, TABLE_VALUE_NOT_FOUND, Refusal
from marketplace.ris.orders import CANCEL, CHANGE, NEW, OrderData

ORM, OMI = "ORM", "OMI"
_CONTROLS = {NEW, CANCEL, CHANGE}
_PRIORITIES = {"S": "stat", "A": "urgent", "R": "routine"}
_GROUP_SEGMENTS = {"OBR", "TQ1", "IPC", "NTE"}
# Longest values the order's columns hold (DICOM SH for the accession number, LO for the ids).
_MAX_LENGTH = {"ORC-2": 64, "OBR-18": 16, "IPC-1": 16, "ORC-3": 16, "PID-3": 64}


def read_orders(message: hl7.Message, kind: str) -> list[OrderData]:
    """Every order the message carries, in order; a ``Refusal`` names the first field that is missing."""
    pid = _first(message, "PID")
    groups = _order_groups(message)
    if not groups:
        raise Refusal(ERROR, "ORC-1", "the message carries no order (ORC segment)", REQUIRED_FIELD_MISSING)
    return [_order(message, kind, pid, group, sequence) for sequence, group in enumerate(groups, start=1)]


def _order_groups(message: hl7.Message) -> list[dict[str, list[hl7.Segment]]]:
    groups: list[dict[str, list[hl7.Segment]]] = []
    for segment in message:
        name = str(segment[0])
        if name == "ORC":
            groups.append({"ORC": [segment]})
        elif groups and name in _GROUP_SEGMENTS:
            groups[-1].setdefault(name, []).append(segment)
    return groups


def _order(message, kind: str, pid, group: dict, sequence: int) -> OrderData:
    orc = group["ORC"][0]
    obr = (group.get("OBR") or [None])[0]
    ipc = (group.get("IPC") or [None])[0]
    tq1 = (group.get("TQ1") or [None])[0]

    control = _value(orc, 1).upper()
    if control not in _CONTROLS:
        raise Refusal(ERROR, "ORC-1", f"order control {control!r} is not NW, CA or XO" if control
                      else "order control is required", TABLE_VALUE_NOT_FOUND if control else REQUIRED_FIELD_MISSING,
                      segment_sequence=sequence)
    placer = _required(_value(orc, 2) or _value(obr, 2), "ORC-2", "placer order number", sequence)
    accession_location = "IPC-1" if kind == OMI else "OBR-18"
    accession = _value(ipc, 1) if kind == OMI else _value(obr, 18)
    if not accession and _value(orc, 3):
        accession, accession_location = _value(orc, 3), "ORC-3"
    if control != CANCEL:  # a cancel names the order by its placer number; the rest may be left out
        _required(accession, accession_location, "accession number", sequence)
        _required(_value(pid, 3), "PID-3", "patient id", 1)
    _check_length(accession, accession_location, sequence)
    _check_length(_value(pid, 3), "PID-3", 1)
    return OrderData(
        control=control,
        placer_order_number=placer,
        accession_number=accession,
        patient_id=_value(pid, 3),
        patient_name=_person_name(pid),
        procedure_code=_value(obr, 4),
        procedure_text=_value(obr, 4, component=2),
        modality=(_value(ipc, 5) if kind == OMI else "") or _value(obr, 24),
        priority=_priority(orc, obr, tq1),
        ordering_physician=_physician(obr, 16) or _physician(orc, 12),
        clinical_history=_clinical_history(message, obr, group.get("NTE", [])),
    )


def _required(value: str, location: str, what: str, sequence: int) -> str:
    if not value:
        raise Refusal(ERROR, location, f"{what} is required", REQUIRED_FIELD_MISSING, segment_sequence=sequence)
    _check_length(value, location, sequence)
    return value


def _check_length(value: str, location: str, sequence: int) -> None:
    limit = _MAX_LENGTH.get(location)
    if limit and len(value) > limit:
        raise Refusal(ERROR, location, f"longer than {limit} characters", segment_sequence=sequence)


def _priority(orc, obr, tq1) -> str:
    code = _value(orc, 7, component=6) or _value(obr, 27, component=6) or _value(tq1, 9)
    return _PRIORITIES.get(code[:1].upper(), "routine")


def _person_name(pid) -> str:
    family, given, middle, suffix, prefix = (_value(pid, 5, component=n) for n in range(1, 6))
    return "^".join((family, given, middle, prefix, suffix)).rstrip("^")


def _physician(segment, field: int) -> str:
    """An XCN as text: prefix, given, middle, family, suffix, degree (the id alone if there is no name)."""
    parts = [_value(segment, field, component=n) for n in (6, 3, 4, 2, 5, 7)]
    return " ".join(part for part in parts if part) or _value(segment, field)


def _clinical_history(message: hl7.Message, obr, notes: list) -> str:
    lines = [_value(obr, 13)]
    for note in notes:
        if len(note) > 3:
            lines += [message.unescape(str(repetition)) for repetition in note(3)]
    return "\n".join(line for line in lines if line)[:4000]


def _value(segment, field: int, *, component: int = 1, repetition: int = 1) -> str:
    """One component of a field, unescaped ("" when the segment, field or component is absent)."""
    if segment is None:
        return ""
    try:
        return str(segment.extract_field(1, field, repetition, component, 1)).strip()
    except (IndexError, KeyError):
        return ""


def _first(message: hl7.Message, name: str):
    try:
        return message.segment(name)
    except KeyError:
        return None
