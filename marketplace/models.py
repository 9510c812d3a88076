"""Read requests and everything that moves them: offers, assignments, status history, the centers'
marketplace settings, the radiologists' reading hours and minimum rates, and the webhook outbox.

A read request's states form one table (``TRANSITIONS``); the one service that moves a request is
``marketplace.services.requests.read_request_transition``, which appends a ``ReadRequestStatusChange``.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.credentials.vocab import Priority  # the priorities a radiologist takes are the requests'
from accounts.models import Organization, RadiologistProfile
from billing.models import DEFAULT_FEE_BASIS_POINTS, Contract
from core.models import TimeStampedModel
from studies.models import Study, StudyAccessGrant


class Kind(models.TextChoices):
    PRIMARY = "primary", "Primary read"
    OVERREAD = "overread", "Overread"
    SECOND_OPINION = "second_opinion", "Second opinion"
    SPECIALIST_CONSULT = "specialist_consult", "Specialist consult"
    PEER_REVIEW = "peer_review", "Peer review"  # a sampled, blinded RADPEER review (reporting.quality)


# Kinds that review an earlier read: they name it, and its reader and that reader's groups never get them.
REVIEW_KINDS = frozenset({Kind.OVERREAD, Kind.SECOND_OPINION, Kind.PEER_REVIEW})


class Audience(models.TextChoices):
    MARKETPLACE = "marketplace", "Marketplace (every eligible radiologist)"
    PREFERRED = "preferred", "Preferred readers first"
    DIRECT = "direct", "One radiologist or group"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    ASSIGNED = "assigned", "Assigned"
    IN_PROGRESS = "in_progress", "In progress"
    REPORTED = "reported", "Reported"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released"


# The one table of allowed moves. ``released`` is passed through on the way back to ``open``.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.OPEN, Status.CANCELLED}),
    Status.OPEN: frozenset({Status.ASSIGNED, Status.CANCELLED, Status.EXPIRED}),
    Status.ASSIGNED: frozenset({Status.IN_PROGRESS, Status.RELEASED, Status.CANCELLED}),
    Status.IN_PROGRESS: frozenset({Status.REPORTED, Status.RELEASED, Status.CANCELLED}),
    Status.RELEASED: frozenset({Status.OPEN, Status.EXPIRED}),
    Status.REPORTED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}
ACTIVE_STATES = frozenset({Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS})
ASSIGNED_STATES = frozenset({Status.ASSIGNED, Status.IN_PROGRESS})
FINISHED_STATES = frozenset({Status.REPORTED, Status.CLOSED, Status.CANCELLED, Status.EXPIRED})


class ReadRequest(TimeStampedModel):
    """A center's request that one study be read: kind, priority and deadline, who may read it, its locked quote."""

    center = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="read_requests")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="read_requests")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PRIMARY)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.ROUTINE)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    deadline = models.DateTimeField()
    subspecialty = models.CharField(max_length=30, blank=True)
    modalities = models.JSONField(default=list)
    body_part = models.CharField(max_length=64, blank=True)
    jurisdiction = models.CharField(max_length=8)
    clinical_history = models.TextField(blank=True, max_length=4000)
    reason_for_exam = models.CharField(max_length=500, blank=True)
    comparison_studies = models.ManyToManyField(Study, blank=True, related_name="+")
    special_instructions = models.TextField(blank=True, max_length=2000)
    # The report template the center asked for (an overflow rule's, issue 18): reporting's public id, not a foreign
    # key (reporting sits above the marketplace); the draft opens on it when it is usable for the read.
    requested_template = models.UUIDField(null=True, blank=True)
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    # Who is offered the read.
    audience = models.CharField(max_length=12, choices=Audience.choices, default=Audience.MARKETPLACE)
    preferred_radiologists = models.ManyToManyField(RadiologistProfile, blank=True, related_name="+")
    preferred_groups = models.ManyToManyField(Organization, blank=True, related_name="+")
    widen_after_minutes = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Preferred audience: minutes until everyone eligible is offered (empty: never).")
    direct_radiologist = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                           related_name="+")
    direct_group = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # An overread or second opinion names the earlier read; its reader and group never get this one.
    original_request = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    original_reader = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    # Two levels: the first reader's signed report reaches the center as final only once a second reader
    # (an overread posted at signing) has signed too (reporting.quality.overreads).
    levels = models.PositiveSmallIntegerField(default=1, choices=[(1, "One reader"), (2, "Two levels")])
    # Who pays when not the center (a radiology group's own peer-review programme).
    payer = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The quote, locked at posting (marketplace.pricing.quote_for): the price, the platform's fee on it,
    # and the contract it came from (none: the platform's price list).
    quoted_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    fee_basis_points = models.PositiveIntegerField(default=DEFAULT_FEE_BASIS_POINTS)
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Offers and clocks.
    tier = models.PositiveSmallIntegerField(default=0, help_text="0: preferred readers only; 1: everyone eligible.")
    published_at = models.DateTimeField(null=True, blank=True)
    widened_at = models.DateTimeField(null=True, blank=True)
    half_time_at = models.DateTimeField(null=True, blank=True, help_text="When the 50 % clock fired.")
    at_risk_at = models.DateTimeField(null=True, blank=True, help_text="When the 80 % clock fired.")
    late_at = models.DateTimeField(null=True, blank=True, help_text="Passed its deadline while assigned.")
    no_on_shift_reader = models.BooleanField(default=False, help_text="STAT with no eligible reader on shift.")
    assignee = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    assigned_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    # A repeated API post with the same key returns the first result (body hash tells a different body).
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    idempotency_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.UniqueConstraint(fields=["center", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="read_request_idempotency_key"),
            models.CheckConstraint(condition=~Q(jurisdiction=""), name="read_request_jurisdiction_required"),
            models.CheckConstraint(condition=Q(levels__in=[1, 2]), name="read_request_levels_one_or_two"),
        ]
        indexes = [
            models.Index(fields=["center", "status", "deadline"]),
            models.Index(fields=["status", "deadline"]),
            models.Index(fields=["assignee", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_priority_display()} {self.get_kind_display().lower()} {self.public_id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATES

    def fraction_elapsed(self, at=None) -> float:
        """How much of the time from posting to deadline has passed (0 … 1+)."""
        at = at or timezone.now()
        start = self.published_at or self.created_at
        total = (self.deadline - start).total_seconds()
        return 1.0 if total <= 0 else (at - start).total_seconds() / total


class ReadRequestStatusChange(models.Model):
    """Append-only history of a read request's states: who, when, from, to, why."""

    read_request = models.ForeignKey(ReadRequest, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=12)
    to_status = models.CharField(max_length=12)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="Empty when the platform moved it (clock).")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class Offer(TimeStampedModel):
    """A read request shown to one eligible radiologist, with a preview grant that ends with the offer."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLAIMED = "claimed", "Claimed"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn (taken by another reader or cancelled)"
        EXPIRED = "expired", "Expired"

    read_request = models.ForeignKey(ReadRequest, on_delete=models.CASCADE, related_name="offers")
    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="offers")
    tier = models.PositiveSmallIntegerField(default=0)
    rank = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    grant = models.ForeignKey(StudyAccessGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    responded_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["read_request__deadline", "id"]
        constraints = [
            models.UniqueConstraint(fields=["read_request", "radiologist"], name="offer_once_per_reader"),
        ]
        indexes = [models.Index(fields=["radiologist", "status"])]

    def __str__(self) -> str:
        return f"offer of {self.read_request_id} to {self.radiologist_id} ({self.status})"


class Assignment(TimeStampedModel):
    """The one radiologist reading a request. At most one active assignment per request (partial unique index)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RELEASED = "released", "Released"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    read_request = models.ForeignKey(ReadRequest, on_delete=models.CASCADE, related_name="assignments")
    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.PROTECT, related_name="assignments")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    grant = models.ForeignKey(StudyAccessGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=500, blank=True)
    on_time = models.BooleanField(null=True, blank=True, help_text="Completed before the deadline (set at report).")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["read_request"], condition=Q(status="active"),
                                    name="one_active_assignment_per_request"),
        ]
        indexes = [models.Index(fields=["radiologist", "status"])]

    def __str__(self) -> str:
        return f"assignment of {self.read_request_id} to {self.radiologist_id} ({self.status})"


