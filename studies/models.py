"""The study index: DICOM studies, series and instances owned by the organization that sent them.

Files live in the storage backend under a key the server builds
(``{org}/{study_uid}/{series_uid}/{sop_uid}.dcm``), byte for byte as received. The rows here are
the index: what QIDO-RS searches, what WADO-RS streams from, and what the marketplace matches on.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from core.models import TimeStampedModel


class Study(TimeStampedModel):
    """One DICOM study as held by one organization (the same UID at another organization is another row)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    accession_number = models.CharField(max_length=16, blank=True)
    # Backslash-delimited with a leading and trailing backslash ("\CT\SR\"), so that one
    # ``contains`` lookup matches a modality on SQLite and PostgreSQL alike.
    modalities_in_study = models.CharField(max_length=200, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    study_id = models.CharField(max_length=16, blank=True)
    referring_physician_name = models.CharField(max_length=324, blank=True)
    institution_name = models.CharField(max_length=200, blank=True)
    # Where the patient was imaged: the marketplace matches licenses on it.
    jurisdiction_country = models.CharField(max_length=2)
    jurisdiction_region = models.CharField(max_length=3, blank=True)
    number_of_series = models.PositiveIntegerField(default=0)
    number_of_instances = models.PositiveIntegerField(default=0)
    total_size = models.BigIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    last_received_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-study_date", "-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "study_instance_uid"], name="study_unique_per_org"),
        ]
        indexes = [
            models.Index(fields=["organization", "study_date"]),
            models.Index(fields=["organization", "patient_id"]),
            models.Index(fields=["organization", "accession_number"]),
            models.Index(fields=["organization", "received_at"]),
            models.Index(fields=["study_instance_uid"]),
        ]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return f"{self.study_description or 'Study'} {self.study_instance_uid}"

    @property
    def jurisdiction(self) -> str:
        return f"{self.jurisdiction_country}-{self.jurisdiction_region}" if self.jurisdiction_region \
            else self.jurisdiction_country

    @property
    def modalities(self) -> list[str]:
        return [m for m in self.modalities_in_study.split("\\") if m]


class Series(models.Model):
    """One series of a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=200, blank=True)
    body_part_examined = models.CharField(max_length=64, blank=True)
    series_date = models.DateField(null=True, blank=True)
    number_of_instances = models.PositiveIntegerField(default=0)
    total_size = models.BigIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["series_number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="series_unique_per_study"),
        ]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return f"{self.modality} {self.series_description or self.series_instance_uid}"


class Instance(models.Model):
    """One stored DICOM file (SOP instance), with what WADO-RS needs to serve it without re-parsing."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64)
    number_of_frames = models.PositiveIntegerField(default=1)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    bits_allocated = models.PositiveSmallIntegerField(null=True, blank=True)
    samples_per_pixel = models.PositiveSmallIntegerField(null=True, blank=True)
    burned_in_annotation = models.CharField(max_length=16, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # SHA-256 of the data set after the File Meta Information (inflated when deflated): the same instance
    # through another door (another file meta) is a duplicate, not a conflict. "" until computed.
    content_sha256 = models.CharField(max_length=64, blank=True, default="")
    storage_key = models.CharField(max_length=400)
    # Where PixelData's value starts in the file and how long it is (native syntaxes: frames are
    # served as byte ranges of the stored file; encapsulated: parsed per request).
    pixel_data_offset = models.BigIntegerField(null=True, blank=True)
    pixel_data_length = models.BigIntegerField(null=True, blank=True)
    # DICOM JSON (PS3.18 F.2) of the header, bulk data replaced by BulkDataURI placeholders.
    dicom_json = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)
    received_via = models.CharField(max_length=16, blank=True)
    # Why the pixel data cannot be decoded, once a decoder had to be stopped on it or its header was found
    # malformed (studies.decoding): such an instance is answered at once (422) instead of decoded again.
    undecodable_reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["instance_number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "sop_instance_uid"], name="instance_unique_per_org"),
        ]
        indexes = [models.Index(fields=["series", "instance_number"])]

    def __str__(self) -> str:
        return self.sop_instance_uid


class StudyAccessGrant(TimeStampedModel):
    """A radiologist's right to one study: ``preview`` (de-identified) or ``full``, until it expires."""

    class Level(models.TextChoices):
        PREVIEW = "preview", "Preview (de-identified)"
        FULL = "full", "Full"

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned (offer or read)"
        EMERGENCY = "emergency", "Emergency (break-glass)"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_grants")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="grants")
    level = models.CharField(max_length=10, choices=Level.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ASSIGNED)
    reason = models.CharField(max_length=300)
    expires_at = models.DateTimeField()
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A blinded peer reviewer: the study's signed reports (DICOM SR stored by reporting) are not shown,
    # since they name their reader.
    hide_reports = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["user", "study", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="grant_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.level} grant on {self.study_id} for {self.user_id}"

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and self.expires_at > at


class DicomAeTitle(TimeStampedModel):
    """The AE title a modality calls to store into one organization through the C-STORE gateway."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="ae_titles")
    ae_title = models.CharField(max_length=16, unique=True)
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.ae_title


class DicomPeer(TimeStampedModel):
    """A sending device allowed to call an AE title: its calling AE title and host (IP address)."""

    called = models.ForeignKey(DicomAeTitle, on_delete=models.CASCADE, related_name="peers")
    calling_ae_title = models.CharField(max_length=16)
    host = models.GenericIPAddressField()
    description = models.CharField(max_length=200, blank=True)
    # The sending site may image patients elsewhere than the organization's own state.
    jurisdiction_country = models.CharField(max_length=2, blank=True)
    jurisdiction_region = models.CharField(max_length=3, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["called", "calling_ae_title", "host"], name="dicom_peer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.calling_ae_title}@{self.host} → {self.called}"


class OriginalReport(TimeStampedModel):
    """The report the patient was given with their images (a PDF or a photo), kept beside a study of their
    personal space so that a second reader can compare. Stored under the space's prefix in default storage."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="original_reports")
    file = models.FileField(max_length=400)  # the key in default_storage, built by the server
    content_type = models.CharField(max_length=40)
    original_name = models.CharField(max_length=200, blank=True)  # as the patient's device named it: a label only
    size = models.BigIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"original report of {self.study_id}"


class StudyShareRequest(TimeStampedModel):
    """A patient asks an imaging center on ReadRoom to share one of their studies with them. The center's
    admins approve (choosing the study: a full grant for the patient) or decline; an approved share can be
    revoked by either side. One transition table (``TRANSITIONS``) and one service (studies.shares)."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Shared"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.REQUESTED: frozenset({Status.APPROVED, Status.DECLINED}),
        Status.APPROVED: frozenset({Status.REVOKED}),
    }

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_requests")
    center = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="share_requests")
    accession_number = models.CharField(max_length=16, blank=True)
    study_date = models.DateField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)  # the patient's words to the center
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="share_requests")
    grant = models.OneToOneField(StudyAccessGrant, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="share_request")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["center", "status"]), models.Index(fields=["patient", "status"])]
        constraints = [
            models.CheckConstraint(condition=~Q(accession_number="") | Q(study_date__isnull=False),
                                   name="share_request_names_the_study"),
        ]

    def __str__(self) -> str:
        return f"share request {self.public_id} ({self.status})"

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, frozenset())


class StudyShareStatusChange(models.Model):
    """One move of a share request: who, when, from, to, why (append-only)."""

    share_request = models.ForeignKey(StudyShareRequest, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"
