"""Reports and what hangs off them: templates, macros, addenda, critical results, deliveries, messages.

A report's states form one table (``TRANSITIONS``); ``reporting.services.reports`` is the one module
that changes them. A final report is frozen: PostgreSQL refuses UPDATE and DELETE on a final row and
on any addendum (migration 0002), so signed content cannot change, whoever asks.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization, RadiologistProfile
from core.models import TimeStampedModel
from marketplace.models import ReadRequest

# The IHE MRRT / RSNA sections every template draws from, in the order they are shown, and the patient's
# plain-language summary that marks a second-opinion template (issue 17).
PATIENT_SUMMARY = "patient_summary"
SECTION_CODES = ("clinical_information", "comparison", "technique", "findings", "impression", PATIENT_SUMMARY)
FIELD_KINDS = ("choice", "number", "yesno", "text")
MAX_SECTION_CHARS = 20_000  # one section; a whole report stays well under the 1 MB request limit
MAX_BODY_CHARS = 100_000


class ReportTemplate(TimeStampedModel):
    """An MRRT-like template stored as data: sections with normal text, and structured fields.

    ``sections`` is a list of ``{"code", "title", "normal"}``; ``fields`` a list of
    ``{"code", "label", "kind", "choices": [[value, label], ...], "unit", "required", "section"}``
    (``reporting.templates.check_definition`` holds the shape). ``owner`` empty: a platform template
    everyone may use; else the center's or group's own, for its readers.
    """

    name = models.CharField(max_length=120)
    owner = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="report_templates")
    modalities = models.JSONField(default=list, help_text="DICOM modality codes it is chosen for, e.g. [\"CT\"].")
    body_parts = models.JSONField(default=list, help_text="Body-part keywords it is chosen for (upper case).")
    sections = models.JSONField(default=list)
    fields = models.JSONField(default=list)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [  # partial constraints, not NULLS NOT DISTINCT: SQLite (the embedded default) lacks it
            models.UniqueConstraint(fields=["owner", "name"], condition=Q(owner__isnull=False),
                                    name="report_template_name_per_owner"),
            models.UniqueConstraint(fields=["name"], condition=Q(owner__isnull=True),
                                    name="report_template_name_of_platform"),
        ]

    def __str__(self) -> str:
        return self.name


class Macro(TimeStampedModel):
    """A radiologist's own snippet, typed as ``.name`` in the editor and expanded in place."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="macros")
    name = models.SlugField(max_length=30)
    text = models.TextField(max_length=4000)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["radiologist", "name"], name="macro_name_per_radiologist")]

    def __str__(self) -> str:
        return f".{self.name}"


class Report(TimeStampedModel):
    """The report on one read request, written by its assignee. One per request."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PRELIMINARY = "preliminary", "Preliminary"
        FINAL = "final", "Final"

    read_request = models.OneToOneField(ReadRequest, on_delete=models.PROTECT, related_name="report")
    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.PROTECT, related_name="reports")
    template = models.ForeignKey(ReportTemplate, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1, help_text="Goes up by one with every saved draft.")
    sections = models.JSONField(default=dict, help_text="Section code → text.")
    fields = models.JSONField(default=dict, help_text="Field code → value (text).")
    # What the center sees while the report is preliminary (a STAT read released before signing).
    preliminary_sections = models.JSONField(null=True, blank=True)
    preliminary_fields = models.JSONField(null=True, blank=True)
    preliminary_at = models.DateTimeField(null=True, blank=True)
    # Signing: frozen from here on.
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True)
    signer_name = models.CharField(max_length=200, blank=True)
    signer_credentials = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    template_snapshot = models.JSONField(
        null=True, blank=True,
        help_text="The template's name, sections and fields as signed: delivery prints these titles and labels "
                  "even if the template is edited later.")

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="final") | (Q(signed_at__isnull=False) & ~Q(content_hash="")),
                name="report_final_is_signed"),
        ]
        indexes = [models.Index(fields=["radiologist", "status"])]

    def __str__(self) -> str:
        return f"{self.get_status_display()} report {self.public_id}"

    @property
    def is_final(self) -> bool:
        return self.status == self.Status.FINAL


TRANSITIONS: dict[str, frozenset[str]] = {
    Report.Status.DRAFT: frozenset({Report.Status.PRELIMINARY, Report.Status.FINAL}),
    Report.Status.PRELIMINARY: frozenset({Report.Status.PRELIMINARY, Report.Status.FINAL}),  # re-release
    Report.Status.FINAL: frozenset(),
}


class Addendum(TimeStampedModel):
    """A signed addition to a final report, numbered from 1. Never edited or deleted (trigger)."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="addenda")
    number = models.PositiveIntegerField()
    text = models.TextField(max_length=MAX_SECTION_CHARS)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    signer_name = models.CharField(max_length=200)
    signer_credentials = models.CharField(max_length=200, blank=True)
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["report", "number"]
        constraints = [models.UniqueConstraint(fields=["report", "number"], name="addendum_number_per_report")]

    def __str__(self) -> str:
        return f"addendum {self.number} to {self.report_id}"


