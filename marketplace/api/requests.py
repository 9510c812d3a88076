"""Read requests through the API: a center's list and posting, the detail, cancel, history and the explain view.

Every object a request names (study, comparison studies, readers, groups, the original read) is
looked up in the caller's scope first: another center's study is absent, so 404.
"""

from __future__ import annotations

import uuid

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile
from accounts.policy import Actor
from accounts.serializers import ErrorSerializer
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace import policy, selectors
from marketplace.models import Priority, ReadRequest, Status
from marketplace.serializers import (
    ExplainSerializer,
    ReadRequestCreateSerializer,
    ReadRequestDetailSerializer,
    ReadRequestSerializer,
    ReasonSerializer,
    StatusChangeSerializer,
    StatusHistorySerializer,
)
from marketplace.services.matching import match
from marketplace.services.requests import PostData, read_request_cancel, read_request_post
from studies import selectors as study_selectors
from studies.models import Study

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Repeat a post safely: the same key with the same body returns the first result (200); with "
                "another body, 422.")
STATUS_FILTERS = [*Status.values, "active"]
FILTERS = [
    OpenApiParameter("status", str, enum=STATUS_FILTERS, description="A state, or `active` (open, assigned, in "
                                                                     "progress)."),
    OpenApiParameter("priority", str, enum=list(Priority.values)),
    OpenApiParameter("modality", str, description="A DICOM modality code, e.g. CT."),
]


def _filter_value(params, name: str, allowed: list[str]) -> str:
    """A filter's value; one the schema does not list is refused (400 naming it), not read as "no filter"."""
    value = params.get(name)
    if value is None:
        return ""
    if value not in allowed:
        raise ApplicationError.for_field(name, f"Give one of: {', '.join(allowed)}.")
    return value


def _missing(field: str, message: str) -> ApplicationError:
    """A named object the caller cannot see: 404, with the field that named it."""
    return ApplicationError(message, code="not_found", fields={field: [message]}, status_code=404)


def _study(actor: Actor, center: Organization, *, field: str, public_id=None, uid: str = "") -> Study:
    studies = study_selectors.study_list(actor=actor).filter(organization_id=center.pk)
    study = None
    if public_id is not None:
        study = studies.filter(public_id=public_id).first()
    elif uid:
        study = studies.filter(study_instance_uid=uid).first()
    if study is None:
        raise _missing(field, "Study not found at your center.")
    return study


def _study_reference(actor: Actor, center: Organization, data: dict) -> Study:
    """``study`` is a public id (or a StudyInstanceUID); ``study_instance_uid`` is the DICOM UID."""
    if data.get("study_instance_uid"):
        return _study(actor, center, field="study_instance_uid", uid=data["study_instance_uid"])
    try:
        return _study(actor, center, field="study", public_id=uuid.UUID(data["study"]))
    except ValueError:
        return _study(actor, center, field="study", uid=data["study"])


def _profiles(field: str, ids: list) -> list[RadiologistProfile]:
    found = list(RadiologistProfile.objects.select_related("user").filter(public_id__in=ids, user__is_active=True))
    if len(found) != len(set(ids)):
        raise _missing(field, "Radiologist not found.")
    return found


def _groups(field: str, ids: list) -> list[Organization]:
    found = list(Organization.objects.filter(public_id__in=ids, kind=Organization.Kind.RADIOLOGY_GROUP))
    if len(found) != len(set(ids)):
        raise _missing(field, "Radiology group not found.")
    return found


def post_data(actor: Actor, center: Organization, data: dict) -> PostData:
    """The validated input with every reference resolved in the caller's scope."""
    study = _study_reference(actor, center, data)
    comparisons = [_study(actor, center, field="comparison_studies", public_id=pk)
                   for pk in dict.fromkeys(data.get("comparison_studies") or [])]
    original = None
    if data.get("original_request"):
        original = selectors.read_request_list(actor=actor, center=center).filter(
            public_id=data["original_request"]).first()
        if original is None:
            raise _missing("original_request", "The original read request was not found at your center.")
    direct_radiologist = data.get("direct_radiologist")
    direct_group = data.get("direct_group")
    return PostData(
        study=study, kind=data["kind"], priority=data["priority"], subspecialty=data.get("subspecialty") or "",
        clinical_history=data.get("clinical_history", ""), reason_for_exam=data.get("reason_for_exam", ""),
        special_instructions=data.get("special_instructions", ""), comparison_studies=comparisons,
        audience=data["audience"],
        preferred_radiologists=_profiles("preferred_radiologists", data.get("preferred_radiologists") or []),
        preferred_groups=_groups("preferred_groups", data.get("preferred_groups") or []),
        widen_after_minutes=data.get("widen_after_minutes"),
        direct_radiologist=_profiles("direct_radiologist", [direct_radiologist])[0] if direct_radiologist else None,
        direct_group=_groups("direct_group", [direct_group])[0] if direct_group else None,
        original_request=original, deadline=data.get("deadline"), levels=data["levels"])


def _idempotency_key(request) -> str | None:
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 200:
        raise ApplicationError.for_field("Idempotency-Key", "Use a key of at most 200 characters.")
    return key or None


def _with_related(read_request: ReadRequest) -> ReadRequest:
    """What the detail shows, in a fixed number of queries."""
    prefetch_related_objects([read_request], "comparison_studies", "preferred_radiologists__user", "preferred_groups")
    return read_request


