"""Organizations and their members: list, look up, switch the active one, change roles, remove."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.mixins import ListModelMixin, RetrieveModelMixin
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.base import OrganizationRouteMixin, me_data
from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.models import Membership, Organization
from accounts.serializers import MemberRolesSerializer, MemberSerializer, MeUserSerializer, OrganizationSerializer
from core.errors import PermissionDenied


@extend_schema(tags=["organizations"])
class OrganizationListView(ListModelMixin, ActorAPIView):
    """The organizations I belong to (platform staff: every organization)."""

    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()  # names the model for the schema; requests use get_scoped_queryset

    def get_scoped_queryset(self, actor):
        return selectors.organization_list(actor=actor)

    @extend_schema(operation_id="organizations_list", responses={200: OrganizationSerializer(many=True),
                                                                 **error_responses()})
    def get(self, request):
        return self.list(request)


@extend_schema(tags=["organizations"])
class OrganizationDetailView(RetrieveModelMixin, ActorAPIView):
    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.organization_list(actor=actor)

    @extend_schema(operation_id="organizations_retrieve", responses={200: OrganizationSerializer,
                                                                     **error_responses(404)})
    def get(self, request, public_id):
        return self.retrieve(request)


@extend_schema(tags=["organizations"])
class OrganizationActivateView(ActorAPIView):
    queryset = Organization.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.organization_list(actor=actor)

    @extend_schema(operation_id="organizations_activate", request=None,
                   responses={200: MeUserSerializer, **error_responses(404)})
    def post(self, request, public_id):
        """Make one of my organizations the active one for this browser session (session sign-in only)."""
        if not isinstance(request.successful_authenticator, SessionAuthentication):
            raise PermissionDenied("Only a browser session has an active organization; a token or key has none.",
                                   code="session_required")
        services.organization_switch_active(actor=self.actor, request=request, organization=self.get_object())
        return Response(me_data(self.actor))


@extend_schema(tags=["members"])
class MemberListView(OrganizationRouteMixin, ListModelMixin, ActorAPIView):
    """The active members of an organization, with their roles (visible to its members)."""

    serializer_class = MemberSerializer
    queryset = Membership.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.membership_list(actor=actor, organization=self.organization)

    @extend_schema(operation_id="organizations_members_list", responses={200: MemberSerializer(many=True),
                                                                         **error_responses(404)})
    def get(self, request, organization_id):
        return self.list(request)


@extend_schema(tags=["members"])
class MemberDetailView(OrganizationRouteMixin, RetrieveModelMixin, ActorAPIView):
    """One member. Only the organization's admins change roles or remove members."""

    serializer_class = MemberSerializer
    queryset = Membership.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.membership_list(actor=actor, organization=self.organization)

    @extend_schema(operation_id="organizations_members_retrieve", responses={200: MemberSerializer,
                                                                             **error_responses(404)})
    def get(self, request, organization_id, public_id):
        return self.retrieve(request)

    @extend_schema(operation_id="organizations_members_partial_update", request=MemberRolesSerializer,
                   responses={200: MemberSerializer, **error_responses(400, 404)})
    def patch(self, request, organization_id, public_id):
        """Replace the member's roles (admins only; an organization always keeps one admin)."""
        membership = self.get_object()
        serializer = MemberRolesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_set_roles(actor=self.actor, membership=membership,
                                                   roles=serializer.validated_data["roles"], request=request)
        return Response(MemberSerializer(membership).data)

    @extend_schema(operation_id="organizations_members_destroy", request=None,
                   responses={204: None, **error_responses(400, 404)})
    def delete(self, request, organization_id, public_id):
        """Remove the member (admins only; the last admin cannot be removed)."""
        services.membership_deactivate(actor=self.actor, membership=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
