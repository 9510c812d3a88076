"""OpenAPI pieces shared by the API: the Bearer auth scheme and the documented error responses.

The error answers every operation of a given shape can give are added by core.schema.declare_common_errors;
``error_responses`` is for those a view's own rules add (e.g. 400 on a bodiless action, 409)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse

from accounts.models import Role
from accounts.serializers import ErrorSerializer
from core.schema import ERROR_DESCRIPTIONS, RefuseUnknownFieldsSchema  # noqa: F401 (registers the extension)


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


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error format for the given status codes (401 and 403 apply to every operation)."""
    return {status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status])
            for status in sorted({401, 403, *statuses})}
