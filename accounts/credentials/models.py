"""Radiologist profiles and their credentials, each credential with its own verification state.

Every credential item (license, board certification, malpractice insurance, MQSA qualification)
moves ``pending → verified | rejected``; ``verified → expired`` at its expiry date; an edit of a
verified item's key fields sends it back to ``pending``. The table of allowed moves is
``ITEM_TRANSITIONS``; the one service that moves items is ``services.credential_transition``.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.credentials.vocab import Priority, jurisdiction_code
from core.models import TimeStampedModel

# Imported from accounts.models at the end of that module, so its names already exist.
from accounts.models import TIME_ZONE_CHOICES  # noqa: I001  isort: skip


class VerificationStatus(models.TextChoices):
    PENDING = "pending", "Pending verification"
    VERIFIED = "verified", "Verified"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


ITEM_TRANSITIONS: dict[str, frozenset[str]] = {
    VerificationStatus.PENDING: frozenset({VerificationStatus.VERIFIED, VerificationStatus.REJECTED}),
    VerificationStatus.VERIFIED: frozenset({VerificationStatus.EXPIRED, VerificationStatus.PENDING}),
    VerificationStatus.REJECTED: frozenset({VerificationStatus.PENDING}),
    VerificationStatus.EXPIRED: frozenset({VerificationStatus.PENDING}),
}


class CredentialKind(models.TextChoices):
    LICENSE = "license", "License"
    BOARD = "board", "Board certification"
    INSURANCE = "insurance", "Malpractice insurance"
    MQSA = "mqsa", "MQSA qualification"
    PRIVILEGE = "privilege", "Facility privileges"


class VerificationMethod(models.TextChoices):
    PRIMARY_SOURCE = "primary_source", "Primary source (issuing body's lookup)"
    DOCUMENT = "document", "Document reviewed"
    NPDB = "npdb", "National Practitioner Data Bank query"
    OTHER = "other", "Other"


def default_priorities() -> list[str]:
    return list(Priority.values)


def _private_path(prefix: str, owner_public_id, filename: str) -> str:
    suffix = PurePosixPath(filename or "").suffix.lower()[:8]
    return f"credentials/{owner_public_id}/{prefix}{uuid.uuid4().hex}{suffix}"


def photo_upload_path(instance: RadiologistProfile, filename: str) -> str:
    return _private_path("photo-", instance.public_id, filename)


def document_upload_path(instance: CredentialDocument, filename: str) -> str:
    return _private_path("doc-", instance.radiologist.public_id, filename)


class RadiologistProfile(TimeStampedModel):
    """A radiologist's professional profile: who they are, what they read and how much at once."""

    class OnboardingStep(models.TextChoices):
        PROFILE = "profile", "Profile"
        LICENSES = "licenses", "Licenses"
        CERTIFICATIONS = "certifications", "Certifications"
        INSURANCE = "insurance", "Insurance"
        DOCUMENTS = "documents", "Documents"
        SUBMIT = "submit", "Submit"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="radiologist_profile")
    display_name = models.CharField(max_length=200, blank=True, help_text="Shown to centers; else the full name.")
    credentials_line = models.CharField(max_length=100, blank=True, help_text='e.g. "MD, FACR"')
    photo = models.FileField(upload_to=photo_upload_path, max_length=300, blank=True)
    bio = models.TextField(blank=True, max_length=2000)
    languages = models.JSONField(default=list, blank=True, help_text="ISO 639-1 codes, e.g. ['en', 'es'].")
    home_time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES)
    npi = models.CharField(max_length=10, null=True, blank=True, unique=True,
                           help_text="US National Provider Identifier (10 digits, Luhn check digit).")
    subspecialties = models.JSONField(default=list, blank=True)
    modalities = models.JSONField(default=list, blank=True, help_text="DICOM modality codes read.")
    max_concurrent_cases = models.PositiveSmallIntegerField(default=3)
    priorities = models.JSONField(default=default_priorities, blank=True, help_text="Priorities taken.")
    onboarding_step = models.CharField(max_length=20, choices=OnboardingStep.choices, default=OnboardingStep.PROFILE)
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When onboarding was submitted.")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(max_concurrent_cases__gte=1), name="profile_capacity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name}, {self.credentials_line}".rstrip(", ")

    @property
    def name(self) -> str:
        return self.display_name or self.user.display_name


