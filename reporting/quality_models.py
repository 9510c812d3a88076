"""Quality (issue 16): overread replies, RADPEER peer reviews and the sampling that picks them.

A peer review's states form one table (``PEER_REVIEW_TRANSITIONS``); ``reporting.quality.peer_review`` is
the one module that changes them. Scores follow the ACR RADPEER scale (2016 revision, domain.md): 2b, 3a
and 3b count only once a QA radiologist has confirmed or changed them (arbitration).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization, RadiologistProfile
from core.models import TimeStampedModel
from marketplace.models import ReadRequest

DEFAULT_REVIEW_BASIS_POINTS = 250  # 2.5 % of signed reports (issue 16)


class QualitySettings(TimeStampedModel):
    """A center's or a radiology group's peer-review programme: the share of signed reports sampled (per
    modality) and the QA radiologists who arbitrate its discrepancies."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="quality_settings")
    review_basis_points = models.PositiveIntegerField(
        default=DEFAULT_REVIEW_BASIS_POINTS, help_text="Share of signed reports sampled, in 1/100 of a percent "
                                                       "(250 = 2.5 %; 0 = no sampling).")
    qa_radiologists = models.ManyToManyField(RadiologistProfile, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "quality settings"
        constraints = [models.CheckConstraint(condition=Q(review_basis_points__lte=10_000),
                                              name="quality_review_rate_at_most_100pc")]

    def __str__(self) -> str:
        return f"quality settings of {self.organization_id}"


class SamplingStratum(models.Model):
    """Where one programme's sampling stands for one modality: reports are taken in blocks of
    10,000 / rate, one picked at random in each block (``pick``: its position, 0-based)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    modality = models.CharField(max_length=16)
    seen = models.PositiveIntegerField(default=0, help_text="Reports counted in the current block.")
    pick = models.PositiveIntegerField(default=0)
    block = models.PositiveIntegerField(default=0, help_text="The block size ``pick`` was drawn for.")
    sampled = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "modality"], name="stratum_once")]

    def __str__(self) -> str:
        return f"{self.modality} sampling of {self.organization_id}: {self.sampled}/{self.total}"


class SamplingCursor(models.Model):
    """The last signed report the sampling run has considered (one row): each report is counted once."""

    last_report_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sampled up to report {self.last_report_id}"


class Agreement(models.TextChoices):
    AGREE = "agree", "Agree"
    MINOR = "minor", "Minor difference"
    SIGNIFICANT = "significant", "Significant difference"


class OverreadReply(TimeStampedModel):
    """The overreader's signed verdict on an earlier report, and the original reader's one answer."""

    read_request = models.OneToOneField(ReadRequest, on_delete=models.PROTECT, related_name="overread_reply")
    report = models.OneToOneField("reporting.Report", on_delete=models.PROTECT, related_name="overread_reply")
    original_report = models.ForeignKey("reporting.Report", on_delete=models.PROTECT, related_name="overread_replies")
    level = models.PositiveSmallIntegerField(default=1, help_text="2: the second level of a two-level read.")
    agreement = models.CharField(max_length=12, choices=Agreement.choices)
    comment = models.TextField(blank=True)
    answer = models.TextField(blank=True, max_length=4000)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    addendum_requested_at = models.DateTimeField(null=True, blank=True)
    addendum = models.ForeignKey("reporting.Addendum", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+", help_text="The addendum that answered the request.")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(answered_at__isnull=True) & Q(answer="")) | (Q(answered_at__isnull=False) & ~Q(answer="")),
                name="overread_answer_whole"),
        ]

    def __str__(self) -> str:
        return f"overread of {self.original_report_id}: {self.agreement}"


class Score(models.TextChoices):
    """ACR RADPEER (2016)."""

    CONCUR = "1", "1 — concur with interpretation"
    TWO_A = "2a", "2a — discrepancy not ordinarily expected to be made; unlikely to be clinically significant"
    TWO_B = "2b", "2b — discrepancy not ordinarily expected to be made; likely to be clinically significant"
    THREE_A = "3a", "3a — discrepancy that should be made most of the time; unlikely to be clinically significant"
    THREE_B = "3b", "3b — discrepancy that should be made most of the time; likely to be clinically significant"


ARBITRATED_SCORES = frozenset({Score.TWO_B, Score.THREE_A, Score.THREE_B})  # domain.md


class PeerReview(TimeStampedModel):
    """One sampled report reviewed blind: the review read request, its score, and arbitration when needed."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Waiting for a reviewer"
        ARBITRATION = "arbitration", "In arbitration"
        FINAL = "final", "Final"
        CANCELLED = "cancelled", "Cancelled"

    original_report = models.OneToOneField("reporting.Report", on_delete=models.PROTECT, related_name="peer_review")
    read_request = models.OneToOneField(ReadRequest, on_delete=models.PROTECT, related_name="peer_review")
    programme = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+",
                                  help_text="The center or group whose sampling picked it.")
    reader = models.ForeignKey(RadiologistProfile, on_delete=models.PROTECT, related_name="peer_reviews_received")
    center = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    modality = models.CharField(max_length=16)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    score = models.CharField(max_length=2, choices=Score.choices, blank=True, help_text="The reviewer's.")
    comment = models.TextField(blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    final_score = models.CharField(max_length=2, choices=Score.choices, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    arbiter = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    arbitration_comment = models.TextField(blank=True, max_length=4000)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(status="final") | (~Q(final_score="") & Q(final_at__isnull=False)),
                                   name="peer_review_final_has_score"),
        ]
        indexes = [models.Index(fields=["reader", "status", "final_at"]),
                   models.Index(fields=["center", "status", "final_at"]),
                   models.Index(fields=["status", "programme"])]

    def __str__(self) -> str:
        return f"peer review of {self.original_report_id} ({self.status})"


PEER_REVIEW_TRANSITIONS: dict[str, frozenset[str]] = {
    PeerReview.Status.REQUESTED: frozenset({PeerReview.Status.FINAL, PeerReview.Status.ARBITRATION,
                                            PeerReview.Status.CANCELLED}),
    PeerReview.Status.ARBITRATION: frozenset({PeerReview.Status.FINAL}),
    PeerReview.Status.FINAL: frozenset(),
    PeerReview.Status.CANCELLED: frozenset(),
}
