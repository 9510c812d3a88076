"""A patient's link to their signed second opinion for their own doctor (issue 17, item 5).

The link names the share by a random token; a 6-digit code, given to the doctor separately, opens it.
Neither is stored: only a hash of each. The share's states are one table (``TRANSITIONS``), moved by
``reporting.shares.doctor_share_transition``; expiry is by time alone (``expires_at``), not a state.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import TimeStampedModel
from marketplace.order_models import SecondOpinionOrder

MAX_FAILED_CODES = 5  # wrong codes before the share locks for good (the patient makes a new one)


class DoctorShare(TimeStampedModel):
    """One expiring, revocable, read-only link to an order's signed report and images, opened with a code."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"
        LOCKED = "locked", "Locked after wrong codes"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.ACTIVE: frozenset({Status.REVOKED, Status.LOCKED}),
        Status.LOCKED: frozenset({Status.REVOKED}),
        Status.REVOKED: frozenset(),
    }

    order = models.ForeignKey(SecondOpinionOrder, on_delete=models.PROTECT, related_name="doctor_shares")
    label = models.CharField(max_length=120)
    doctor_email = models.EmailField(blank=True)
    # The link's token: its first characters find the row, a SHA-256 of the whole is compared in constant time.
    token_lookup = models.CharField(max_length=12, unique=True)
    token_hash = models.CharField(max_length=64)
    code_hash = models.CharField(max_length=64)  # keyed HMAC: a leaked table alone cannot try the million codes
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    revoked_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    times_opened = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["order", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=~Q(status="revoked") | Q(revoked_at__isnull=False),
                                   name="doctor_share_revoked_has_time"),
            models.CheckConstraint(condition=Q(failed_attempts__lte=MAX_FAILED_CODES),
                                   name="doctor_share_failed_attempts_bounded"),
        ]

    def __str__(self) -> str:
        return f"doctor share {self.public_id} ({self.state})"

    def can_move_to(self, to: str) -> bool:
        return to in self.TRANSITIONS[self.status]

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    @property
    def state(self) -> str:
        """What the patient's list shows: ``active``, ``expired``, ``revoked`` or ``locked``."""
        if self.status == self.Status.ACTIVE and self.is_expired():
            return "expired"
        return self.status
