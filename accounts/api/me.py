"""The caller: /me/, my memberships, my personal API tokens."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api.base import me_data
from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.mfa import has_totp, require_fresh_mfa
from accounts.models import Membership, PersonalApiToken
from accounts.serializers import (
    MeApiKeySerializer,
    MeUpdateSerializer,
    MeUserSerializer,
    MyMembershipSerializer,
    PersonalTokenCreatedSerializer,
    PersonalTokenCreateSerializer,
    PersonalTokenSerializer,
)

ME_RESPONSE = PolymorphicProxySerializer(
    component_name="Me",
    serializers={"user": MeUserSerializer, "api_key": MeApiKeySerializer},
    resource_type_field_name="principal",
)


@extend_schema(tags=["me"])
class MeView(ActorAPIView):
    """Who is calling: a person (with memberships and active organization) or an organization API key."""

    serializer_class = MeUserSerializer

    @extend_schema(operation_id="me_retrieve", responses={200: ME_RESPONSE, **error_responses()})
    def get(self, request):
        return Response(me_data(self.actor))

    @extend_schema(operation_id="me_partial_update", request=MeUpdateSerializer,
                   responses={200: MeUserSerializer, **error_responses(400)})
    def patch(self, request):
        """Change your display name and/or time zone (nothing else can be changed here)."""
        serializer = MeUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_update_profile(actor=self.actor, request=request, **serializer.validated_data)
        return Response(me_data(self.actor))


@extend_schema(tags=["me"])
class MyMembershipListView(ListModelMixin, ActorAPIView):
    """My active memberships, one per organization, with my roles there."""

    serializer_class = MyMembershipSerializer
    queryset = Membership.objects.none()  # names the model for the schema; requests use get_scoped_queryset

    def get_scoped_queryset(self, actor):
        return selectors.my_memberships(actor=actor)

    @extend_schema(operation_id="memberships_list", responses={200: MyMembershipSerializer(many=True),
                                                               **error_responses()})
    def get(self, request):
        return self.list(request)


@extend_schema(tags=["tokens"])
class PersonalTokenListView(ListModelMixin, ActorAPIView):
    """My personal API tokens (they act as me). A new token's secret is shown once, on creation."""

    serializer_class = PersonalTokenSerializer
    queryset = PersonalApiToken.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.personal_token_list(actor=actor)

    @extend_schema(operation_id="tokens_list", responses={200: PersonalTokenSerializer(many=True),
                                                          **error_responses()})
    def get(self, request):
        return self.list(request)

    @extend_schema(operation_id="tokens_create", request=PersonalTokenCreateSerializer,
                   responses={201: PersonalTokenCreatedSerializer, **error_responses(400)})
    def post(self, request):
        """Create a token. Users with TOTP must have passed an MFA check in this session recently."""
        actor = self.actor
        if actor.user is not None and has_totp(actor.user):
            require_fresh_mfa(request)
        serializer = PersonalTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = services.personal_token_create(actor=actor, request=request, **serializer.validated_data)
        return Response(PersonalTokenCreatedSerializer(token, context={"secret": secret}).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(tags=["tokens"])
class PersonalTokenDetailView(ActorAPIView):
    serializer_class = PersonalTokenSerializer
    queryset = PersonalApiToken.objects.none()  # names the model for the schema

    def get_scoped_queryset(self, actor):
        return selectors.personal_token_list(actor=actor)

    @extend_schema(operation_id="tokens_retrieve", responses={200: PersonalTokenSerializer, **error_responses(404)})
    def get(self, request, public_id):
        """One of my tokens (never its secret), with when it was last used."""
        return Response(PersonalTokenSerializer(self.get_object()).data)

    @extend_schema(operation_id="tokens_destroy", request=None, responses={204: None, **error_responses(404)})
    def delete(self, request, public_id):
        """Revoke one of my tokens; it stops working at once."""
        services.personal_token_revoke(actor=self.actor, token=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