class CenterSettings(models.Model):
    """A center's marketplace settings: its turnaround per priority, its preferred and blocked readers."""

    center = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="marketplace_settings")
    stat_minutes = models.PositiveIntegerField(default=60)
    urgent_minutes = models.PositiveIntegerField(default=4 * 60)
    routine_minutes = models.PositiveIntegerField(default=24 * 60)
    second_opinion_minutes = models.PositiveIntegerField(default=48 * 60)
    preferred_widen_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minutes before everyone eligible is offered (empty: at 25 % of the time).")
    preferred_radiologists = models.ManyToManyField(RadiologistProfile, blank=True, related_name="+")
    blocked_radiologists = models.ManyToManyField(RadiologistProfile, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "center settings"
        constraints = [
            models.CheckConstraint(condition=Q(stat_minutes__gte=5) & Q(urgent_minutes__gte=5)
                                   & Q(routine_minutes__gte=5) & Q(second_opinion_minutes__gte=5),
                                   name="center_tat_at_least_5_minutes"),
        ]

    def __str__(self) -> str:
        return f"marketplace settings of {self.center}"


class ReadingHours(models.Model):
    """One weekly reading window of a radiologist, in their own time zone.

    An end at or before the start is on the next day (22:00–06:00 overnight; 00:00–00:00 the whole day)."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="reading_hours")
    weekday = models.PositiveSmallIntegerField(help_text="0 Monday … 6 Sunday, the day the window starts.")
    starts = models.TimeField()
    ends = models.TimeField(help_text="Ends the next day when not after the start (00:00–00:00: all day).")

    class Meta:
        ordering = ["weekday", "starts"]
        constraints = [
            models.CheckConstraint(condition=Q(weekday__gte=0) & Q(weekday__lte=6), name="reading_hours_weekday"),
        ]

    def __str__(self) -> str:
        return f"{self.weekday} {self.starts:%H:%M}–{self.ends:%H:%M}"


class TimeOff(models.Model):
    """A stretch when a radiologist does not read (holiday, conference), stored in UTC."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="time_off")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="time_off_ends_after_start"),
        ]
        indexes = [models.Index(fields=["radiologist", "ends_at"])]

    def __str__(self) -> str:
        return f"off {self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%Y-%m-%d %H:%M}"


