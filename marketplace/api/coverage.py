"""GET /api/v1/coverage/: the active center's coverage map (its admins and viewers, or their API keys)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.credentials.vocab import Modality, Subspecialty
from accounts.models import Organization
from core.errors import NotFound
from marketplace.coverage import coverage_map


class CoverageHourSerializer(serializers.Serializer):
    hour = serializers.IntegerField(help_text="The local hour (0–23) in the center's zone.")
    starts_at = serializers.DateTimeField(help_text="UTC.")
    ends_at = serializers.DateTimeField(help_text="UTC (two hours later on the night the clock falls back).")
    count = serializers.IntegerField(allow_null=True, help_text="Radiologists eligible and on shift for the whole "
                                                                "hour; null for an hour the clock skips.")
    level = serializers.CharField(help_text="gap (0), thin (1), few (2–3), many (4+), none (skipped hour).")
    radiologists = serializers.ListField(child=serializers.CharField(), help_text="Who covers it (at most 12 names).")


class CoverageDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="The center's local date.")
    hours = CoverageHourSerializer(many=True)


class CoverageMapSerializer(serializers.Serializer):
    jurisdiction = serializers.CharField()
    time_zone = serializers.CharField(help_text="The center's zone: days and hours are local to it.")
    modality = serializers.CharField()
    subspecialty = serializers.CharField(help_text="Empty: any.")
    modalities = serializers.ListField(child=serializers.CharField(), help_text="The center's, from its studies.")
    days = CoverageDaySerializer(many=True, help_text="7 days × 24 hours from today.")
    gaps = serializers.ListField(child=serializers.CharField(),
                                 help_text='Hours without a reader, merged: "Sat 02:00–06:00: no MR reader licensed '
                                           'in US-CO".')
    thin_spots = serializers.ListField(child=serializers.CharField(), help_text="Hours with one reader, merged.")


@extend_schema(tags=["coverage"])
class CoverageView(ActorAPIView):
    queryset = Organization.objects.none()  # names a model for the schema; the center is the actor's

    def get_scoped_queryset(self, actor):
        return Organization.objects.none()

    @extend_schema(operation_id="coverage_retrieve", parameters=[
        OpenApiParameter("modality", str, enum=Modality.values,
                         description="A DICOM modality code (default: the center's first)."),
        OpenApiParameter("subspecialty", str, enum=Subspecialty.values,
                         description="A subspecialty code (default: any)."),
    ], responses={200: CoverageMapSerializer, **error_responses(400, 404)})
    def get(self, request):
        """How many radiologists could read the center's studies of a modality, and are on shift, hour by hour
        for the next 7 days in the center's zone, with the gaps (nobody) and thin spots (one reader) in words."""
        center = self.actor.active_organization
        if center is None:
            raise NotFound()
        data = coverage_map(actor=self.actor, center=center, modality=request.query_params.get("modality"),
                            subspecialty=request.query_params.get("subspecialty"))
        return Response(CoverageMapSerializer(data).data)
