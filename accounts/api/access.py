"""Who may join and who may call: an organization's invitations and its API keys (admins only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts import policy, selectors, services
from accounts.api.base import OrganizationRouteMixin
from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.api_filters import InvitationFilter
from accounts.mfa import require_fresh_mfa
from accounts.models import Invitation, OrganizationApiKey
from accounts.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
)


@extend_schema(tags=["invitations"])
class InvitationListView(OrganizationRouteMixin, ListModelMixin, ActorAPIView):
    """An organization's invitations (its admins only). Filter with ``?status=`` and ``?email=``."""

    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()  # names the model for the schema; requests use get_scoped_queryset
    filterset_class = InvitationFilter

    def get_scoped_queryset(self, actor):
        return selectors.invitation_list(actor=actor, organization=self.organization)

    @extend_schema(operation_id="organizations_invitations_list",
                   responses={200: InvitationSerializer(many=True), **error_responses(404)})
    def get(self, request, organization_id):
        return self.list(request)

    @extend_schema(operation_id="organizations_invitations_create", request=InvitationCreateSerializer,
                   responses={201: InvitationSerializer, **error_responses(400, 404)})
    def post(self, request, organization_id):
        """Invite someone by email with a role. The single-use link is emailed; it is never in a response."""
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, _token = services.invitation_create(actor=self.actor, organization=self.organization,
                                                        request=request, **serializer.validated_data)
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["invitations"])
class InvitationDetailView(OrganizationRouteMixin, ActorAPIView):
    serializer_class = InvitationSerializer
    queryset = Invitation.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.invitation_list(actor=actor, organization=self.organization)

    @extend_schema(operation_id="organizations_invitations_retrieve",
                   responses={200: InvitationSerializer, **error_responses(404)})
    def get(self, request, organization_id, public_id):
        """One invitation (never its token) with its status."""
        return Response(InvitationSerializer(self.get_object()).data)

    @extend_schema(operation_id="organizations_invitations_destroy", request=None,
                   responses={204: None, **error_responses(400, 404)})
    def delete(self, request, organization_id, public_id):
        """Revoke a pending invitation: its link stops working."""
        services.invitation_revoke(actor=self.actor, invitation=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["api-keys"])
class ApiKeyListView(OrganizationRouteMixin, ListModelMixin, ActorAPIView):
    """An organization's API keys for integrations (its admins only). Secrets are never listed."""

    serializer_class = ApiKeySerializer
    queryset = OrganizationApiKey.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.api_key_list(actor=actor, organization=self.organization)

    @extend_schema(operation_id="organizations_api_keys_list", responses={200: ApiKeySerializer(many=True),
                                                                          **error_responses(404)})
    def get(self, request, organization_id):
        return self.list(request)

    @extend_schema(operation_id="organizations_api_keys_create", request=ApiKeyCreateSerializer,
                   responses={201: ApiKeyCreatedSerializer, **error_responses(400, 404)})
    def post(self, request, organization_id):
        """Create a key; its secret is in this response only. Needs a fresh MFA check in this session."""
        actor, organization = self.actor, self.organization
        if policy.can_manage_api_keys(actor, organization):
            # Whoever may not create keys is refused by the service with a plain 403 instead.
            require_fresh_mfa(request)
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = services.api_key_create(actor=actor, organization=organization, request=request,
                                              **serializer.validated_data)
        return Response(ApiKeyCreatedSerializer(key, context={"secret": secret}).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(tags=["api-keys"])
class ApiKeyDetailView(OrganizationRouteMixin, ActorAPIView):
    serializer_class = ApiKeySerializer
    queryset = OrganizationApiKey.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.api_key_list(actor=actor, organization=self.organization)

    @extend_schema(operation_id="organizations_api_keys_retrieve",
                   responses={200: ApiKeySerializer, **error_responses(404)})
    def get(self, request, organization_id, public_id):
        """One key (never its secret), with when it was last used."""
        return Response(ApiKeySerializer(self.get_object()).data)

    @extend_schema(operation_id="organizations_api_keys_destroy", request=None,
                   responses={204: None, **error_responses(404)})
    def delete(self, request, organization_id, public_id):
        """Revoke a key: it is refused (401) from the next request on."""
        services.api_key_revoke(actor=self.actor, key=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