class CriticalResult(TimeStampedModel):
    """A critical finding flagged at signing, communicated to a named person, acknowledged by the center.

    Category 1 (immediate) not acknowledged in time escalates: center admins, then platform operations.
    """

    class Category(models.IntegerChoices):
        IMMEDIATE = 1, "Category 1 — immediate (within 60 minutes)"
        URGENT = 2, "Category 2 — urgent (within hours)"
        NON_URGENT = 3, "Category 3 — non-urgent"

    class Method(models.TextChoices):
        PHONE = "phone", "Telephone"
        IN_PERSON = "in_person", "In person"
        SECURE_MESSAGE = "secure_message", "Secure message"

    report = models.OneToOneField(Report, on_delete=models.PROTECT, related_name="critical_result")
    read_request = models.ForeignKey(ReadRequest, on_delete=models.PROTECT, related_name="critical_results")
    center = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="critical_results")
    category = models.PositiveSmallIntegerField(choices=Category.choices)
    finding = models.CharField(max_length=500)
    contacted_name = models.CharField(max_length=200)
    contacted_at = models.DateTimeField()
    method = models.CharField(max_length=20, choices=Method.choices)
    read_back = models.BooleanField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    escalation_level = models.PositiveSmallIntegerField(default=0, help_text="0 none, 1 center admins, 2 operations.")
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["category", "created_at"]
        indexes = [models.Index(fields=["center", "acknowledged_at"]),
                   models.Index(fields=["acknowledged_at", "category"])]

    def __str__(self) -> str:
        return f"critical result (category {self.category}) on {self.read_request_id}"


class Delivery(TimeStampedModel):
    """One delivery form of a signed report or addendum: the bytes the center downloads."""

    class Form(models.TextChoices):
        PDF = "pdf", "PDF"
        HL7 = "hl7", "HL7 v2.5.1 ORU^R01"
        FHIR = "fhir", "FHIR R4 DiagnosticReport"
        SR = "sr", "DICOM Basic Text SR"

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="deliveries")
    addenda_count = models.PositiveIntegerField(default=0, help_text="How many addenda this version includes.")
    form = models.CharField(max_length=8, choices=Form.choices)
    content_type = models.CharField(max_length=100)
    payload = models.BinaryField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["report", "-addenda_count", "form"]
        constraints = [models.UniqueConstraint(fields=["report", "addenda_count", "form"],
                                               name="delivery_once_per_version_and_form")]

    def __str__(self) -> str:
        return f"{self.form} of {self.report_id} (+{self.addenda_count})"


class Message(TimeStampedModel):
    """One message in the thread between the center and the reader about a request (audited)."""

    read_request = models.ForeignKey(ReadRequest, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_center = models.BooleanField()
    body = models.TextField(max_length=4000)

    class Meta:
        ordering = ["read_request", "created_at", "id"]

    def __str__(self) -> str:
        return f"message on {self.read_request_id}"


MAX_PATIENT_QUESTION_CHARS = 1000
MAX_PATIENT_ANSWER_CHARS = 4000


class PatientQuestion(TimeStampedModel):
    """The one follow-up question the patient of a signed second opinion may ask its reader (within 7 days
    of signing), and the reader's one answer. The only way a reader and a patient talk (issue 17)."""

    report = models.OneToOneField(Report, on_delete=models.PROTECT, related_name="patient_question")
    asked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    question = models.TextField(max_length=MAX_PATIENT_QUESTION_CHARS)
    answer = models.TextField(blank=True, max_length=MAX_PATIENT_ANSWER_CHARS)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(answered_at__isnull=True) & Q(answer="") & Q(answered_by__isnull=True))
                | (Q(answered_at__isnull=False) & ~Q(answer="") & Q(answered_by__isnull=False)),
                name="patient_question_answered_whole"),
        ]
        indexes = [models.Index(fields=["answered_at"])]

    def __str__(self) -> str:
        return f"patient question on {self.report_id}"


from reporting.quality_models import (  # noqa: E402,F401 - overreads and peer review (issue 16)
    OverreadReply,
    PeerReview,
    QualitySettings,
    SamplingCursor,
    SamplingStratum,
)
from reporting.share_models import DoctorShare  # noqa: E402,F401 - a patient's link for their doctor (issue 17)
