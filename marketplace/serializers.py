"""API shapes of the marketplace. Thin: they describe input and output; the services hold the rules.

Times leave the API in UTC (ISO 8601 with ``Z``), each with the seconds remaining where a clock runs.
Offers carry the de-identified summary only: no patient data, no clinical history.
"""

from __future__ import annotations

from datetime import UTC

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.credentials.vocab import Subspecialty
from core.api_input import RefuseUnknownFields
from marketplace.models import FINISHED_STATES, Audience, Kind, Priority, ReadRequest

STATUS_HELP = "draft, open, assigned, in_progress, reported, closed, cancelled, expired or released."


class UtcDateTimeField(serializers.DateTimeField):
    """A moment shown in UTC (``2026-10-02T08:00:00Z``)."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)


class AwareDateTimeField(serializers.DateTimeField):
    """An input moment that must say its offset: a bare local time is ambiguous across time zones."""

    default_error_messages = {"naive": "Give a time zone offset, e.g. 2026-10-02T08:00:00Z."}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return value.astimezone(UTC)


def remaining_seconds(read_request: ReadRequest) -> int | None:
    """Seconds until the deadline (0 once passed); None when the request is finished."""
    if read_request.status in FINISHED_STATES:
        return None
    return max(0, int((read_request.deadline - timezone.now()).total_seconds()))


# --- references -------------------------------------------------------------------------------------

class RefSerializer(serializers.Serializer):
    """A radiologist (profile) or an organization, by public id and name."""

    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()


class StudyRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    study_instance_uid = serializers.CharField()
    accession_number = serializers.CharField()


class FlagsSerializer(serializers.Serializer):
    no_on_shift_reader = serializers.BooleanField(help_text="STAT posted while no eligible reader was on shift.")
    at_risk = serializers.BooleanField(help_text="80 % of the time to deadline passed without a claim.")
    late = serializers.BooleanField(help_text="Passed its deadline while assigned.")


class ReadRequestLinksSerializer(serializers.Serializer):
    detail = serializers.CharField()
    history = serializers.CharField()
    candidates = serializers.CharField()
    cancel = serializers.CharField()


# --- read requests ---------------------------------------------------------------------------------

class ReadRequestSerializer(serializers.Serializer):
    """A read request as its center's worklist shows it (no clinical history: see the detail)."""

    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField(help_text=STATUS_HELP)
    kind = serializers.CharField()
    levels = serializers.IntegerField()
    priority = serializers.CharField()
    deadline = UtcDateTimeField()
    remaining_seconds = serializers.SerializerMethodField()
    subspecialty = serializers.CharField()
    modalities = serializers.ListField(child=serializers.CharField())
    body_part = serializers.CharField()
    jurisdiction = serializers.CharField()
    study = StudyRefSerializer()
    quoted_cents = serializers.IntegerField()
    currency = serializers.CharField()
    audience = serializers.CharField()
    tier = serializers.IntegerField(help_text="0: preferred readers only; 1: everyone eligible.")
    assignee = RefSerializer(allow_null=True)
    flags = serializers.SerializerMethodField()
    created_at = UtcDateTimeField()
    links = serializers.SerializerMethodField()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_remaining_seconds(self, obj: ReadRequest) -> int | None:
        return remaining_seconds(obj)

    @extend_schema_field(FlagsSerializer)
    def get_flags(self, obj: ReadRequest) -> dict:
        return {"no_on_shift_reader": obj.no_on_shift_reader, "at_risk": obj.at_risk_at is not None,
                "late": obj.late_at is not None}

    @extend_schema_field(ReadRequestLinksSerializer)
    def get_links(self, obj: ReadRequest) -> dict:
        kwargs = {"public_id": obj.public_id}
        return {"detail": reverse("api_read_request_detail", kwargs=kwargs),
                "history": reverse("api_read_request_history", kwargs=kwargs),
                "candidates": reverse("api_read_request_candidates", kwargs=kwargs),
                "cancel": reverse("api_read_request_cancel", kwargs=kwargs)}


