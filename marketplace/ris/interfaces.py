"""A center registers its RIS as an HL7 v2 interface (issue 23): who it is (MSH-3 application, MSH-4 facility),
where it may connect from, and where signed reports go back (an MLLP endpoint, optional). Center admins only."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace.ris.selectors import can_manage_ris
from marketplace.ris_models import Hl7Interface


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
