"""A patient's order of a second opinion (issue 17), kept beside the read request it becomes.

The order is the patient's side: the question, the turnaround, the locked price, the terms and the
payment. Once paid it posts one read request of kind ``second_opinion`` (``read_request``); from then
on what the patient sees ("with a specialist", "report ready") is read off that request. The order's
own states are only about money: ``ORDER_TRANSITIONS``, moved by ``marketplace.services.orders``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.credentials.vocab import Subspecialty
from core.models import TimeStampedModel
from studies.models import Study


class OrderStatus(models.TextChoices):
    DRAFT = "draft", "Awaiting payment"
    PAID = "paid", "Paid"
    CANCELLED = "cancelled", "Cancelled"


ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.DRAFT: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.CANCELLED}),
    OrderStatus.CANCELLED: frozenset(),
}


class Turnaround(models.TextChoices):
    STANDARD = "standard", "Standard (48 hours)"
    EXPEDITED = "expedited", "Expedited (24 hours)"


TURNAROUND_HOURS = {Turnaround.STANDARD: 48, Turnaround.EXPEDITED: 24}


class Question(models.TextChoices):
    WHOLE_STUDY = "whole_study", "A second opinion on the whole study"
    SPECIFIC = "specific", "A specific question"


class SecondOpinionOrder(TimeStampedModel):
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="opinion_orders")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    question = models.CharField(max_length=12, choices=Question.choices, default=Question.WHOLE_STUDY)
    question_text = models.TextField(blank=True, max_length=2000)
    subspecialty = models.CharField(max_length=30, choices=Subspecialty.choices)
    turnaround = models.CharField(max_length=10, choices=Turnaround.choices, default=Turnaround.STANDARD)
    jurisdiction = models.CharField(max_length=8, help_text="Where the patient lives: the readers' license.")
    # The price, locked when the order was made (what Checkout charges).
    quoted_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    terms_accepted_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=OrderStatus.choices, default=OrderStatus.DRAFT)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    read_request = models.OneToOneField("marketplace.ReadRequest", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="opinion_order")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["patient", "-created_at"]), models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(condition=~Q(status="paid") | Q(paid_at__isnull=False), name="order_paid_has_time"),
        ]

    def __str__(self) -> str:
        return f"Second opinion {self.public_id} ({self.get_status_display().lower()})"

    @property
    def reference(self) -> str:
        """How billing names this order on its payment (``order:<public id>``)."""
        return f"order:{self.public_id}"

    @property
    def turnaround_hours(self) -> int:
        return TURNAROUND_HOURS[self.turnaround]