class ReadRequestDetailSerializer(ReadRequestSerializer):
    """The full request, with clinical history (reading it is audited as a read of patient data)."""

    clinical_history = serializers.CharField()
    reason_for_exam = serializers.CharField()
    special_instructions = serializers.CharField()
    comparison_studies = StudyRefSerializer(many=True, source="comparison_studies.all")
    preferred_radiologists = RefSerializer(many=True, source="preferred_radiologists.all")
    preferred_groups = RefSerializer(many=True, source="preferred_groups.all")
    widen_after_minutes = serializers.IntegerField(allow_null=True)
    direct_radiologist = RefSerializer(allow_null=True)
    direct_group = RefSerializer(allow_null=True)
    original_request = serializers.UUIDField(source="original_request.public_id", allow_null=True, default=None)
    posted_by = serializers.EmailField(source="posted_by.email", allow_null=True, default=None)
    cancel_reason = serializers.CharField()
    published_at = UtcDateTimeField(allow_null=True)
    widened_at = UtcDateTimeField(allow_null=True)
    assigned_at = UtcDateTimeField(allow_null=True)
    reported_at = UtcDateTimeField(allow_null=True)
    closed_at = UtcDateTimeField(allow_null=True)


class ReadRequestCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    """What a center posts. The study by public id or StudyInstanceUID (one of the two); other objects by public id."""

    study = serializers.CharField(required=False, help_text="The study's public id (or its StudyInstanceUID).")
    study_instance_uid = serializers.CharField(required=False, max_length=64)
    request_schema_rules = {"oneOf": [{"required": ["study"]}, {"required": ["study_instance_uid"]}]}
    # A peer review is posted by the platform's sampling, never by a center.
    kind = serializers.ChoiceField(choices=[c for c in Kind.choices if c[0] != Kind.PEER_REVIEW], default=Kind.PRIMARY)
    levels = serializers.ChoiceField(choices=[1, 2], default=1,
                                     help_text="2: a second reader signs (an overread) before the report is final.")
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE)
    subspecialty = serializers.ChoiceField(choices=Subspecialty.choices, required=False, allow_blank=True)
    clinical_history = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    reason_for_exam = serializers.CharField(required=False, allow_blank=True, max_length=500)
    special_instructions = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    comparison_studies = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=20,
                                               help_text="Public ids of the same patient's earlier studies here.")
    audience = serializers.ChoiceField(choices=Audience.choices, default=Audience.MARKETPLACE)
    preferred_radiologists = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=50,
                                                   help_text="Radiologist profile public ids.")
    preferred_groups = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=20,
                                             help_text="Radiology group public ids.")
    widen_after_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                                   max_value=7 * 24 * 60)
    direct_radiologist = serializers.UUIDField(required=False, allow_null=True)
    direct_group = serializers.UUIDField(required=False, allow_null=True)
    original_request = serializers.UUIDField(required=False, allow_null=True,
                                             help_text="The signed read an overread or second opinion reviews.")
    deadline = AwareDateTimeField(required=False, allow_null=True,
                                  help_text="Default: now plus the center's turnaround for the priority.")

    def validate(self, attrs):
        if bool(attrs.get("study")) == bool(attrs.get("study_instance_uid")):
            raise serializers.ValidationError({"study": ["Give the study's public id or its study_instance_uid "
                                                         "(one of the two)."]})
        return attrs


class StatusChangeSerializer(serializers.Serializer):
    to = serializers.CharField(source="to_status")
    actor = serializers.EmailField(source="actor.email", allow_null=True, default=None,
                                   help_text="Empty when the platform moved it (clock).")
    reason = serializers.CharField()
    at = UtcDateTimeField(source="created_at")
    locals()["from"] = serializers.CharField(source="from_status")  # "from" is a Python keyword


class StatusHistorySerializer(serializers.Serializer):
    results = StatusChangeSerializer(many=True)


