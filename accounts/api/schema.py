"""OpenAPI pieces shared by the API: the Bearer auth scheme and the documented error responses."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse

from accounts.models import Role
from accounts.serializers import ErrorSerializer


class BearerSecretScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <secret>``: a personal token (rrt_...) or an organization key (rrk_...)."""

    target_class = "accounts.authentication.BearerSecretAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`rrt_...`, acts as its user) or an organization API key "
                           "(`rrk_...`, acts for its organization only, with the roles it was given).",
        }


class RoleFieldSchema(OpenApiSerializerFieldExtension):
    """Every role field (an invitation's ``role``, every ``roles`` list) refers to one ``Role`` enum."""

    target_class = "accounts.serializers.RoleField"

    def get_name(self) -> str:
        return "Role"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": list(Role.values),
                "description": "\n".join(f"* `{role.value}` - {role.label}" for role in Role)}


_ERROR_DESCRIPTIONS = {
    400: "Invalid input or a business rule refused it; `fields` names the offending inputs.",
    401: "Not authenticated, or the token or key is invalid, expired or revoked.",
    403: "Authenticated but not allowed (e.g. `permission_denied`, `mfa_enrollment_required`, "
         "`mfa_reauthentication_required`).",
    404: "Not found, or not visible to you (the two look the same).",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error format for the given status codes (401 and 403 apply to every operation)."""
    return {status: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[status])
            for status in sorted({401, 403, *statuses})}
