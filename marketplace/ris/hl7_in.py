"""HL7 v2 order messages in (issue 23, item 1): parse, check the sender, apply, acknowledge, keep.

``handle_message`` takes one message as it came out of its MLLP frame and returns the ACK bytes. The
checks, in order, each answered with an ACK naming the field (``hl7_ack``):

1. HL7 v2 at all, in the character set MSH-18 declares (else UTF-8, else Latin-1) — AR;
2. the sender: an active ``Hl7Interface`` for MSH-3/MSH-4, from one of its allowed hosts; MSH-10 present — AR
   (the listener's connection reuses the interface it found for ``INTERFACE_RECHECK_SECONDS``, 5 s);
3. repeated MSH-10 from the same interface: the stored ACK again, nothing done twice (a unique constraint
   settles two copies arriving at once; the one that loses the race answers the winner's ACK);
4. version 2.3 to 2.5.1 (MSH-12) and type ORM^O01 or OMI^O23 (MSH-9) — AR;
5. the orders it carries (``hl7_orm``), applied by ``orders.order_apply`` all together or not at all — AE
   naming the field when a field is missing or the order cannot be applied.

Every message is stored (``Hl7Message``: raw bytes, ACK, code, error, peer) and audited under the interface's
center. Until the sender is known (step 2) a message is stored without its interface, so that nobody can use
up another sender's control ids. A message that failed for our own fault (not the sender's) is answered AE
and processed afresh when sent again.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass

import hl7
from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from accounts.models import AuditEvent
from core.errors import ApplicationError
from core.sql import insert_rows, sent_together
from marketplace.ris import hl7_ack
from marketplace.ris.hl7_ack import ACCEPT, ERROR, REJECT, Refusal
from marketplace.ris.hl7_orm import OMI, ORM, read_orders
from marketplace.ris.interfaces import InterfaceCache
from marketplace.ris.orders import order_apply
from marketplace.ris_models import Hl7Interface, Hl7Message

logger = logging.getLogger(__name__)

VERSIONS = {"2.3", "2.3.1", "2.4", "2.5", "2.5.1"}
MESSAGE_TYPES = {("ORM", "O01"): ORM, ("OMI", "O23"): OMI}
# MSH-18 values (HL7 table 0211) and the Python codec for each.
CHARSETS = {"ASCII": "ascii", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "8859/1": "latin-1",
            **{f"8859/{n}": f"iso8859-{n}" for n in range(2, 16) if n != 12}}
RETRY_TEXT = "ReadRoom could not apply the message; send it again"
_OUTCOMES = {ACCEPT: AuditEvent.Outcome.SUCCESS, ERROR: AuditEvent.Outcome.FAILURE, REJECT: AuditEvent.Outcome.DENIED}
# OrderData attribute -> HL7 location, for errors order_apply names by attribute.
_LOCATIONS = {"control": "ORC-1", "placer_order_number": "ORC-2", "accession_number": "OBR-18",
              "patient_id": "PID-3", "patient_name": "PID-5", "procedure_code": "OBR-4", "procedure_text": "OBR-4",
              "modality": "OBR-24", "priority": "ORC-7", "ordering_physician": "OBR-16",
              "clinical_history": "OBR-13"}
_LOCATION = re.compile(r"^[A-Z][A-Z0-9]{2}-\d+$")
# order_apply's error codes -> HL7 table 0357 (a business refusal, such as a read already signed, is 207 with
# our own code in ERR-5).
_HL7_CODES = {"required": hl7_ack.REQUIRED_FIELD_MISSING, "too_long": hl7_ack.DATA_TYPE_ERROR,
              "unsupported_control": hl7_ack.TABLE_VALUE_NOT_FOUND, "invalid_priority": hl7_ack.TABLE_VALUE_NOT_FOUND,
              "not_found": hl7_ack.UNKNOWN_KEY, "unknown_order": hl7_ack.UNKNOWN_KEY}


@dataclass(frozen=True)
class Header:
    """The MSH fields the listener acts on, read once per message."""

    application: str = ""  # MSH-3
    facility: str = ""  # MSH-4
    control_id: str = ""  # MSH-10
    version: str = ""  # MSH-12
    code: str = ""  # MSH-9.1, e.g. ORM
    trigger: str = ""  # MSH-9.2, e.g. O01

    @property
    def type(self) -> str:
        return "^".join(part for part in (self.code, self.trigger) if part)[:20]


def handle_message(raw: bytes, peer: str, interfaces: InterfaceCache | None = None) -> bytes:
    """Process one received message (the bytes inside its MLLP frame) and return the ACK to send back.
    ``interfaces``: the connection's cache of senders (the listener's); without one, the sender is looked up."""
    try:
        message, codec = parse(raw)
    except Refusal as refusal:
        return _refuse(raw, peer, None, Header(), "latin-1", refusal)
    header = read_header(message)
    interface, refusal = identify(header, peer, interfaces or InterfaceCache())
    if refusal is not None:
        return _refuse(raw, peer, message, header, codec, refusal, center=interface.center if interface else None)
    try:  # kept as new first: a repeat (rare) meets the unique constraint and costs the new ones no look-up
        return _process(raw, peer, message, header, codec, interface, None)
    except IntegrityError:
        # This MSH-10 was kept before (a resend, or a copy on another connection that won): its ACK, unless
        # the first try ended in a server-side error the sender was told to retry, which is applied now.
        stored = _stored(interface, header.control_id)
        if stored is None:
            raise
        if stored.ack_code == ERROR and stored.error == RETRY_TEXT:
            return _process(raw, peer, message, header, codec, interface, stored)
        logger.info("HL7 message %s from %s repeated: answering the stored ACK", stored.control_id, interface)
        return bytes(stored.ack)


def handle_too_large(head: bytes, peer: str, limit: int) -> bytes:
    """Refuse a message longer than ``limit`` bytes, having read only its first bytes (``head``), which are
    kept as its record."""
    refusal = Refusal(REJECT, "", f"message too large: more than {limit} bytes", hl7_ack.INTERNAL_ERROR)
    first_segment = re.split(rb"[\r\n]", head.lstrip(b"\x0b"), maxsplit=1)[0]
    try:
        message, codec = parse(first_segment)
    except Refusal:
        return _refuse(head, peer, None, Header(), "latin-1", refusal)
    return _refuse(head, peer, message, read_header(message), codec, refusal)


def parse(raw: bytes) -> tuple[hl7.Message, str]:
    """The message parsed by python-hl7, decoded as MSH-18 says; a Refusal (AR) when it is not HL7 v2."""
    if not raw.lstrip().startswith(b"MSH"):
        raise Refusal(REJECT, "", "not an HL7 v2 message: it does not begin with an MSH segment")
    declared = _declared_charset(raw)
    codecs = [CHARSETS.get(declared.upper())] if declared else ["utf-8", "latin-1"]
    if codecs == [None]:
        raise Refusal(REJECT, "MSH-18", f"character set {declared!r} is not supported", hl7_ack.TABLE_VALUE_NOT_FOUND)
    for codec in codecs:
        try:
            text = raw.decode(codec)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise Refusal(REJECT, "MSH-18", f"the message is not valid {declared}")
    if "\x00" in text:  # no HL7 value holds one, and PostgreSQL text cannot
        raise Refusal(REJECT, "", "not an HL7 v2 message: it contains NUL bytes")
    # Segments end with CR; some senders use LF or CRLF.
    text = text.strip().replace("\r\n", "\r").replace("\n", "\r")
    try:
        message = hl7.parse(text)
        if str(message.segment("MSH")[0]) != "MSH" or len(message.segment("MSH")) <= 12:
            raise ValueError("MSH is too short")
    except Exception as exc:  # noqa: BLE001 - whatever the parser trips on, the input is not HL7 v2
        raise Refusal(REJECT, "", f"not an HL7 v2 message: {exc}"[:200]) from exc
    return message, codec


def read_header(message: hl7.Message) -> Header:
    """MSH-3, 4, 9, 10 and 12 of a parsed message (``parse`` checked that it has an MSH of 12 fields or more)."""
    msh = message.segment("MSH")

    def value(field: int, component: int = 1) -> str:
        try:
            return str(msh.extract_field(1, field, 1, component, 1)).strip()
        except (IndexError, KeyError):
            return ""

    return Header(application=value(3), facility=value(4), control_id=value(10), version=value(12), code=value(9),
                  trigger=value(9, 2))


def identify(header: Header, peer: str, interfaces: InterfaceCache) -> tuple[Hl7Interface | None, Refusal | None]:
    """The registered, active interface named by MSH-3/MSH-4, and why the message is refused if it is (the
    peer's address is not one the interface may use, or MSH-10 is missing)."""
    application, facility = header.application, header.facility
    interface = interfaces.get(application, facility)
    if interface is None:
        return None, Refusal(REJECT, "MSH-4", f"sending application {application!r} at facility {facility!r} "
                             "is not a registered interface", hl7_ack.UNKNOWN_KEY)
    host = peer_host(peer)
    if not host_allowed(host, interface.allowed_hosts):
        return interface, Refusal(REJECT, "MSH-4", f"{interface} may not send from {host}", hl7_ack.UNKNOWN_KEY)
    if not header.control_id:
        return interface, Refusal(REJECT, "MSH-10", "message control id is required",
                                  hl7_ack.REQUIRED_FIELD_MISSING)
    return interface, None


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether ``host`` is one of the addresses or networks (CIDR) listed; an empty list allows any."""
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(str(entry).strip(), strict=False):
                return True
        except ValueError:
            logger.warning("HL7 interface allow-list entry %r is not an address or network", entry)
    return False


def peer_host(peer: str) -> str:
    """The host of "host:port" or "[v6 host]:port"."""
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    return peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer


def _process(raw: bytes, peer: str, message: hl7.Message, header: Header, codec: str, interface: Hl7Interface,
             stored: Hl7Message | None) -> bytes:
    """Apply the message and keep it with its ACK (as new, or over ``stored``, a try to be retried) in one
    transaction; a refused message rolls back whatever its orders did and is kept in a transaction of its own.
    A message kept before: the insert hits the unique constraint and the whole transaction rolls back, orders
    and all (``handle_message`` answers the stored ACK)."""
    record = stored or Hl7Message(interface=interface, direction=Hl7Message.Direction.IN,
                                  control_id=header.control_id)
    try:
        with transaction.atomic():
            orders = _apply(message, header, interface)
            return _keep(record, raw, peer, message, header, codec, interface, orders, None)
    except Refusal as refusal:
        with transaction.atomic():
            return _keep(record, raw, peer, message, header, codec, interface, [], refusal)


def _keep(record: Hl7Message, raw: bytes, peer: str, message: hl7.Message, header: Header, codec: str,
          interface: Hl7Interface, orders: list, refusal: Refusal | None) -> bytes:
    code = refusal.ack_code if refusal is not None else ACCEPT
    ack = hl7_ack.build_ack(message, code, refusal).encode(codec, "replace")
    first = orders[0] if orders else None
    record.message_type, record.raw, record.ack, record.ack_code = header.type, raw, ack, code
    record.error, record.peer = str(refusal or "")[:500], peer[:100]
    record.order, record.read_request_id = first, getattr(first, "read_request_id", None)
    if record.pk is None:
        insert_rows([record])  # what save() sends, without the ORM compiling it (the listener's hot path)
    else:
        record.save()  # a try to be retried, kept over
    # The audit append and its savepoint in one round trip (nothing in them is read back).
    with sent_together():
        _audit(record, interface.center, orders)
    return ack


def _apply(message: hl7.Message, header: Header, interface: Hl7Interface) -> list:
    version = header.version
    if version not in VERSIONS:
        raise Refusal(REJECT, "MSH-12", f"version {version!r} is not supported (2.3 to 2.5.1)",
                      hl7_ack.UNSUPPORTED_VERSION)
    kind = MESSAGE_TYPES.get((header.code, header.trigger))
    if kind is None:
        raise Refusal(REJECT, "MSH-9", f"message type {header.type!r} is not accepted (ORM^O01 or OMI^O23)",
                      hl7_ack.UNSUPPORTED_MESSAGE_TYPE)
    applied: list = []
    try:  # in _process's transaction: all the message's orders, or (on a refusal) none of them
        for data in read_orders(message, kind):
            # The message's own audit event (``_audit``) names the orders it created: one chain append a message.
            # savepoint=False: a refused order rolls back the whole message anyway (``_process``), so a savepoint
            # of its own would be two round trips for nothing.
            applied.append(order_apply(center=interface.center, data=data, source="hl7", interface=interface,
                                       receipt_audited=True, savepoint=False))
    except Refusal:
        raise
    except ApplicationError as exc:
        raise _application_refusal(exc, kind, sequence=len(applied) + 1) from exc
    except Exception as exc:
        logger.exception("HL7 message %s from %s could not be applied", header.control_id, interface)
        raise Refusal(ERROR, "", RETRY_TEXT, hl7_ack.INTERNAL_ERROR) from exc
    return applied


def _application_refusal(exc: ApplicationError, kind: str, *, sequence: int) -> Refusal:
    """An AE naming the field order_apply named (an HL7 location such as "ORC-2", or an OrderData field) in the
    ``sequence``-th order of the message."""
    field = next(iter(exc.fields), "")
    location = field if _LOCATION.match(field) else _LOCATIONS.get(field, "")
    if location == "OBR-18" and kind == OMI:
        location = "IPC-1"
    hl7_code = _HL7_CODES.get(exc.code, hl7_ack.INTERNAL_ERROR)
    # PID is the message's one patient; the order's own segments repeat once per order.
    segment_sequence = 1 if location.startswith(("PID", "MSH")) else sequence
    return Refusal(ERROR, location, exc.message, hl7_code, segment_sequence=segment_sequence,
                   application_code=exc.code)


def _refuse(raw: bytes, peer: str, message: hl7.Message | None, header: Header, codec: str, refusal: Refusal,
            center=None) -> bytes:
    """Answer and keep a message from a sender not (yet) known; nothing else is done with it."""
    ack = hl7_ack.build_ack(message, refusal.ack_code, refusal).encode(codec, "replace")
    logger.warning("HL7 message from %s refused: %s", peer, refusal)
    record = Hl7Message.objects.create(
        interface=None, direction=Hl7Message.Direction.IN, raw=raw, ack=ack, ack_code=refusal.ack_code,
        error=str(refusal)[:500], peer=peer[:100],
        control_id=header.control_id[:199], message_type=header.type)
    _audit(record, center, [])
    return ack


def _audit(record: Hl7Message, center, orders: list) -> None:
    audit_record(action="hl7.message_received", obj=record, organization=center, reason=record.error,
                 outcome=_OUTCOMES.get(record.ack_code, AuditEvent.Outcome.FAILURE),
                 extra={"control_id": record.control_id, "message_type": record.message_type,
                        "ack_code": record.ack_code, "peer": record.peer,
                        "orders": [str(order.public_id) for order in orders]})


def _stored(interface: Hl7Interface, control_id: str) -> Hl7Message | None:
    # At most one row (unique constraint): no ordering to build or sort.
    found = Hl7Message.objects.filter(interface=interface, direction=Hl7Message.Direction.IN, control_id=control_id)
    return next(iter(found.order_by()[:1]), None)


def _declared_charset(raw: bytes) -> str:
    """MSH-18 read before decoding (the MSH segment's own characters are ASCII): its first repetition's
    first component."""
    first = re.split(rb"[\r\n]", raw.lstrip(), maxsplit=1)[0].decode("latin-1")
    fields = first.split(first[3:4] or "|")
    if len(fields) <= 17:
        return ""
    return fields[17].split(first[5:6] or "~")[0].split(first[4:5] or "^")[0].strip()
