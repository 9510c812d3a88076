"""The center's "read locally" mark through the API (issue 18): an integration that knows a study was read at
the center says so, and no overflow rule posts it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from marketplace.services.overflow import study_mark_read_locally
from studies import selectors as study_selectors
from studies.models import Study


class ReadLocallySerializer(serializers.Serializer):
    study = serializers.CharField(help_text="The study's public id.")
    read_locally = serializers.BooleanField()
    marked_at = serializers.DateTimeField()


@extend_schema(tags=["studies"])
class StudyReadLocallyView(ActorAPIView):
    queryset = Study.objects.none()  # names the model for the schema; requests use get_scoped_queryset
    serializer_class = ReadLocallySerializer

    def get_scoped_queryset(self, actor):
        return study_selectors.study_list(actor=actor)

    @extend_schema(operation_id="studies_read_locally", request=None,
                   responses={200: ReadLocallySerializer, **error_responses(404)})
    def post(self, request, public_id):
        """Mark the study read locally (the center's admins and technologists): no overflow rule will post it.
        Marking again changes nothing."""
        study = self.get_object()
        mark = study_mark_read_locally(actor=self.actor, study=study, request=request)
        return Response(ReadLocallySerializer({"study": str(study.public_id), "read_locally": True,
                                               "marked_at": mark.marked_at}).data)
