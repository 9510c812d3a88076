"""API shapes for accounts. Thin: they describe input and output; services validate the rules.

Output serializers never expose secrets or their hashes: a token or key secret appears only in
the ``*Created`` shapes, in the one response that creates it.
"""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import (
    TIME_ZONE_CHOICES,
    Invitation,
    Membership,
    Organization,
    OrganizationApiKey,
    PersonalApiToken,
    Role,
    User,
)
from core.api_input import RefuseUnknownFields

TIME_ZONE_HELP = "IANA time zone name, e.g. America/Chicago."


class RoleField(serializers.ChoiceField):
    """One membership role. The schema shows it as the one shared ``Role`` enum (see accounts/api/schema.py)."""

    def __init__(self, **kwargs):
        super().__init__(choices=Role.choices, **kwargs)


def role_list_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=RoleField(), **kwargs)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. not_found, invalid.")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   help_text="Offending input fields and their messages.")


class ErrorSerializer(serializers.Serializer):
    """The one error format of the API."""

    error = ErrorDetailSerializer()


# --- organizations and memberships -----------------------------------------------------------

class OrganizationSerializer(serializers.ModelSerializer):
    jurisdiction = serializers.CharField(read_only=True, help_text="Country, or country-region, e.g. US-TX.")
    time_zone = serializers.CharField(read_only=True, help_text=TIME_ZONE_HELP)

    class Meta:
        model = Organization
        fields = ["public_id", "name", "legal_name", "slug", "kind", "country", "region", "jurisdiction",
                  "time_zone"]
        read_only_fields = fields


class MyMembershipSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(read_only=True)
    roles = role_list_field(read_only=True)

    class Meta:
        model = Membership
        fields = ["public_id", "organization", "roles", "created_at"]
        read_only_fields = fields


class MemberUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["public_id", "email", "full_name"]
        read_only_fields = fields


class MemberSerializer(serializers.ModelSerializer):
    user = MemberUserSerializer(read_only=True)
    roles = role_list_field(read_only=True)

    class Meta:
        model = Membership
        fields = ["public_id", "user", "roles", "created_at", "updated_at"]
        read_only_fields = fields


class MemberRolesSerializer(RefuseUnknownFields, serializers.Serializer):
    roles = role_list_field(help_text="The member's complete new set of roles.")


# --- me ---------------------------------------------------------------------------------------

class MeUserSerializer(serializers.Serializer):
    """A person calling the API: who they are and where they belong."""

    principal = serializers.SerializerMethodField(help_text='Always "user".')
    public_id = serializers.UUIDField(source="user.public_id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    kind = serializers.ChoiceField(source="user.kind", choices=User.Kind.choices, read_only=True)
    time_zone = serializers.CharField(source="user.time_zone", read_only=True, help_text=TIME_ZONE_HELP)
    is_platform_staff = serializers.BooleanField(read_only=True)
    mfa_enrolled = serializers.BooleanField(read_only=True)
    active_organization = OrganizationSerializer(read_only=True, allow_null=True)
    memberships = MyMembershipSerializer(many=True, read_only=True)

    def get_principal(self, obj) -> str:
        return "user"


class MeApiKeySerializer(serializers.ModelSerializer):
    """An organization API key calling the API: which organization it acts for, and as what."""

    principal = serializers.SerializerMethodField(help_text='Always "api_key".')
    organization = OrganizationSerializer(read_only=True)
    roles = role_list_field(read_only=True)

    class Meta:
        model = OrganizationApiKey
        fields = ["principal", "public_id", "name", "prefix", "roles", "organization", "created_at", "last_used_at"]
        read_only_fields = fields

    def get_principal(self, obj) -> str:
        return "api_key"


class MeUpdateSerializer(RefuseUnknownFields, serializers.Serializer):
    full_name = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=True)
    time_zone = serializers.ChoiceField(choices=TIME_ZONE_CHOICES, required=False, help_text=TIME_ZONE_HELP)


# --- invitations ------------------------------------------------------------------------------

INVITATION_STATUSES = [("pending", "Pending"), ("accepted", "Accepted"), ("revoked", "Revoked"),
                       ("expired", "Expired")]


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation as its organization's admins see it; the token exists only in the email."""

    role = RoleField(read_only=True)
    status = serializers.ChoiceField(choices=INVITATION_STATUSES, read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True)

    class Meta:
        model = Invitation
        fields = ["public_id", "email", "role", "status", "invited_by", "created_at", "expires_at", "accepted_at",
                  "revoked_at"]
        read_only_fields = fields


class InvitationCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    email = serializers.EmailField()
    role = RoleField()


# --- API credentials --------------------------------------------------------------------------

class ApiKeySerializer(serializers.ModelSerializer):
    roles = role_list_field(read_only=True)

    class Meta:
        model = OrganizationApiKey
        fields = ["public_id", "name", "prefix", "roles", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """The response to creating a key: the only time its secret is ever shown."""

    secret = serializers.SerializerMethodField(help_text="Shown in this response only; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class ApiKeyCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the key is for, e.g. the PACS gateway.")
    roles = role_list_field(required=False, help_text="technologist (default), viewer and/or finance.")


class PersonalTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = PersonalApiToken
        fields = ["public_id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class PersonalTokenCreatedSerializer(PersonalTokenSerializer):
    """The response to creating a token: the only time its secret is ever shown."""

    secret = serializers.SerializerMethodField(help_text="Shown in this response only; store it now.")

    class Meta(PersonalTokenSerializer.Meta):
        fields = [*PersonalTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class PersonalTokenCreateSerializer(RefuseUnknownFields, serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(required=False, allow_null=True,
                                               help_text="1 to 365; leave out for a token without expiry.")