class CredentialItem(TimeStampedModel):
    """What every verifiable credential shares: its verification state and the latest decision."""

    KIND: str = ""
    KEY_FIELDS: tuple[str, ...] = ()  # an edit of one of these sends a verified item back to pending

    status = models.CharField(max_length=10, choices=VerificationStatus.choices, default=VerificationStatus.PENDING,
                              db_index=True)
    status_reason = models.CharField(max_length=500, blank=True, help_text="Why it was rejected (shown to the owner).")
    status_changed_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    verification_method = models.CharField(max_length=20, choices=VerificationMethod.choices, blank=True)
    verification_reference = models.CharField(max_length=300, blank=True,
                                              help_text="e.g. the state board lookup URL or confirmation number.")
    expires_on = models.DateField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def valid_from(self) -> date | None:
        return None

    def covers(self, on: date) -> bool:
        """Whether the item's dates include ``on`` (valid through its expiry date)."""
        starts = self.valid_from
        return (starts is None or starts <= on) and (self.expires_on is None or on <= self.expires_on)

    @property
    def was_verified(self) -> bool:
        """Verified, or verified and since lapsed: the states whose dates decide whether it counts."""
        return self.status in (VerificationStatus.VERIFIED, VerificationStatus.EXPIRED)

    @property
    def kind_label(self) -> str:
        return CredentialKind(self.KIND).label


class License(CredentialItem):
    """A medical license in one jurisdiction (country + state/province)."""

    KIND = CredentialKind.LICENSE
    KEY_FIELDS = ("country", "region", "number", "license_type", "issued_on", "expires_on")

    class Type(models.TextChoices):
        FULL = "full", "Full"
        TEMPORARY = "temporary", "Temporary"
        COMPACT = "compact", "Compact-issued (IMLC)"

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="licenses")
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=3, blank=True)
    number = models.CharField(max_length=40)
    license_type = models.CharField(max_length=10, choices=Type.choices, default=Type.FULL)
    issued_on = models.DateField(null=True, blank=True)
    expires_on = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["radiologist", "country", "region", "number"], name="license_unique"),
            models.CheckConstraint(condition=Q(issued_on__isnull=True) | Q(expires_on__gte=F("issued_on")),
                                   name="license_expiry_after_issue"),
        ]
        indexes = [models.Index(fields=["country", "region", "status"])]

    def __str__(self) -> str:
        return f"{self.jurisdiction} {self.number}"

    @property
    def jurisdiction(self) -> str:
        return jurisdiction_code(self.country, self.region)

    @property
    def valid_from(self) -> date | None:
        return self.issued_on

    @property
    def title(self) -> str:
        return f"License {self.jurisdiction}"


class BoardCertification(CredentialItem):
    """A board certificate (e.g. ABR Diagnostic Radiology), time-limited or under continuous certification."""

    KIND = CredentialKind.BOARD
    KEY_FIELDS = ("board", "certificate", "initial_year", "expires_on", "continuous_certification")

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="board_certifications")
    board = models.CharField(max_length=100, default="ABR")
    certificate = models.CharField(max_length=150, help_text="Specialty or subspecialty certificate.")
    initial_year = models.PositiveSmallIntegerField()
    continuous_certification = models.BooleanField(
        default=False, help_text="Participating in continuous certification (no fixed expiry).")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(expires_on__isnull=False) | Q(continuous_certification=True),
                                   name="board_expiry_or_continuous"),
        ]

    def __str__(self) -> str:
        return f"{self.board} {self.certificate}"

    @property
    def valid_from(self) -> date | None:
        return date(self.initial_year, 1, 1)

    @property
    def title(self) -> str:
        return f"{self.board} – {self.certificate}"


class MalpracticeInsurance(CredentialItem):
    """Professional liability cover: limits in minor units, the jurisdictions it covers, its term."""

    KIND = CredentialKind.INSURANCE
    KEY_FIELDS = ("carrier", "policy_number", "per_claim_limit", "aggregate_limit", "currency",
                  "coverage_jurisdictions", "effective_on", "expires_on")

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="malpractice_policies")
    carrier = models.CharField(max_length=150)
    policy_number = models.CharField(max_length=60)
    per_claim_limit = models.PositiveBigIntegerField(help_text="Minor units, e.g. cents.")
    aggregate_limit = models.PositiveBigIntegerField(help_text="Minor units, e.g. cents.")
    currency = models.CharField(max_length=3, default="USD")
    coverage_jurisdictions = models.JSONField(default=list, help_text='e.g. ["US"] (every state) or ["US-TX"].')
    effective_on = models.DateField()
    expires_on = models.DateField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(expires_on__gte=F("effective_on")), name="insurance_expiry_after_start"),
            models.CheckConstraint(condition=Q(aggregate_limit__gte=F("per_claim_limit")),
                                   name="insurance_aggregate_covers_claim"),
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.policy_number}"

    @property
    def valid_from(self) -> date | None:
        return self.effective_on

    @property
    def title(self) -> str:
        return f"{self.carrier} policy"

    def covers_jurisdiction(self, jurisdiction: str) -> bool:
        country = jurisdiction.partition("-")[0]
        return jurisdiction in self.coverage_jurisdictions or country in self.coverage_jurisdictions


