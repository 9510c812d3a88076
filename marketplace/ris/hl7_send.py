"""An order as a RIS sends it (ORM^O01 or OMI^O23), built with hl7apy (v2.5), and sent over MLLP with
python-hl7's client.

For trying the listener (``manage.py hl7_send_order``), the bench and the tests: the message is built by
another library than the one that parses it on arrival, and every value goes through hl7apy's datatypes,
which escape ``|^~\\&``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from hl7.client import MLLPClient
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.v2_5 import get_base_datatypes

VERSION = "2.5"
_TYPES = get_base_datatypes()


@dataclass
class Order:
    """What the test RIS orders (empty values are left out of the message)."""

    control_id: str
    placer: str = "PL-1001"
    accession: str = "ACC-1001"
    patient_id: str = "P-1001"
    patient_family: str = "Doe"
    patient_given: str = "Jane"
    procedure_code: str = "CTHEAD"
    procedure_text: str = "CT head without contrast"
    modality: str = "CT"
    priority: str = "S"  # S stat, A asap, R routine
    physician_family: str = "House"
    physician_given: str = "Gregory"
    history: str = "Headache for 3 days"
    note: str = ""
    control: str = "NW"
    application: str = "RIS"
    facility: str = "LAKESIDE_RIS"
    version: str = VERSION


def orm_o01(order: Order) -> str:
    """The order as an ORM^O01 in ER7 text (``\\r`` between segments); the accession number in OBR-18."""
    message = _message("ORM_O01", order)
    group = message.add_group("ORM_O01_ORDER")
    _orc(group.orc, order)
    detail = group.add_group("ORM_O01_ORDER_DETAIL")
    _obr(detail.add_group("ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP").obr, order, accession=True)
    if order.modality:
        _put(detail.orm_o01_obrrqdrq1rxoodsodt_suppgrp.obr, "obr_24", order.modality)
    if order.note:
        _put(detail.add_segment("NTE"), "nte_3", order.note)
    return message.to_er7()


def omi_o23(order: Order) -> str:
    """The order as an OMI^O23 (IHE Radiology): the accession number in IPC-1, the modality in IPC-5."""
    message = _message("OMI_O23", order)
    group = message.add_group("OMI_O23_ORDER")
    _orc(group.orc, order)
    _obr(group.obr, order, accession=False)
    if order.note:
        _put(group.add_segment("NTE"), "nte_3", order.note)
    ipc = group.add_segment("IPC")
    _put(ipc.ipc_1, "ei_1", order.accession)
    _put(ipc.ipc_2, "ei_1", order.placer)
    _put(ipc.ipc_3, "ei_1", f"2.25.{zlib.crc32(order.accession.encode())}")
    _put(ipc.ipc_4, "ei_1", "1")
    if order.modality:
        _put(ipc.ipc_5, "ce_1", order.modality)
    return message.to_er7()


def _message(structure: str, order: Order) -> Message:
    message = Message(structure, version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = message.msh
    _put(msh.msh_3, "hd_1", order.application)
    _put(msh.msh_4, "hd_1", order.facility)
    _put(msh.msh_5, "hd_1", "READROOM")
    msh.msh_7.ts_1 = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    msh.msh_9 = structure.replace("_", "^") + "^" + structure
    _put(msh, "msh_10", order.control_id)
    msh.msh_11 = "P"
    msh.msh_12 = order.version
    pid = message.add_group(f"{structure}_PATIENT").pid
    pid.pid_1 = "1"
    if order.patient_id:
        _put(pid.pid_3, "cx_1", order.patient_id)
    _put(pid.pid_5.xpn_1, "fn_1", order.patient_family)
    _put(pid.pid_5, "xpn_2", order.patient_given)
    return message


def _orc(orc, order: Order) -> None:
    orc.orc_1 = order.control
    if order.placer:
        _put(orc.orc_2, "ei_1", order.placer)
    orc.orc_7 = f"^^^^^{order.priority}"
    _put(orc.orc_12.xcn_2, "fn_1", order.physician_family)
    _put(orc.orc_12, "xcn_3", order.physician_given)


def _obr(obr, order: Order, *, accession: bool) -> None:
    obr.obr_1 = "1"
    if order.placer:
        _put(obr.obr_2, "ei_1", order.placer)
    _put(obr.obr_4, "ce_1", order.procedure_code)
    _put(obr.obr_4, "ce_2", order.procedure_text)
    if order.history:
        _put(obr, "obr_13", order.history)
    if accession and order.accession:
        _put(obr, "obr_18", order.accession)


def send(message: str, *, host: str = "127.0.0.1", port: int = 2575) -> str:
    """Send one message over MLLP and return the ACK as text."""
    with MLLPClient(host, port, encoding="utf-8") as client:
        return client.send_message(message).decode("utf-8")


def _put(parent, name: str, value: str) -> None:
    """Set a leaf through the datatype its definition names (ST, IS, ID...), which escapes the value."""
    setattr(parent, name, _TYPES[getattr(parent, name).datatype](value))
