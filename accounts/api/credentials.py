"""Credentialing API: my profile and items (onboarding), staff verification, directory, privileges, eligibility."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
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
from core.errors import ApplicationError, NotFound

KIND_PARAMETER = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(ITEM_SERIALIZERS))


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

    @extend_schema(operation_id="me_radiologist_profile_update", request=RadiologistProfileUpdateSerializer,
                   responses={200: RadiologistProfileSerializer, **error_responses(400, 404)})
    def patch(self, request):
        _require_radiologist(self.actor)
        serializer = RadiologistProfileUpdateSerializer(data=request.data)
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

    @extend_schema(operation_id="me_credentials_list")
    def get(self, request, kind):
        _require_radiologist(self.actor)
        output = ITEM_SERIALIZERS[_kind(kind)][0]
        sheet = selectors.credential_sheet_own(actor=self.actor)
        items = sheet.items[kind] if sheet else []
        return Response({"results": output(items, many=True).data})

    @extend_schema(operation_id="me_credentials_create")
    def post(self, request, kind):
        _require_radiologist(self.actor)
        output, input_ = ITEM_SERIALIZERS[_kind(kind)]
        serializer = input_(data=request.data)
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

    @extend_schema(operation_id="me_credentials_retrieve")
    def get(self, request, kind, public_id):
        return Response(ITEM_SERIALIZERS[kind][0](self._item(kind, public_id)).data)

    @extend_schema(operation_id="me_credentials_partial_update")
    def patch(self, request, kind, public_id):
        item = self._item(kind, public_id)
        output, input_ = ITEM_SERIALIZERS[kind]
        serializer = input_(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        item = services.credential_update(actor=self.actor, item=item, data=serializer.validated_data,
                                          request=request)
        return Response(output(item).data)

    @extend_schema(operation_id="me_credentials_destroy")
    def delete(self, request, kind, public_id):
        services.credential_delete(actor=self.actor, item=self._item(kind, public_id), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["credentials"], parameters=[KIND_PARAMETER])
class MyCredentialDocumentView(ActorAPIView):
    serializer_class = DocumentSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(operation_id="me_credentials_documents_create", request=DocumentUploadSerializer,
                   responses={201: DocumentSerializer, **error_responses(400, 404)})
    def post(self, request, kind, public_id):
        """Attach a PDF or image (checked by its bytes, size capped) to one of my items."""
        item = selectors.credential_get_own(actor=self.actor, kind=_kind(kind), public_id=public_id)
        serializer = DocumentUploadSerializer(data=request.data)
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
                                                                       **error_responses(404)})
    def get(self, request):
        kind = request.query_params.get("kind") or None
        items = selectors.verification_queue(actor=self.actor, kind=kind if kind in ITEM_MODELS else None)
        return Response({"results": PendingItemSerializer(items, many=True).data})


@extend_schema(tags=["verification"], parameters=[KIND_PARAMETER])
class CredentialDecisionView(ActorAPIView):
    serializer_class = DecisionSerializer

    @extend_schema(operation_id="credentials_decision_create", request=DecisionSerializer,
                   responses={200: ITEM_SERIALIZERS["license"][0], **error_responses(400, 403, 404)})
    def post(self, request, kind, public_id):
        """Verify (method + reference) or reject (reason) a pending item; never one's own."""
        if not cpolicy.is_verifier(self.actor):
            raise NotFound()
        item = selectors.credential_get(actor=self.actor, kind=_kind(kind), public_id=public_id)
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = services.credential_transition(obj=item, to=data["decision"], actor=self.actor,
                                              reason=data.get("reason", ""), method=data.get("method", ""),
                                              reference=data.get("reference", ""), request=request)
        return Response(ITEM_SERIALIZERS[kind][0](item).data)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes", "on"}


@extend_schema(tags=["directory"])
class RadiologistDirectoryView(ActorAPIView):
    """Search radiologists by licensed state, subspecialty, modality, language; ``can_read_now`` for my center."""

    serializer_class = DirectoryEntrySerializer
    queryset = RadiologistProfile.objects.none()  # names the model for the schema; requests use the selector

    @extend_schema(operation_id="radiologists_list", parameters=[
        OpenApiParameter("state", str), OpenApiParameter("subspecialty", str), OpenApiParameter("modality", str),
        OpenApiParameter("language", str), OpenApiParameter("can_read_now", bool)],
        responses={200: DirectoryEntrySerializer(many=True), **error_responses(404)})
    def get(self, request):
        params = request.query_params
        center = self.actor.active_organization
        can_read_now = _flag(params.get("can_read_now"))
        if can_read_now and not (center and cpolicy.is_center_member(self.actor, center)):
            raise ApplicationError.for_field("can_read_now", "Only people of an imaging center can ask this.")
        entries = selectors.directory_search(
            actor=self.actor, state=params.get("state", ""), subspecialty=params.get("subspecialty", ""),
            modality=params.get("modality", ""), language=params.get("language", ""), can_read_now=can_read_now,
            center=center if can_read_now else None)
        return Response({"results": DirectoryEntrySerializer(entries, many=True).data})


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

    @extend_schema(operation_id="organizations_privileges_list", responses={200: PrivilegeSerializer(many=True),
                                                                            **error_responses(404)})
    def get(self, request, organization_id):
        return Response({"results": PrivilegeSerializer(self.get_queryset(), many=True).data,
                         "requires_privileges": self.organization.requires_privileges})

    @extend_schema(operation_id="organizations_privileges_create", request=PrivilegeGrantSerializer,
                   responses={201: PrivilegeSerializer, **error_responses(400, 404)})
    def post(self, request, organization_id):
        serializer = PrivilegeGrantSerializer(data=request.data)
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

    @extend_schema(operation_id="organizations_privileges_change", request=PrivilegeChangeSerializer,
                   responses={200: PrivilegeSerializer, **error_responses(400, 404)})
    def post(self, request, organization_id, public_id):
        """Grant again, suspend or revoke (a reason is required to suspend or revoke)."""
        privilege = self.get_object()
        serializer = PrivilegeChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        privilege = services.privilege_transition(actor=self.actor, privilege=privilege,
                                                  to=serializer.validated_data["to"],
                                                  reason=serializer.validated_data.get("reason", ""),
                                                  request=request)
        return Response(PrivilegeSerializer(privilege).data)
