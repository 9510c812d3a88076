"""HL7 v2 acknowledgements (original mode) for the order listener, built with python-hl7.

An ACK is the received message's ``create_ack`` (MSH with sender and receiver swapped, MSA-1 the code,
MSA-2 the message's MSH-10), plus, for AE/AR, a v2.5 ERR segment: ERR-2 the error location
(segment^sequence^field), ERR-3 the HL7 error code (table 0357), ERR-4 severity, ERR-5 our own
application error code where there is one, ERR-8 the text a person reads. MSA-3 repeats the text for
senders older than v2.5. Every value goes through the library's ``escape`` (never by hand), so a field
name or a sender's value with ``|^~\\&`` in it cannot break the ACK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import hl7
from django.conf import settings

ACCEPT, ERROR, REJECT = "AA", "AE", "AR"

# HL7 table 0357 (message error condition codes).
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_VERSION = "203"
UNKNOWN_KEY = "204"
DUPLICATE_KEY = "205"
INTERNAL_ERROR = "207"
_ERROR_TEXT = {
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    DUPLICATE_KEY: "Duplicate key identifier",
    INTERNAL_ERROR: "Application internal error",
}
# What a message is answered from when it cannot be parsed at all (no MSH of its own to echo).
_STAND_IN = "MSH|^~\\&|||||||ACK^||P|2.5.1"
_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)$")


@dataclass(eq=False)
class Refusal(Exception):  # noqa: N818 - it is the refusal itself, carried up to the ACK
    """Why a message is answered AE or AR: the HL7 location ("PID-3"), a table 0357 code and the text."""

    ack_code: str
    location: str
    text: str
    hl7_code: str = DATA_TYPE_ERROR
    segment_sequence: int = 1
    application_code: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.text}" if self.location else self.text


def build_ack(message: hl7.Message | None, ack_code: str, refusal: Refusal | None = None) -> str:
    """The ACK for ``message`` (None: it could not be parsed) as ER7 text with ``\\r`` separators."""
    source = message if message is not None else hl7.parse(_STAND_IN)
    ack = source.create_ack(ack_code, application=settings.HL7_SENDING_APPLICATION,
                            facility=settings.HL7_SENDING_FACILITY)
    charset = _field(source, 18)
    if charset:  # answer in the character set the sender declared
        ack.segment("MSH").assign_field(charset, 18)
    if refusal is not None:
        ack.segment("MSA").assign_field(ack.escape(refusal.text[:80]), 3)
        ack.append(_err_segment(ack, refusal))
    return str(ack)


def _err_segment(ack: hl7.Message, refusal: Refusal) -> hl7.Segment:
    err = ack.create_segment([ack.create_field(["ERR"])])
    match = _LOCATION.match(refusal.location)
    if match:
        segment, field = match.groups()
        for component, value in enumerate((segment, str(refusal.segment_sequence), field), start=1):
            err.assign_field(value, 2, 1, component)
    for component, value in enumerate((refusal.hl7_code, _ERROR_TEXT.get(refusal.hl7_code, ""), "HL70357"), start=1):
        err.assign_field(value, 3, 1, component)
    err.assign_field("E", 4)
    if refusal.application_code:
        err.assign_field(ack.escape(refusal.application_code), 5, 1, 1)
    err.assign_field(ack.escape(str(refusal)), 8)
    return err


def _field(message: hl7.Message, number: int) -> str:
    try:
        return str(message.segment("MSH")(number)) if number < len(message.segment("MSH")) else ""
    except (KeyError, IndexError):
        return ""