class MqsaQualification(CredentialItem):
    """MQSA interpreting-physician qualification (21 CFR 900.12): initial, then continuing experience.

    ``expires_on`` is the attestation date plus ``MQSA_ATTESTATION_VALID_DAYS``: continuing
    experience (960 exams / 24 months, 15 CME hours / 36 months) must be attested again by then.
    """

    KIND = CredentialKind.MQSA
    KEY_FIELDS = ("initial_qualified_on", "exams_last_24_months", "cme_hours_last_36_months", "attested_on")
    EXAMS_REQUIRED = 960
    CME_HOURS_REQUIRED = 15

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="mqsa_qualifications")
    initial_qualified_on = models.DateField()
    exams_last_24_months = models.PositiveIntegerField()
    cme_hours_last_36_months = models.DecimalField(max_digits=5, decimal_places=1)
    attested_on = models.DateField()

    def __str__(self) -> str:
        return f"MQSA since {self.initial_qualified_on}"

    @property
    def valid_from(self) -> date | None:
        return self.initial_qualified_on

    @property
    def title(self) -> str:
        return "MQSA qualification"

    @property
    def meets_continuing_experience(self) -> bool:
        return (self.exams_last_24_months >= self.EXAMS_REQUIRED
                and self.cme_hours_last_36_months >= self.CME_HOURS_REQUIRED)


ITEM_MODELS: dict[str, type[CredentialItem]] = {
    CredentialKind.LICENSE: License,
    CredentialKind.BOARD: BoardCertification,
    CredentialKind.INSURANCE: MalpracticeInsurance,
    CredentialKind.MQSA: MqsaQualification,
}


class FacilityPrivilege(TimeStampedModel):
    """Privileges an imaging center grants a radiologist (credentialing by proxy, 42 CFR 482.22)."""

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        SUSPENDED = "suspended", "Suspended"
        REVOKED = "revoked", "Revoked"

    TRANSITIONS = {
        Status.GRANTED: frozenset({Status.SUSPENDED, Status.REVOKED}),
        Status.SUSPENDED: frozenset({Status.GRANTED, Status.REVOKED}),
        Status.REVOKED: frozenset({Status.GRANTED}),
    }

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="privileges")
    center = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="granted_privileges")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.GRANTED)
    status_reason = models.CharField(max_length=500, blank=True)
    granted_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["radiologist", "center"], name="privilege_unique"),
            models.CheckConstraint(condition=Q(expires_on__isnull=True) | Q(expires_on__gte=F("granted_on")),
                                   name="privilege_expiry_after_grant"),
        ]

    def __str__(self) -> str:
        return f"{self.radiologist} @ {self.center} ({self.status})"

    def covers(self, on: date) -> bool:
        return (self.status == self.Status.GRANTED and self.granted_on <= on
                and (self.expires_on is None or on <= self.expires_on))


PrivilegeStatus = FacilityPrivilege.Status  # importable by name (API schema enum naming)


class CredentialStatusChange(models.Model):
    """Append-only history of every verification decision and status move (who, when, how, why)."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="status_changes")
    kind = models.CharField(max_length=12, choices=CredentialKind.choices)
    item_id = models.PositiveBigIntegerField()
    from_status = models.CharField(max_length=10)
    to_status = models.CharField(max_length=10)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", help_text="Empty when the system moved it (expiry).")
    method = models.CharField(max_length=20, choices=VerificationMethod.choices, blank=True)
    reference = models.CharField(max_length=300, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "item_id"])]

    def __str__(self) -> str:
        return f"{self.kind}#{self.item_id} {self.from_status} → {self.to_status}"


class CredentialDocument(TimeStampedModel):
    """An uploaded PDF or image backing a credential, kept in private storage and served only to allowed eyes."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=12, choices=CredentialKind.choices)
    item_id = models.PositiveBigIntegerField()
    file = models.FileField(upload_to=document_upload_path, max_length=300)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50, help_text="Detected from the bytes, not from the upload.")
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "item_id"])]

    def __str__(self) -> str:
        return self.original_name


class CredentialReminder(models.Model):
    """One expiry reminder sent: the key (item, threshold, expiry date) makes each threshold fire once."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=12, choices=CredentialKind.choices)
    item_id = models.PositiveBigIntegerField()
    threshold_days = models.PositiveSmallIntegerField()
    expires_on = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "item_id", "threshold_days", "expires_on"],
                                    name="credential_reminder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}#{self.item_id} {self.threshold_days} days before {self.expires_on}"


class Notification(models.Model):
    """An in-app notice for one person (credential expiry and the like); read or unread."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return self.title
