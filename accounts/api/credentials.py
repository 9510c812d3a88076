"""Credentialing API: my profile and items (onboarding), staff verification, directory, privileges, eligibility."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts.api.base import OrganizationRouteMixin
from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.credentials import policy as cpolicy
from accounts.credentials import selectors, services
from accounts.credentials.eligibility import eligible
from accounts.credentials.models import ITEM_MODELS, FacilityPrivilege, License, RadiologistProfile
from accounts.credentials.serializers import (
    ITEM_SERIALIZERS,
    DecisionSerializer,
    DirectoryEntrySerializer,
    DocumentSerializer,
    DocumentUploadSerializer,
    EligibilitySerializer,
    PendingItemSerializer,
    PrivilegeChangeSerializer,
    PrivilegeGrantSerializer,
    PrivilegeSerializer,
    PublicProfileSerializer,
    RadiologistProfileSerializer,
    RadiologistProfileUpdateSerializer,
)
from core.api_input import refusing_unknown_fields
from core.errors import ApplicationError, NotFound

KIND_PARAMETER = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(ITEM_SERIALIZERS))
# What each {kind} takes and answers. OpenAPI cannot tie a body's shape to a path parameter: the schema says
# "one of these", and the input of another kind is refused 400 by its unknown or missing fields.
ITEM_INPUTS = {kind: refusing_unknown_fields(pair[1]) for kind, pair in ITEM_SERIALIZERS.items()}


def _one_of_kinds(name: str, position: int, **kwargs) -> PolymorphicProxySerializer:
    return PolymorphicProxySerializer(component_name=name, resource_type_field_name=None, **kwargs,
                                      serializers=[pair[position] for pair in ITEM_SERIALIZERS.values()])


ITEM_OUT = _one_of_kinds("CredentialItem", 0)
ITEM_IN = _one_of_kinds("CredentialItemInput", 1)
ITEM_LIST = inline_serializer("CredentialItemList", {"results": _one_of_kinds("CredentialItem", 0, many=True)})
PRIVILEGE_LIST = inline_serializer("PrivilegeList", {
    "results": PrivilegeSerializer(many=True),
    "requires_privileges": serializers.BooleanField(help_text="Whether this center reads only with privileges."),
})


def _require_radiologist(actor) -> None:
    if not cpolicy.is_radiologist(actor):
        raise NotFound()


def _kind(kind: str) -> str:
    if kind not in ITEM_SERIALIZERS:
        raise NotFound()
    return kind


@extend_schema(tags=["credentials"])
class MyRadiologistProfileView(ActorAPIView):
    """My radiologist profile (created on first use)."""

    serializer_class = RadiologistProfileSerializer

    @extend_schema(operation_id="me_radiologist_profile_retrieve", responses={200: RadiologistProfileSerializer,
                                                                              **error_responses(404)})
    def get(self, request):
        return Response(RadiologistProfileSerializer(services.radiologist_profile_ensure(actor=self.actor)).data)

    @extend_schema(operation_id="me_radiologist_profile_update",
                   request=refusing_unknown_fields(RadiologistProfileUpdateSerializer),
                   responses={200: RadiologistProfileSerializer, **error_responses(400, 404)})
    def patch(self, request):
        _require_radiologist(self.actor)
        serializer = refusing_unknown_fields(RadiologistProfileUpdateSerializer)(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = services.radiologist_profile_update(actor=self.actor, data=serializer.validated_data,
                                                      request=request)
        return Response(RadiologistProfileSerializer(profile).data)


@extend_schema(tags=["credentials"])
class MyProfileSubmitView(ActorAPIView):
    serializer_class = RadiologistProfileSerializer

    @extend_schema(operation_id="me_radiologist_profile_submit", request=None,
                   responses={200: RadiologistProfileSerializer, **error_responses(400, 404)})
    def post(self, request):
        """Submit the profile for verification (onboarding's last step)."""
        return Response(RadiologistProfileSerializer(services.onboarding_submit(actor=self.actor,
                                                                                request=request)).data)


@extend_schema(tags=["credentials"], parameters=[KIND_PARAMETER])
class MyCredentialListView(ActorAPIView):
    """My items of one kind (license, board, insurance, mqsa), and adding one (it starts pending)."""

    serializer_class = ITEM_SERIALIZERS["license"][0]

    @extend_schema(operation_id="me_credentials_list", responses={200: ITEM_LIST})
    def get(self, request, kind):
        _require_radiologist(self.actor)
        output = ITEM_SERIALIZERS[_kind(kind)][0]
        sheet = selectors.credential_sheet_own(actor=self.actor)
        items = sheet.items[kind] if sheet else []
        return Response({"results": output(items, many=True).data})

    @extend_schema(operation_id="me_credentials_create", request=ITEM_IN, responses={201: ITEM_OUT})
    def post(self, request, kind):
        _require_radiologist(self.actor)
        output = ITEM_SERIALIZERS[_kind(kind)][0]
        serializer = ITEM_INPUTS[kind](data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.credential_create(actor=self.actor, kind=kind, data=serializer.validated_data,
                                          request=request)
        return Response(output(item).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["credentials"], parameters=[KIND_PARAMETER])
class MyCredentialDetailView(ActorAPIView):
    """One of my items: read, change (a verified item's key fields → pending again), withdraw."""

    serializer_class = ITEM_SERIALIZERS["license"][0]

    def _item(self, kind, public_id):
        return selectors.credential_get_own(actor=self.actor, kind=_kind(kind), public_id=public_id)

    @extend_schema(operation_id="me_credentials_retrieve", responses={200: ITEM_OUT})
    def get(self, request, kind, public_id):
        item = self._item(kind, public_id)  # first: an unknown kind is 404 before anything is looked up by it
        return Response(ITEM_SERIALIZERS[kind][0](item).data)

    @extend_schema(operation_id="me_credentials_partial_update", request=ITEM_IN, responses={200: ITEM_OUT})
    def patch(self, request, kind, public_id):
        item = self._item(kind, public_id)
        output = ITEM_SERIALIZERS[kind][0]
        serializer = ITEM_INPUTS[kind](data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        item = services.credential_update(actor=self.actor, item=item, data=serializer.validated_data,
                                          request=request)
        return Response(output(item).data)

    @extend_schema(operation_id="me_credentials_destroy", request=None, responses={204: None})
    def delete(self, request, kind, public_id):
        services.credential_delete(actor=self.actor, item=self._item(kind, public_id), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["credentials"], parameters=[KIND_PARAMETER])
class MyCredentialDocumentView(ActorAPIView):
    serializer_class = DocumentSerializer
    parser_classes = [MultiPartParser]  # a file, as multipart/form-data

    @extend_schema(operation_id="me_credentials_documents_create",
                   request=refusing_unknown_fields(DocumentUploadSerializer),
                   responses={201: DocumentSerializer, **error_responses(400, 404)})
    def post(self, request, kind, public_id):
        """Attach a PDF or image (checked by its bytes, size capped) to one of my items."""
        item = selectors.credential_get_own(actor=self.actor, kind=_kind(kind), public_id=public_id)
        serializer = refusing_unknown_fields(DocumentUploadSerializer)(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.credential_document_upload(actor=self.actor, item=item,
                                                       upload=serializer.validated_data["file"], request=request)
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["verification"])
class VerificationQueueView(ActorAPIView):
    """Pending items of every radiologist, oldest first (platform staff)."""

    serializer_class = PendingItemSerializer
    queryset = License.objects.none()  # names a model for the schema; requests use the selector

    @extend_schema(operation_id="credentials_pending_list", responses={200: PendingItemSerializer(many=True),
                                                                       **error_responses(404)},
                   parameters=[OpenApiParameter("kind", str, enum=list(ITEM_MODELS), description="Only this kind.")])
    def get(self, request):
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in ITEM_MODELS:
            raise ApplicationError.for_field("kind", f"Give one of: {', '.join(ITEM_MODELS)}.")
        items = selectors.verification_queue(actor=self.actor, kind=kind)
        return self.get_paginated_response(PendingItemSerializer(self.paginate_queryset(items), many=True).data)


@extend_schema(tags=["verification"], parameters=[KIND_PARAMETER])
class CredentialDecisionView(ActorAPIView):
    serializer_class = DecisionSerializer

    @extend_schema(operation_id="credentials_decision_create", request=refusing_unknown_fields(DecisionSerializer),
                   responses={200: ITEM_OUT, **error_responses(400, 403, 404)})
    def post(self, request, kind, public_id):
        """Verify (method + reference) or reject (reason) a pending item; never one's own."""
        if not cpolicy.is_verifier(self.actor):
            raise NotFound()
        item = selectors.credential_get(actor=self.actor, kind=_kind(kind), public_id=public_id)
        serializer = refusing_unknown_fields(DecisionSerializer)(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = services.credential_transition(obj=item, to=data["decision"], actor=self.actor,
                                              reason=data.get("reason", ""), method=data.get("method", ""),
                                              reference=data.get("reference", ""), request=request)
        return Response(ITEM_SERIALIZERS[kind][0](item).data)


FLAG_TRUE, FLAG_FALSE = ["true", "1", "yes", "on"], ["false", "0", "no", "off"]  # "on": what a checkbox sends


def _flag(params, name: str) -> bool:
    """A yes/no query parameter in one of the spellings its schema lists (absent: no); others are refused."""
    value = params.get(name)
    if value is not None and value not in FLAG_TRUE + FLAG_FALSE:
        raise ApplicationError.for_field(name, "Give true or false.")
    return value in FLAG_TRUE


@extend_schema(tags=["directory"])
class RadiologistDirectoryView(ActorAPIView):
    """Search radiologists by licensed state, subspecialty, modality, language; ``can_read_now`` for my center."""

    serializer_class = DirectoryEntrySerializer
    queryset = RadiologistProfile.objects.none()  # names the model for the schema; requests use the selector

    @extend_schema(operation_id="radiologists_list", parameters=[
        OpenApiParameter("state", str), OpenApiParameter("subspecialty", str), OpenApiParameter("modality", str),
        OpenApiParameter("language", str), OpenApiParameter("can_read_now", str, enum=FLAG_TRUE + FLAG_FALSE)],
        responses={200: DirectoryEntrySerializer(many=True), **error_responses(404)})
    def get(self, request):
        params = request.query_params
        center = self.actor.active_organization
        can_read_now = _flag(params, "can_read_now")
        if can_read_now and not (center and cpolicy.is_center_member(self.actor, center)):
            message = "Only people of an imaging center can ask this."  # who asks, not what: 403
            raise ApplicationError(message, code="permission_denied", fields={"can_read_now": [message]},
                                   status_code=403)
        entries = selectors.directory_search(
            actor=self.actor, state=params.get("state", ""), subspecialty=params.get("subspecialty", ""),
            modality=params.get("modality", ""), language=params.get("language", ""), can_read_now=can_read_now,
            center=center if can_read_now else None)
        return self.get_paginated_response(DirectoryEntrySerializer(self.paginate_queryset(entries), many=True).data)


@extend_schema(tags=["directory"])
class RadiologistDetailView(ActorAPIView):
    """A radiologist's public profile: verified, current items only (no documents, no license numbers)."""

    serializer_class = PublicProfileSerializer

    @extend_schema(operation_id="radiologists_retrieve", responses={200: PublicProfileSerializer,
                                                                    **error_responses(404)})
    def get(self, request, public_id):
        return Response(PublicProfileSerializer(selectors.public_profile_get(actor=self.actor,
                                                                             public_id=public_id)).data)


@extend_schema(tags=["directory"])
class RadiologistEligibilityView(ActorAPIView):
    """May this radiologist read for my (active) center: jurisdiction from the center or ``jurisdiction``."""

    serializer_class = EligibilitySerializer

    @extend_schema(operation_id="radiologists_eligibility", parameters=[
        OpenApiParameter("modalities", str, description="comma-separated DICOM codes, e.g. CT,MG"),
        OpenApiParameter("subspecialty", str), OpenApiParameter("jurisdiction", str),
        OpenApiParameter("at", str, description="ISO 8601 moment (default now)")],
        responses={200: EligibilitySerializer, **error_responses(400, 404)})
    def get(self, request, public_id):
        center = self.actor.active_organization
        if center is None or not cpolicy.is_center_member(self.actor, center):
            raise NotFound()
        profile = selectors.public_profile_get(actor=self.actor, public_id=public_id).profile
        params = request.query_params
        at = timezone.now()
        if params.get("at"):
            try:
                at = datetime.fromisoformat(params["at"])
            except ValueError:
                raise ApplicationError.for_field("at", "Use an ISO 8601 date and time.") from None
            if at.tzinfo is None:
                raise ApplicationError.for_field("at", "Give a time zone offset, e.g. 2026-10-02T08:00:00Z.")
        modalities = [m for m in (params.get("modalities") or "").split(",") if m.strip()]
        result = eligible(profile, jurisdiction=params.get("jurisdiction") or center.jurisdiction,
                          modalities=modalities, subspecialty=params.get("subspecialty") or None, center=center,
                          at=at)
        return Response(EligibilitySerializer(result).data)


@extend_schema(tags=["privileges"])
class PrivilegeListView(OrganizationRouteMixin, ActorAPIView):
    """The privileges a center granted (its admins), and granting them."""

    serializer_class = PrivilegeSerializer
    queryset = FacilityPrivilege.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.privilege_list(actor=actor, center=self.organization)

    @extend_schema(operation_id="organizations_privileges_list", responses={200: PRIVILEGE_LIST,
                                                                            **error_responses(404)})
    def get(self, request, organization_id):
        return Response({"results": PrivilegeSerializer(self.get_queryset(), many=True).data,
                         "requires_privileges": self.organization.requires_privileges})

    @extend_schema(operation_id="organizations_privileges_create",
                   request=refusing_unknown_fields(PrivilegeGrantSerializer),
                   responses={201: PrivilegeSerializer, **error_responses(400, 404)})
    def post(self, request, organization_id):
        serializer = refusing_unknown_fields(PrivilegeGrantSerializer)(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        profile = selectors.radiologist_get_for_center(actor=self.actor, center=self.organization,
                                                       public_id=data["radiologist"])
        privilege = services.privilege_grant(actor=self.actor, center=self.organization, radiologist=profile,
                                             granted_on=data.get("granted_on"), expires_on=data.get("expires_on"),
                                             request=request)
        return Response(PrivilegeSerializer(privilege).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["privileges"])
class PrivilegeDetailView(OrganizationRouteMixin, ActorAPIView):
    serializer_class = PrivilegeSerializer
    queryset = FacilityPrivilege.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.privilege_list(actor=actor, center=self.organization)

    @extend_schema(operation_id="organizations_privileges_retrieve", responses={200: PrivilegeSerializer,
                                                                                **error_responses(404)})
    def get(self, request, organization_id, public_id):
        return Response(PrivilegeSerializer(self.get_object()).data)

    @extend_schema(operation_id="organizations_privileges_change",
                   request=refusing_unknown_fields(PrivilegeChangeSerializer),
                   responses={200: PrivilegeSerializer, **error_responses(400, 404)})
    def post(self, request, organization_id, public_id):
        """Grant again, suspend or revoke (a reason is required to suspend or revoke)."""
        privilege = self.get_object()
        serializer = refusing_unknown_fields(PrivilegeChangeSerializer)(data=request.data)
        serializer.is_valid(raise_exception=True)
        privilege = services.privilege_transition(actor=self.actor, privilege=privilege,
                                                  to=serializer.validated_data["to"],
                                                  reason=serializer.validated_data.get("reason", ""),
                                                  request=request)
        return Response(PrivilegeSerializer(privilege).data)
