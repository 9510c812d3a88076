"""Coverage and overflow (issue 18): extra shifts beyond the weekly hours, a center's overflow rules, what
each rule posted, and a center's "read locally" mark on a study.

A rule is one readable sentence (``marketplace.overflow``): post a study automatically when it arrives in
given hours, when nobody read it locally within N minutes of arrival, or when the center's unread backlog of
a modality exceeds N studies (oldest first). A study is posted at most once by any rule (``OverflowPosting``
is unique per study) and never once the center marked it read locally.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.credentials.vocab import Priority
from accounts.models import Organization, RadiologistProfile
from core.models import TimeStampedModel
from studies.models import Study


class ExtraShift(models.Model):
    """A one-off reading window beyond the weekly hours (an extra night, a weekend), stored in UTC."""

    radiologist = models.ForeignKey(RadiologistProfile, on_delete=models.CASCADE, related_name="extra_shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="extra_shift_ends_after_start"),
        ]
        indexes = [models.Index(fields=["radiologist", "ends_at"])]

    def __str__(self) -> str:
        return f"extra {self.starts_at:%Y-%m-%d %H:%M} – {self.ends_at:%Y-%m-%d %H:%M}"


class OverflowRule(TimeStampedModel):
    """One of a center's rules for posting studies automatically."""

    class Trigger(models.TextChoices):
        HOURS = "hours", "It arrives in given hours"
        UNREAD = "unread", "Nobody read it locally within N minutes of arrival"
        BACKLOG = "backlog", "The unread backlog of its modality exceeds N studies"

    center = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="overflow_rules")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    modality = models.CharField(max_length=16, blank=True, help_text="Empty: any modality.")
    weekdays = models.JSONField(default=list, blank=True, help_text="Hours rule: 0 Monday … 6 Sunday (local).")
    starts = models.TimeField(null=True, blank=True, help_text="Hours rule: from (the center's local time).")
    ends = models.TimeField(null=True, blank=True, help_text="Hours rule: to; at or before the start: next day.")
    minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Unread rule: minutes after arrival.")
    backlog = models.PositiveIntegerField(null=True, blank=True, help_text="Backlog rule: studies.")
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.ROUTINE)
    audience = models.CharField(max_length=12, default="preferred",
                                help_text="marketplace.models.Audience: preferred (contract readers first) or "
                                          "marketplace.")
    # The report template its reads are written on (reporting's public id: reporting sits above the marketplace;
    # ``marketplace.template_choices``), and its name as chosen, for the rule's sentence. None: the automatic choice.
    template = models.UUIDField(null=True, blank=True)
    template_name = models.CharField(max_length=120, blank=True)
    paused = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["center", "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(minutes__isnull=True) | Q(minutes__gt=0), name="overflow_minutes"),
            models.CheckConstraint(condition=Q(backlog__isnull=True) | Q(backlog__gt=0), name="overflow_backlog"),
        ]
        indexes = [models.Index(fields=["center", "paused"])]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} ({self.center_id})"


class OverflowPosting(models.Model):
    """A study a rule posted (at most one per study, whichever rule fired first)."""

    rule = models.ForeignKey(OverflowRule, on_delete=models.PROTECT, related_name="postings")
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="overflow_posting")
    read_request = models.ForeignKey("marketplace.ReadRequest", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.study_id} posted by rule {self.rule_id}"


class LocalRead(models.Model):
    """The center read this study itself: no rule may post it."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="local_read")
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    marked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.study_id} read locally"
