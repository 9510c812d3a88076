"""Reads of a center's RIS link (issue 23): its interfaces, orders, message log and the studies still waiting
for an order. Every read is scoped to the actor: the center's admins (interfaces, messages), its viewing roles
(orders); anyone else finds nothing (404)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from accounts.models import Organization, Role
from accounts.policy import Actor
from core.errors import NotFound
from marketplace import policy
from marketplace.models import ReadRequest
from marketplace.ris_models import Hl7Interface, Hl7Message, RisOrder, RisOrderStatus
from studies.models import Study

PAGE_ROWS = 200


def can_manage_ris(actor: Actor, center: Organization | None) -> bool:
    """The center's admins, in person or through an admin API key."""
    return center is not None and center.kind == Organization.Kind.IMAGING_CENTER and actor.has_role(center, Role.ADMIN)


def can_see_orders(actor: Actor, center: Organization | None) -> bool:
    return center is not None and center.kind == Organization.Kind.IMAGING_CENTER and \
        policy.can_view_center_requests(actor, center)


def interface_list(*, actor: Actor, center: Organization | None) -> QuerySet[Hl7Interface]:
    if not can_manage_ris(actor, center):
        raise NotFound()
    return Hl7Interface.objects.filter(center=center).order_by("sending_application", "sending_facility")


def interface_get(*, actor: Actor, center: Organization | None, public_id) -> Hl7Interface:
    interface = interface_list(actor=actor, center=center).filter(public_id=public_id).first()
    if interface is None:
        raise NotFound("Interface not found.")
    return interface


def order_list(*, actor: Actor, center: Organization | None, status: str = "") -> QuerySet[RisOrder]:
    if not can_see_orders(actor, center):
        raise NotFound()
    orders = RisOrder.objects.filter(center=center).select_related("read_request", "study")
    if status in RisOrderStatus.values:
        orders = orders.filter(status=status)
    return orders.order_by("-created_at", "-id")


def ris_order_get(*, actor: Actor, public_id) -> RisOrder:
    """One order of a center whose requests the actor sees (its key included); else 404."""
    order = RisOrder.objects.select_related("center", "read_request", "study").filter(public_id=public_id).first()
    if order is None or not can_see_orders(actor, order.center):
        raise NotFound("ServiceRequest not found.")
    return order


def message_list(*, actor: Actor, center: Organization | None, direction: str = "") -> QuerySet[Hl7Message]:
    """The center's messages in and out (raw text and ACK), newest first."""
    if not can_manage_ris(actor, center):
        raise NotFound()
    messages = Hl7Message.objects.filter(interface__center=center).select_related("interface", "order")
    if direction in Hl7Message.Direction.values:
        messages = messages.filter(direction=direction)
    return messages.order_by("-created_at", "-id")


def outbound_problems(*, actor: Actor, center: Organization | None) -> QuerySet[Hl7Message]:
    """Reports the center's RIS refused (AE/AR) or that never got an ACK after every retry."""
    return (message_list(actor=actor, center=center, direction=Hl7Message.Direction.OUT)
            .exclude(ack_code="AA").exclude(ack_code="", error=""))


def wait_minutes() -> int:
    return settings.RIS_ORDER_WAIT_MINUTES


def studies_waiting_for_order(center: Organization, *, now: datetime | None = None) -> QuerySet[Study]:
    """Studies of a center with an active interface that arrived after it was registered, waited longer than
    ``RIS_ORDER_WAIT_MINUTES`` and have neither an order nor a read request (nothing is posted for them)."""
    first = (Hl7Interface.objects.filter(center=center, active=True).order_by("created_at")
             .values_list("created_at", flat=True).first())
    if first is None:
        return Study.objects.none()
    cutoff = (now or timezone.now()) - timedelta(minutes=wait_minutes())
    ordered = RisOrder.objects.filter(center=center, accession_number=OuterRef("accession_number")) \
        .exclude(status=RisOrderStatus.CANCELLED)
    requested = ReadRequest.objects.filter(study=OuterRef("pk"))
    return (Study.objects.filter(organization=center, deleted_at__isnull=True, received_at__gte=first,
                                 received_at__lte=cutoff)
            .exclude(Exists(ordered)).exclude(Exists(requested)).order_by("-received_at"))


def studies_waiting_for_order_for(*, actor: Actor, center: Organization | None) -> list[Study]:
    if not can_see_orders(actor, center):
        raise NotFound()
    return list(studies_waiting_for_order(center)[:PAGE_ROWS])