class ReasonSerializer(RefuseUnknownFields, serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class OptionalReasonSerializer(RefuseUnknownFields, serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


# --- explain (candidates) --------------------------------------------------------------------------

class CandidateSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    radiologist = RefSerializer()
    group = serializers.CharField(source="group_name")
    rank_reasons = serializers.ListField(child=serializers.CharField())
    on_shift = serializers.BooleanField()
    available_from = UtcDateTimeField(allow_null=True, help_text="Next shift start, when not on shift now.")
    load = serializers.IntegerField()
    capacity = serializers.IntegerField()
    on_time_rate = serializers.FloatField(allow_null=True)


class ExcludedSerializer(serializers.Serializer):
    radiologist = RefSerializer()
    group = serializers.CharField(source="group_name")
    reasons = serializers.ListField(child=serializers.CharField())


class ExplainSerializer(serializers.Serializer):
    """Who may and should read the request now, ranked, and every reason for everyone left out."""

    read_request = serializers.UUIDField(source="read_request.public_id")
    at = UtcDateTimeField()
    candidates = CandidateSerializer(many=True)
    excluded = ExcludedSerializer(many=True)


# --- offers and assignments ------------------------------------------------------------------------

class OfferLinksSerializer(serializers.Serializer):
    claim = serializers.CharField()
    decline = serializers.CharField()


class OfferSerializer(serializers.Serializer):
    """An offer with the de-identified summary of its request (no patient data, no clinical history)."""

    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField(help_text="open, claimed, declined, withdrawn or expired.")
    read_request = serializers.UUIDField(source="read_request.public_id")
    modalities = serializers.ListField(child=serializers.CharField(), source="read_request.modalities")
    body_part = serializers.CharField(source="read_request.body_part")
    priority = serializers.CharField(source="read_request.priority")
    kind = serializers.CharField(source="read_request.kind")
    subspecialty = serializers.CharField(source="read_request.subspecialty")
    jurisdiction = serializers.CharField(source="read_request.jurisdiction")
    deadline = UtcDateTimeField(source="read_request.deadline")
    remaining_seconds = serializers.SerializerMethodField()
    quoted_cents = serializers.IntegerField(source="read_request.quoted_cents")
    currency = serializers.CharField(source="read_request.currency")
    center = serializers.CharField(source="read_request.center.name")
    number_of_images = serializers.IntegerField(source="read_request.study.number_of_instances")
    offered_at = UtcDateTimeField(source="created_at")
    links = serializers.SerializerMethodField()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_remaining_seconds(self, obj) -> int | None:
        return remaining_seconds(obj.read_request)

    @extend_schema_field(OfferLinksSerializer)
    def get_links(self, obj) -> dict:
        kwargs = {"public_id": obj.public_id}
        return {"claim": reverse("api_offer_claim", kwargs=kwargs),
                "decline": reverse("api_offer_decline", kwargs=kwargs)}


class AssignedReadSerializer(serializers.Serializer):
    """The read an assignee works on (its clinical history is in the read request's detail)."""

    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField(help_text=STATUS_HELP)
    kind = serializers.CharField()
    levels = serializers.IntegerField()
    priority = serializers.CharField()
    deadline = UtcDateTimeField()
    remaining_seconds = serializers.SerializerMethodField()
    modalities = serializers.ListField(child=serializers.CharField())
    body_part = serializers.CharField()
    jurisdiction = serializers.CharField()
    quoted_cents = serializers.IntegerField()
    currency = serializers.CharField()
    center = serializers.CharField(source="center.name")
    study = StudyRefSerializer()
    detail = serializers.SerializerMethodField()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_remaining_seconds(self, obj: ReadRequest) -> int | None:
        return remaining_seconds(obj)

    def get_detail(self, obj: ReadRequest) -> str:
        return reverse("api_read_request_detail", kwargs={"public_id": obj.public_id})


class AssignmentLinksSerializer(serializers.Serializer):
    viewer = serializers.CharField(help_text="Opens the study in the viewer.")
    start = serializers.CharField()
    release = serializers.CharField()


class AssignmentSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField(help_text="active, released, completed or cancelled.")
    claimed_at = UtcDateTimeField(source="created_at")
    started_at = UtcDateTimeField(allow_null=True)
    ended_at = UtcDateTimeField(allow_null=True)
    release_reason = serializers.CharField()
    read_request = AssignedReadSerializer()
    links = serializers.SerializerMethodField()

    @extend_schema_field(AssignmentLinksSerializer)
    def get_links(self, obj) -> dict:
        kwargs = {"public_id": obj.public_id}
        viewer = reverse("viewer_app_route", args=["viewer"])
        return {"viewer": f"{viewer}?StudyInstanceUIDs={obj.read_request.study.study_instance_uid}",
                "start": reverse("api_assignment_start", kwargs=kwargs),
                "release": reverse("api_assignment_release", kwargs=kwargs)}