class MinimumRate(models.Model):
    """The least a radiologist takes for one modality and priority, in minor units."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="minimum_rates")
    modality = models.CharField(max_length=8)
    priority = models.CharField(max_length=10, choices=Priority.choices)
    cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="USD")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["radiologist", "modality", "priority", "currency"],
                                    name="minimum_rate_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.modality} {self.priority} ≥ {self.cents} {self.currency}"


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(TimeStampedModel):
    """A center's HTTPS endpoint that receives a signed event for every state change of its read requests."""

    center = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=80, default=new_webhook_secret)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """The outbox: one event for one endpoint, written in the transaction of the change it reports,
    then sent (and retried with backoff) by Celery until delivered or given up."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=60)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["endpoint", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"

from marketplace.order_models import SecondOpinionOrder  # noqa: E402,F401 - a patient's order (issue 17)


class ReaderQuality(models.Model):
    """A reader's confirmed peer-review results, kept by reporting.quality for the ranking to read in one join.

    ``reviews`` counts final RADPEER scores on the reader's reports; ``concordant`` those scored 1.
    """

    radiologist = models.OneToOneField(RadiologistProfile, on_delete=models.CASCADE, related_name="quality")
    reviews = models.PositiveIntegerField(default=0)
    concordant = models.PositiveIntegerField(default=0)
    significant = models.PositiveIntegerField(default=0, help_text="Confirmed 2b, 3a or 3b.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=Q(concordant__lte=F("reviews")) & Q(significant__lte=F("reviews")),
            name="reader_quality_counts_within_reviews")]

    def __str__(self) -> str:
        return f"quality of {self.radiologist_id}: {self.concordant}/{self.reviews}"
from marketplace.coverage_models import (  # noqa: E402,F401 - coverage and overflow (issue 18)
    ExtraShift,
    LocalRead,
    OverflowPosting,
    OverflowRule,
)
from marketplace.ris_models import Hl7Interface, Hl7Message, RisOrder  # noqa: E402,F401 - orders from a RIS (issue 23)
