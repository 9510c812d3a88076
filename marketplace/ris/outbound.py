"""Reports out to a center's RIS over MLLP (issue 23, item 4): the bytes reporting built (ORU^R01) are kept as an
``Hl7Message(direction=out)`` and sent by a task that retries with backoff (``marketplace.tasks``).

The client is a plain socket with MLLP framing (``<VT>message<FS><CR>``) rather than python-hl7's
``MLLPClient``: that one has no timeout, writes with ``send`` (a large report may go out in part) and returns
whatever one ``recv`` brought. The ACK is parsed with python-hl7; AA ends it, AE/AR are kept and shown to the
center's admins (the same bytes would be refused again: no retry); no connection, a timeout or a garbled or
foreign ACK are retried.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import hl7
from django.conf import settings
from django.db import transaction

from marketplace.ris_models import Hl7Interface, Hl7Message

START, END = b"\x0b", b"\x1c\x0d"
MAX_ACK_BYTES = 1 << 20  # an ACK is a few hundred bytes; more is no ACK
DONE, REFUSED, RETRY = "done", "refused", "retry"


class MllpError(Exception):
    """The peer could not be reached, did not answer in time, or answered with no MLLP frame."""


def timeout_seconds() -> float:
    return float(settings.HL7_OUTBOUND_TIMEOUT_SECONDS)


def mllp_exchange(host: str, port: int, payload: bytes, *, timeout: float | None = None) -> bytes:
    """Send one framed message and return the one framed answer (without its framing)."""
    timeout = timeout_seconds() if timeout is None else timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(START + payload + END)
            received = b""
            while END not in received:
                chunk = conn.recv(65536)
                if not chunk:
                    raise MllpError("the connection closed before an ACK")
                received += chunk
                if len(received) > MAX_ACK_BYTES:
                    raise MllpError("the answer is larger than any ACK")
    except OSError as error:  # refused, unreachable, timed out
        raise MllpError(f"{type(error).__name__}: {error}") from None
    start = received.find(START)
    if start < 0:
        raise MllpError("the answer has no MLLP start block")
    return received[start + 1:received.index(END)]


def outbound_interface(center_id: int) -> Hl7Interface | None:
    """The center's active interface with an outbound endpoint (the first registered one)."""
    return (Hl7Interface.objects.filter(center_id=center_id, active=True, outbound_port__isnull=False)
            .exclude(outbound_host="").order_by("created_at").first())


def _control_id(raw: bytes) -> tuple[str, str]:
    try:
        message = hl7.parse(raw.decode("utf-8"))
        msh = message.segment("MSH")
        return str(msh(10)), str(msh(9)).replace("\\S\\", "^")
    except Exception:  # noqa: BLE001 - what reporting built is logged as it is even if unreadable here
        return "", ""


@transaction.atomic
def hl7_out_queue(*, center_id: int, raw: bytes, read_request=None) -> Hl7Message | None:
    """Keep one outgoing message for the center's RIS and send it after the commit; None when the center has no
    outbound endpoint. The same control id (the same report version) is queued once."""
    interface = outbound_interface(center_id)
    if interface is None:
        return None
    Hl7Interface.objects.select_for_update().filter(pk=interface.pk).first()  # one queuer per interface
    control_id, message_type = _control_id(raw)
    earlier = Hl7Message.objects.filter(interface=interface, direction=Hl7Message.Direction.OUT,
                                        control_id=control_id).first() if control_id else None
    if earlier is not None:
        return earlier
    message = Hl7Message.objects.create(interface=interface, direction=Hl7Message.Direction.OUT, raw=raw,
                                        control_id=control_id, message_type=message_type[:20],
                                        peer=f"{interface.outbound_host}:{interface.outbound_port}"[:100],
                                        read_request=read_request)
    message_id = message.pk

    def send() -> None:
        from marketplace.tasks import send_hl7_message

        send_hl7_message.delay(message_id)

    transaction.on_commit(send, robust=True)  # a broker that is down must not fail the delivery
    return message


@dataclass(frozen=True)
class SendResult:
    outcome: str  # done, refused or retry
    detail: str = ""


def hl7_out_send(message_id: int) -> SendResult:
    """One attempt to send an outgoing message; the row records the attempt, the ACK and its code."""
    message = Hl7Message.objects.select_related("interface").filter(pk=message_id,
                                                                    direction=Hl7Message.Direction.OUT).first()
    if message is None:
        return SendResult(DONE, "gone")
    if message.ack_code == "AA":
        return SendResult(DONE, "already acknowledged")
    interface = message.interface
    attempts = message.attempts + 1
    try:
        answer = mllp_exchange(interface.outbound_host, interface.outbound_port, bytes(message.raw))
    except MllpError as error:
        _record(message, attempts=attempts, error=str(error))
        return SendResult(RETRY, str(error))
    code, text = _ack_code(answer, message.control_id)
    if code is None:
        _record(message, attempts=attempts, ack=answer, error=text)
        return SendResult(RETRY, text)
    _record(message, attempts=attempts, ack=answer, ack_code=code, error=text if code != "AA" else "")
    return SendResult(DONE if code == "AA" else REFUSED, text)


def _ack_code(answer: bytes, control_id: str) -> tuple[str | None, str]:
    """(AA/AE/AR, the error text) of an ACK to ``control_id``; (None, why) when it is none."""
    try:
        ack = hl7.parse(answer.decode("utf-8", errors="replace"))
        msa = ack.segment("MSA")
    except Exception:  # noqa: BLE001 - anything unparsable is simply not an ACK
        return None, "the answer is not an HL7 ACK"
    code = str(msa(1)).upper()
    # Enhanced-mode commit codes mean the same here.
    code = {"CA": "AA", "CE": "AE", "CR": "AR"}.get(code, code)
    if code not in ("AA", "AE", "AR"):
        return None, f"the ACK code {code!r} is not AA, AE or AR"
    if control_id and str(msa(2)) != control_id:
        return None, f"the ACK answers message {str(msa(2))!r}, not {control_id!r}"
    text = str(msa(3)) if len(msa) > 3 else ""
    try:
        err = ack.segment("ERR")
        text = str(err(8)) if len(err) > 8 and str(err(8)) else text
    except KeyError:
        pass
    return code, text[:500]


def _record(message: Hl7Message, *, attempts: int, error: str, ack: bytes = b"", ack_code: str = "") -> None:
    fields = {"attempts": attempts, "error": error[:500], "ack_code": ack_code}
    if ack:
        fields["ack"] = ack
    Hl7Message.objects.filter(pk=message.pk).update(**fields)
