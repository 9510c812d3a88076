"""API plumbing shared by every app: pagination and the one error format.

Every error leaves the API as ``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError


class StandardPagination(PageNumberPagination):
    """Every list's paging, one rule for all: ``page`` and ``page_size`` are positive integers (``page_size`` at
    most 200), anything else is refused 400 naming the parameter; a page past the last answers 404."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        return _positive_int_param(request, self.page_size_query_param, self.page_size, maximum=self.max_page_size)

    def get_page_number(self, request, paginator) -> int:
        return _positive_int_param(request, self.page_query_param, 1)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except drf_exceptions.NotFound:
            raise ApplicationError(f"There is no page {self.get_page_number(request, None)}: the list has fewer.",
                                   code="not_found", fields={self.page_query_param: ["No such page."]},
                                   status_code=404) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = "A page number, from 1. A page past the last answers 404."
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
                parameter["description"] = f"Results per page, 1 to {self.max_page_size} (default {self.page_size})."
        return parameters


def _positive_int_param(request, name: str, default: int, *, maximum: int | None = None) -> int:
    """A paging parameter as given, or the default when absent; a value that is not a whole number from 1 (to
    ``maximum``) is refused rather than quietly replaced."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if raw.isascii() and raw.isdigit() else 0
    except ValueError:  # more digits than Python converts
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        bound = f" to {maximum}" if maximum is not None else ""
        raise ApplicationError.for_field(name, f"Give a whole number from 1{bound}.")
    return value


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_fields(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten_fields(value).items():
                    out[f"{key}.{sub}"] = msgs
            elif isinstance(value, list):
                out[key] = [str(v) for v in value]
            else:
                out[key] = [str(value)]
        return out
    return {}


def exception_handler(exc, context):
    """Turn every exception DRF sees into the one error format; unknown errors stay 500s (bugs)."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        fields = _flatten_fields(exc.detail) if isinstance(exc.detail, dict) else {}
        non_field = fields.pop("non_field_errors", None)
        message = non_field[0] if non_field else "Some fields are invalid."
        if isinstance(exc.detail, list) and exc.detail:
            message = str(exc.detail[0])
        response.data = error_body("invalid", message, fields)
        return response
    detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = error_body(str(code), str(detail))
    return response
