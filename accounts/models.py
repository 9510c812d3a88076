"""Users, organizations (tenants), memberships and roles, invitations, API credentials, audit log.

Radiologist profiles and credentials live in ``accounts.credentials.models`` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zoneinfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import TimeStampedModel

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in zoneinfo.available_timezones() if "/" in tz and not tz.startswith("Etc/"))


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    TECHNOLOGIST = "technologist", "Technologist"
    RADIOLOGIST = "radiologist", "Radiologist"
    FINANCE = "finance", "Finance"
    VIEWER = "viewer", "Viewer"


# Roles whose work shows patient data: they must enroll in MFA and get the idle timeout.
PHI_ROLES = frozenset({Role.ADMIN, Role.TECHNOLOGIST, Role.RADIOLOGIST})


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Email is the login. Patients have no organization; professionals join by invitation."""

    class Kind(models.TextChoices):
        PROFESSIONAL = "professional", "Professional"
        PATIENT = "patient", "Patient"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PATIENT)
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="America/New_York")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin site.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email


class Organization(TimeStampedModel):
    """A tenant: an imaging center, a radiology group, or the platform operator itself."""

    class Kind(models.TextChoices):
        IMAGING_CENTER = "imaging_center", "Imaging center"
        RADIOLOGY_GROUP = "radiology_group", "Radiology group"
        PLATFORM = "platform", "Platform"
        PATIENT = "patient", "Personal space"  # a patient's own images: no members, only its owner

    name = models.CharField(max_length=200)
    legal_name = models.CharField(max_length=300)
    slug = models.SlugField(max_length=80, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. US")
    region = models.CharField(max_length=3, blank=True, help_text="State/province code, e.g. TX")
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES)
    requires_privileges = models.BooleanField(
        default=False, help_text="Imaging centers: offer studies only to radiologists holding our facility privileges.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def jurisdiction(self) -> str:
        return f"{self.country}-{self.region}" if self.region else self.country


class Membership(TimeStampedModel):
    """A user's place in an organization, with one or more roles."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    roles = models.JSONField(default=list, help_text="A list of Role values.")
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user_org")]
        indexes = [models.Index(fields=["organization", "is_active"])]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({', '.join(self.roles)})"

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


class Invitation(TimeStampedModel):
    """An emailed, single-use, expiring invitation to join an organization with a chosen role."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="invitations_sent")
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "accepted_at"])]

    def __str__(self) -> str:
        return f"Invitation {self.email} → {self.organization} as {self.role}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ApiCredential(TimeStampedModel):
    """A bearer secret shown once; only a SHA-256 of it is stored. The prefix finds the row."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @staticmethod
    def hash_secret(secret: str) -> str:
        # Secrets are 256-bit random values, so a fast hash is enough (no dictionary to attack).
        return hashlib.sha256(secret.encode()).hexdigest()

    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class PersonalApiToken(ApiCredential):
    """A user's own API token: acts as that user, with that user's memberships."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")

    def __str__(self) -> str:
        return f"token {self.name} ({self.prefix}) of {self.user}"


class OrganizationApiKey(ApiCredential):
    """An integration's key: acts for one organization with the roles given at creation."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    roles = models.JSONField(default=list)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"key {self.name} ({self.prefix}) of {self.organization}"


class AuditEvent(models.Model):
    """One append-only, hash-chained record of an access to PHI or a security-relevant action.

    Written only through ``accounts.audit.audit_record``. On PostgreSQL a trigger makes UPDATE,
    DELETE and TRUNCATE fail; ``row_hash`` chains every row to the previous one so that a row
    altered behind the database's back is detected by ``audit_verify_chain``.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"
        FAILURE = "failure", "Failure"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="+")
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=128, blank=True)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.DO_NOTHING,
                                     db_constraint=False, related_name="+")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    extra = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["actor", "created_at"]),
            models.Index(fields=["object_type", "object_id"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(action=""), name="audit_action_not_empty"),
        ]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor_email} {self.action} {self.object_type}:{self.object_id}"

    def compute_hash(self) -> str:
        payload = json.dumps(
            [
                self.prev_hash,
                self.created_at.isoformat(),
                self.actor_id,
                self.actor_email,
                self.action,
                self.object_type,
                self.object_id,
                self.organization_id,
                self.ip_address,
                self.user_agent,
                self.reason,
                self.outcome,
                self.extra,
            ],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


# Radiologist profiles and credentials (a package of their own, same app label).
from accounts.credentials.models import (  # noqa: E402
    ITEM_MODELS,
    ITEM_TRANSITIONS,
    BoardCertification,
    CredentialDocument,
    CredentialItem,
    CredentialKind,
    CredentialReminder,
    CredentialStatusChange,
    FacilityPrivilege,
    License,
    MalpracticeInsurance,
    MqsaQualification,
    Notification,
    RadiologistProfile,
    VerificationMethod,
    VerificationStatus,
)

__all__ = [
    "ITEM_MODELS", "ITEM_TRANSITIONS", "PHI_ROLES", "TIME_ZONE_CHOICES", "ApiCredential", "AuditEvent",
    "BoardCertification", "CredentialDocument", "CredentialItem", "CredentialKind", "CredentialReminder",
    "CredentialStatusChange", "FacilityPrivilege", "Invitation", "License", "MalpracticeInsurance", "Membership",
    "MqsaQualification", "Notification", "Organization", "OrganizationApiKey", "PersonalApiToken",
    "RadiologistProfile", "Role", "User", "VerificationMethod", "VerificationStatus",
]


class PatientProfile(TimeStampedModel):
    """What a patient tells us before ordering, and their private space for images.

    The residence (country and state/province), not the imaging center's, decides which licenses a
    reader of their second opinion needs (telemedicine). ``space`` is an organization of kind
    ``patient`` that owns the patient's uploads; the patient is not a member of it: the Actor carries
    its id, so no professional route ever opens to a patient by membership.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="patient_profile")
    date_of_birth = models.DateField()
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=3, blank=True)
    space = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="patient_profile")

    def __str__(self) -> str:
        return f"{self.user} ({self.jurisdiction})"

    @property
    def jurisdiction(self) -> str:
        return f"{self.country}-{self.region}" if self.region else self.country
