"""OpenAPI rules that hold for every operation, stated once (issue 20 item 6: the schema true to the API).

``declare_common_errors`` (a drf-spectacular postprocessing hook, SPECTACULAR_SETTINGS) adds the error answers
that follow from an operation's shape rather than from its business rules, so that no view can forget them:

* every operation: 401 (no or bad credentials) and 403 (not allowed);
* a request body or query parameters: 400 (malformed or refused input, ``fields`` names it); a body in a
  content type the operation does not take: 415;
* path parameters: 404 (no such object, not yours, or an id that is not one, e.g. not a UUID);
* a paginated list: 400 (``page``/``page_size`` not whole numbers from 1; see core.api.StandardPagination)
  and 404 (a page past the last).

``RefuseUnknownFieldsSchema`` makes the request schema of every ``core.api_input.RefuseUnknownFields``
serializer say ``additionalProperties: false``, which is what the serializer enforces, plus the serializer's
``request_schema_rules`` (JSON Schema keywords for the rules its ``validate`` applies across fields).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import get_doc
from rest_framework import serializers

from core.api_input import RefuseUnknownFields

ERROR_COMPONENT = "Error"
ERROR_DESCRIPTIONS = {
    400: "Invalid input or a business rule refused it; `fields` names the offending inputs.",
    401: "Not authenticated, or the token or key is invalid, expired or revoked.",
    403: "Authenticated but not allowed (e.g. `permission_denied`, `mfa_enrollment_required`, "
         "`mfa_reauthentication_required`).",
    404: "Not found, or not visible to you (the two look the same); also an id in the path that is not one "
         "and, in a list, a page past the last.",
    415: "The body is not in a content type this operation takes (see its request body).",
}
_METHODS = {"get", "put", "post", "patch", "delete"}


class RefuseUnknownFieldsSchema(OpenApiSerializerExtension):
    target_class = "core.api_input.RefuseUnknownFields"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if schema.get("description") == get_doc(RefuseUnknownFields):
            del schema["description"]  # inherited from the mixin by a serializer without a docstring of its own
        if direction == "request":
            schema["additionalProperties"] = False
            # DRF's CharField refuses the NUL character: say so where no other pattern applies.
            for name, field in self.target.fields.items():
                prop = schema.get("properties", {}).get(name, {})
                if isinstance(field, serializers.CharField) and prop.get("type") == "string" \
                        and "pattern" not in prop and "format" not in prop:
                    prop["pattern"] = "^[^\\u0000]*$"
            # Rules across fields that its validate() enforces, said in JSON Schema (e.g. "one of these two").
            if auto_schema.method != "PATCH":
                schema.update(getattr(self.target, "request_schema_rules", {}))
        return schema


def _statuses(operation: dict) -> set[int]:
    """The error statuses an operation of this shape can answer."""
    locations = {parameter.get("in") for parameter in operation.get("parameters", [])}
    names = {parameter.get("name") for parameter in operation.get("parameters", []) if parameter.get("in") == "query"}
    statuses = {401, 403}
    if "requestBody" in operation:
        statuses |= {400, 415}
    if "query" in locations:
        statuses.add(400)
    if "path" in locations or "page" in names:
        statuses.add(404)
    return statuses


def declare_common_errors(result, generator, request, public):
    """Postprocessing hook: add the shape-given error answers an operation does not declare itself."""
    if ERROR_COMPONENT not in result.get("components", {}).get("schemas", {}):
        raise RuntimeError(f"The schema has no {ERROR_COMPONENT!r} component for the error answers.")
    error = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            _require_body_with_alternatives(operation, result["components"]["schemas"])
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(operation)):
                responses.setdefault(str(status), {**error, "description": ERROR_DESCRIPTIONS[status]})
            operation["responses"] = dict(sorted(responses.items()))
    return result


def _require_body_with_alternatives(operation: dict, components: dict) -> None:
    """A body whose schema demands one of several fields (``oneOf``) cannot be left out: say it is required."""
    body = operation.get("requestBody")
    if not body:
        return
    for media in body.get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if "oneOf" in components.get(ref.rsplit("/", 1)[-1], {}):
            body["required"] = True