class ReadRequestViewBase(ActorAPIView):
    queryset = ReadRequest.objects.none()  # names the model for the schema; requests use the selectors

    def get_scoped_queryset(self, actor):
        return selectors.read_request_list(actor=actor)

    def read_request(self, public_id) -> ReadRequest:
        return selectors.read_request_get(actor=self.actor, public_id=public_id)


@extend_schema(tags=["read-requests"])
class ReadRequestListView(ListModelMixin, ReadRequestViewBase):
    """The read requests of my centers, soonest deadline first; posting one for my active center."""

    serializer_class = ReadRequestSerializer

    def get_scoped_queryset(self, actor):
        params = self.request.query_params
        return selectors.read_request_filter(selectors.read_request_list(actor=actor),
                                             status=_filter_value(params, "status", STATUS_FILTERS),
                                             priority=_filter_value(params, "priority", list(Priority.values)),
                                             modality=params.get("modality", ""))

    @extend_schema(operation_id="read_requests_list", parameters=FILTERS,
                   responses={200: ReadRequestSerializer(many=True), **error_responses()})
    def get(self, request):
        return self.list(request)

    @extend_schema(operation_id="read_requests_create", request=ReadRequestCreateSerializer,
                   parameters=[IDEMPOTENCY_HEADER],
                   responses={201: ReadRequestDetailSerializer,
                              200: OpenApiResponse(ReadRequestDetailSerializer,
                                                   description="A replay of an Idempotency-Key: the first result."),
                              422: OpenApiResponse(ErrorSerializer,
                                                   description="The Idempotency-Key was used with another body."),
                              **error_responses(400, 404)})
    def post(self, request):
        """Ask for a read of one study of my active center: quote locked, deadline set, offers sent."""
        actor = self.actor
        center = actor.active_organization
        if center is None or not policy.can_post(actor, center):
            raise PermissionDenied("Only admins and technologists of an imaging center post read requests.")
        serializer = ReadRequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = _idempotency_key(request)
        read_request, created = read_request_post(
            actor=actor, center=center, data=post_data(actor, center, serializer.validated_data),
            idempotency_key=key, idempotency_body=dict(request.data) if key else None, request=request)
        return Response(ReadRequestDetailSerializer(_with_related(read_request)).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(tags=["read-requests"])
class ReadRequestDetailView(ReadRequestViewBase):
    """One read request in full, with its clinical history (audited as a read of patient data)."""

    serializer_class = ReadRequestDetailSerializer

    @extend_schema(operation_id="read_requests_retrieve", responses={200: ReadRequestDetailSerializer,
                                                                     **error_responses(404)})
    def get(self, request, public_id):
        read_request = self.read_request(public_id)
        audit_record(action="read_request.viewed", actor=self.actor.user, request=request,
                     organization_id=read_request.center_id, object_type="marketplace.readrequest",
                     object_id=str(read_request.public_id), phi_read=True,
                     extra={"study": read_request.study.study_instance_uid,
                            **({"api_key": self.actor.api_key.prefix} if self.actor.api_key else {})})
        return Response(ReadRequestDetailSerializer(_with_related(read_request)).data)


@extend_schema(tags=["read-requests"])
class ReadRequestCancelView(ReadRequestViewBase):
    serializer_class = ReadRequestDetailSerializer

    @extend_schema(operation_id="read_requests_cancel", request=ReasonSerializer,
                   responses={200: ReadRequestDetailSerializer,
                              409: OpenApiResponse(ErrorSerializer,
                                                   description="Already reported, closed, cancelled or expired."),
                              **error_responses(400, 404)})
    def post(self, request, public_id):
        """The center withdraws a request (admins and technologists); refused once a report was signed."""
        read_request = self.read_request(public_id)
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        read_request = read_request_cancel(actor=self.actor, read_request=read_request,
                                           reason=serializer.validated_data["reason"], request=request)
        return Response(ReadRequestDetailSerializer(_with_related(read_request)).data)


@extend_schema(tags=["read-requests"])
class ReadRequestHistoryView(ReadRequestViewBase):
    serializer_class = StatusHistorySerializer

    @extend_schema(operation_id="read_requests_history", responses={200: StatusHistorySerializer,
                                                                    **error_responses(404)})
    def get(self, request, public_id):
        """Every state the request went through: from, to, who (empty: the platform's clock), why, when."""
        changes = selectors.read_request_history(read_request=self.read_request(public_id))
        return Response({"results": StatusChangeSerializer(changes, many=True).data})


@extend_schema(tags=["read-requests"])
class ReadRequestCandidatesView(ReadRequestViewBase):
    serializer_class = ExplainSerializer

    @extend_schema(operation_id="read_requests_candidates", parameters=[
        OpenApiParameter("radiologist", uuid.UUID, description="A radiologist profile's public id: why (not) Dr X? "
                                                               "Answered even without a license here.")],
        responses={200: ExplainSerializer, **error_responses(400, 404)})
    def get(self, request, public_id):
        """The explain view: eligible readers ranked with their reasons, everyone else with why not (center
        people and platform operations)."""
        read_request = self.read_request(public_id)
        if not selectors.can_explain(self.actor, read_request):
            raise NotFound("Read request not found.")
        radiologist_ids = None
        if raw := request.query_params.get("radiologist"):
            try:
                wanted = uuid.UUID(raw)
            except ValueError:
                raise ApplicationError.for_field("radiologist", "Give a radiologist's public id (a UUID).") from None
            radiologist_ids = [_profiles("radiologist", [wanted])[0].pk]
        result = match(read_request, radiologist_ids=radiologist_ids)
        return Response(ExplainSerializer(result).data)
