"""A center registers its RIS as an HL7 v2 interface (issue 23): who it is (MSH-3 application, MSH-4 facility),
where it may connect from, and where signed reports go back (an MLLP endpoint, optional). Center admins only.

The listener finds the sender of each message here (``active_interface``), through one ``InterfaceCache`` per
connection."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace.ris.selectors import can_manage_ris
from marketplace.ris_models import Hl7Interface

# How long a connection trusts the interface it resolved: a disabled or changed interface (allowed hosts, center)
# takes effect on open connections within this time, and a busy connection saves the look-up on every message.
INTERFACE_RECHECK_SECONDS = 5.0


@dataclass
class InterfaceData:
    sending_application: str
    sending_facility: str
    allowed_hosts: list[str] = field(default_factory=list)
    outbound_host: str = ""
    outbound_port: int | None = None
    active: bool = True


def _err(name: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(name, message)


def _clean(data: InterfaceData) -> InterfaceData:
    application, facility = data.sending_application.strip(), data.sending_facility.strip()
    if not facility:
        raise _err("sending_facility", "The sending facility (MSH-4) is required.")
    if not application:
        raise _err("sending_application", "The sending application (MSH-3) is required.")
    for name, value in (("sending_application", application), ("sending_facility", facility)):
        if any(c in value for c in "|^~\\&\r\n"):
            raise _err(name, "Give the namespace id alone, without HL7 separators (|^~\\&).")
    hosts = []
    for raw in data.allowed_hosts:
        raw = raw.strip()
        if not raw:
            continue
        try:
            hosts.append(str(ipaddress.ip_network(raw, strict=False)))
        except ValueError:
            raise _err("allowed_hosts", f"{raw!r} is no IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)."
                       ) from None
    host = data.outbound_host.strip()
    if bool(host) != (data.outbound_port is not None):
        raise _err("outbound_port", "Give both the host and the port of the outbound endpoint, or neither.")
    if data.outbound_port is not None and not 1 <= data.outbound_port <= 65535:
        raise _err("outbound_port", "A port is between 1 and 65535.")
    return InterfaceData(application, facility, hosts, host, data.outbound_port, data.active)


@transaction.atomic
def interface_save(*, actor: Actor, center, data: InterfaceData, interface: Hl7Interface | None = None,
                   request=None) -> Hl7Interface:
    """Register an interface, or change one of the center's; an application and facility pair is one center's."""
    if not can_manage_ris(actor, center) or (interface is not None and interface.center_id != center.pk):
        raise NotFound()
    data = _clean(data)
    target = interface or Hl7Interface(center=center)
    for name in ("sending_application", "sending_facility", "allowed_hosts", "outbound_host", "outbound_port",
                 "active"):
        setattr(target, name, getattr(data, name))
    try:
        with transaction.atomic():
            target.save()
    except IntegrityError:
        raise _err("sending_facility", f"{data.sending_application}@{data.sending_facility} is registered "
                                       "already.") from None
    audit_record(action="hl7_interface.saved" if interface else "hl7_interface.registered",
                 actor=actor.user, request=request, organization=center, object_type="marketplace.hl7interface",
                 object_id=str(target.public_id),
                 extra={"application": data.sending_application, "facility": data.sending_facility,
                        "outbound": f"{data.outbound_host}:{data.outbound_port}" if data.outbound_host else "",
                        "active": data.active})
    return target


def active_interface(application: str, facility: str) -> Hl7Interface | None:
    """The active interface registered for MSH-3 ``application`` at MSH-4 ``facility``, with its center."""
    return (Hl7Interface.objects.select_related("center")
            .filter(sending_application=application, sending_facility=facility, active=True).first())


class InterfaceCache:
    """One MLLP connection's senders: each resolved interface is reused for ``recheck_seconds``, then read again
    (a message per look-up cost a query and a fifth of the listener's CPU). An unknown sender is not remembered,
    so a newly registered interface is found at once. Used by one message at a time (a connection's messages are
    processed in turn)."""

    def __init__(self, *, recheck_seconds: float = INTERFACE_RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._found: dict[tuple[str, str], tuple[Hl7Interface, float]] = {}

    def get(self, application: str, facility: str) -> Hl7Interface | None:
        key, now = (application, facility), self._clock()
        found = self._found.get(key)
        if found is not None and now - found[1] < self.recheck_seconds:
            return found[0]
        interface = active_interface(application, facility)
        if interface is None:
            self._found.pop(key, None)
        else:
            self._found[key] = (interface, now)
        return interface
