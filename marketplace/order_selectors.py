"""Reading a patient's second-opinion orders (issue 17): theirs only, in plain words."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.policy import Actor
from core.errors import NotFound
from marketplace.models import ASSIGNED_STATES, Status
from marketplace.order_models import OrderStatus, SecondOpinionOrder


def orders_of(*, actor: Actor) -> QuerySet[SecondOpinionOrder]:
    if not actor.is_patient:
        return SecondOpinionOrder.objects.none()
    return (SecondOpinionOrder.objects.filter(patient=actor.user)
            .select_related("study", "read_request").order_by("-created_at"))


def order_get(*, actor: Actor, public_id) -> SecondOpinionOrder:
    """The patient's own order; anyone else's (or anyone not a patient): 404."""
    order = orders_of(actor=actor).filter(public_id=public_id).first()
    if order is None:
        raise NotFound("Order not found.")
    return order


@dataclass(frozen=True)
class Progress:
    """Where an order is, in words a patient understands (``step`` 0-3 for the progress line)."""

    step: int
    headline: str
    detail: str
    cancellable: bool


STEPS = ("Ordered", "Paid", "With a specialist", "Report ready")


def progress(order: SecondOpinionOrder) -> Progress:
    if order.status == OrderStatus.CANCELLED:
        return Progress(-1, "Cancelled", order.cancel_reason or "This order was cancelled.", False)
    if order.status == OrderStatus.DRAFT:
        return Progress(0, "Waiting for payment", "Nothing is sent to specialists until you have paid.", True)
    read_request = order.read_request
    if read_request is None or read_request.status == Status.OPEN:
        return Progress(1, "Paid: waiting for a specialist",
                        "Eligible specialists are being offered your images. If none takes it within half the "
                        "turnaround, we cancel it and refund you in full.", True)
    if read_request.status in ASSIGNED_STATES:
        return Progress(2, "With a specialist", "A specialist has your images and is writing the report.", False)
    if read_request.status in (Status.REPORTED, Status.CLOSED):
        return Progress(3, "Report ready", "Your specialist's report is below.", False)
    return Progress(1, "Paid", read_request.get_status_display(), False)
