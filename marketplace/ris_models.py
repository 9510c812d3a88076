"""Orders from a center's RIS (issue 23): its registered HL7 interface, every message in and out with its
acknowledgement, and the orders they carry until each becomes a read request.

An order waits for its images: when a study with the same accession number (and patient id) arrives at
the center by any door, the two are matched and the read request is posted; a study that arrives first
waits for its order. A mismatch (same accession, another patient) is held for a person. The order's states
form one table (``RIS_ORDER_TRANSITIONS``), moved only by ``marketplace.ris.orders``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization
from core.models import TimeStampedModel
from studies.models import Study


class Hl7Interface(TimeStampedModel):
    """A center's RIS as an HL7 v2 sender (MSH-3 application, MSH-4 facility, from allowed hosts), and where
    its signed reports go back (an MLLP endpoint, optional)."""

    center = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="hl7_interfaces")
    sending_application = models.CharField(max_length=180, help_text="MSH-3 (namespace id).")
    sending_facility = models.CharField(max_length=180, help_text="MSH-4 (namespace id).")
    allowed_hosts = models.JSONField(default=list, blank=True,
                                     help_text="IP addresses or networks (CIDR) it may connect from; empty: any.")
    outbound_host = models.CharField(max_length=255, blank=True, help_text="Where reports go (MLLP); empty: none.")
    outbound_port = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sending_application", "sending_facility"], name="hl7_interface_once"),
            models.CheckConstraint(condition=~Q(sending_facility=""), name="hl7_interface_facility_required"),
        ]

    def __str__(self) -> str:
        return f"{self.sending_application}@{self.sending_facility}"


class Hl7Message(models.Model):
    """One HL7 v2 message as received or sent, with the acknowledgement (kept even for refused senders)."""

    class Direction(models.TextChoices):
        IN = "in", "Received"
        OUT = "out", "Sent"

    interface = models.ForeignKey(Hl7Interface, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="messages", help_text="Empty: a sender nobody registered.")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    control_id = models.CharField(max_length=199, blank=True, help_text="MSH-10.")
    message_type = models.CharField(max_length=20, blank=True, help_text="MSH-9, e.g. ORM^O01.")
    raw = models.BinaryField(help_text="The message as received or sent, byte for byte.")
    ack = models.BinaryField(blank=True, default=b"", help_text="Our ACK (in) or theirs (out).")
    ack_code = models.CharField(max_length=2, blank=True, help_text="AA, AE or AR; empty: none yet.")
    error = models.CharField(max_length=500, blank=True, help_text="Why it was refused, naming the field.")
    peer = models.CharField(max_length=100, blank=True, help_text="host:port of the other side.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Sends tried (out).")
    order = models.ForeignKey("marketplace.RisOrder", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="messages")
    read_request = models.ForeignKey("marketplace.ReadRequest", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Idempotent by MSH-10: a repeated message gets the first one's ACK, nothing is done twice.
            models.UniqueConstraint(fields=["interface", "control_id"],
                                    condition=Q(direction="in") & Q(interface__isnull=False) & ~Q(control_id=""),
                                    name="hl7_message_in_once"),
        ]
        indexes = [models.Index(fields=["interface", "direction", "created_at"])]

    def __str__(self) -> str:
        return f"{self.direction} {self.message_type} {self.control_id}"


class RisOrderStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for images"
    POSTED = "posted", "Read request posted"
    HELD = "held", "Held for a person"
    CANCELLED = "cancelled", "Cancelled"


RIS_ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    RisOrderStatus.WAITING: frozenset({RisOrderStatus.POSTED, RisOrderStatus.HELD, RisOrderStatus.CANCELLED}),
    RisOrderStatus.HELD: frozenset({RisOrderStatus.POSTED, RisOrderStatus.CANCELLED}),
    RisOrderStatus.POSTED: frozenset({RisOrderStatus.CANCELLED}),
    RisOrderStatus.CANCELLED: frozenset(),
}


class RisOrder(TimeStampedModel):
    """An exam ordered in the center's RIS (HL7 ORM^O01 / OMI^O23, or FHIR ServiceRequest)."""

    class Source(models.TextChoices):
        HL7 = "hl7", "HL7 v2"
        FHIR = "fhir", "FHIR ServiceRequest"

    center = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="ris_orders")
    source = models.CharField(max_length=4, choices=Source.choices)
    interface = models.ForeignKey(Hl7Interface, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    placer_order_number = models.CharField(max_length=64, help_text="ORC-2 / ServiceRequest.identifier.")
    accession_number = models.CharField(max_length=16)
    patient_id = models.CharField(max_length=64)
    patient_name = models.CharField(max_length=200, blank=True)
    procedure_code = models.CharField(max_length=64, blank=True)
    procedure_text = models.CharField(max_length=200, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    priority = models.CharField(max_length=10, default="routine")
    ordering_physician = models.CharField(max_length=200, blank=True)
    clinical_history = models.TextField(blank=True, max_length=4000)
    status = models.CharField(max_length=10, choices=RisOrderStatus.choices, default=RisOrderStatus.WAITING)
    held_reason = models.CharField(max_length=500, blank=True)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    read_request = models.OneToOneField("marketplace.ReadRequest", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="ris_order")
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["center", "placer_order_number"], name="ris_order_once_per_center"),
            models.CheckConstraint(condition=~Q(accession_number=""), name="ris_order_accession_required"),
        ]
        indexes = [models.Index(fields=["center", "accession_number"]),
                   models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"order {self.placer_order_number} ({self.accession_number})"
