"""A read request's report through the API, in the form the ``Accept`` header asks for.

``GET /api/v1/read-requests/{public_id}/report/`` answers the latest version (``?addenda=N``: the
version with the first N addenda) as PDF, FHIR R4 DiagnosticReport JSON, HL7 v2.5.1 ORU^R01 (ER7) or
DICOM Basic Text SR. A preliminary (STAT) report comes marked preliminary; a draft is never shown (404).
Errors stay in the API's JSON error format whatever was asked for. Every download is audited before
the bytes leave.
"""

from __future__ import annotations

import re

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer

from accounts.api.schema import error_responses
from accounts.api_base import ActorAPIView
from accounts.serializers import ErrorSerializer
from core.errors import ApplicationError
from marketplace import selectors as marketplace_selectors
from reporting.models import Delivery, Report
from reporting.services import delivery

# Media type asked for -> (delivery form, Content-Type answered). The first is the default (Accept: */*).
MEDIA_TYPES = {
    "application/pdf": (Delivery.Form.PDF, "application/pdf"),
    "application/fhir+json": (Delivery.Form.FHIR, "application/fhir+json; charset=utf-8"),
    "application/json": (Delivery.Form.FHIR, "application/json; charset=utf-8"),
    # HL7 v2 in ER7 has no IANA registration; HAPI and most interface engines use these two.
    "x-application/hl7-v2+er7": (Delivery.Form.HL7, "x-application/hl7-v2+er7; charset=utf-8"),
    "application/hl7-v2": (Delivery.Form.HL7, "application/hl7-v2; charset=utf-8"),
    "application/dicom": (Delivery.Form.SR, "application/dicom"),
}
MAX_ADDENDA = 999_999_999  # a bound for the query parameter; a version that does not exist is 404


def negotiate(request) -> tuple[str, str]:
    """(form, content type) for the request's ``Accept`` header; 406 naming what is offered."""
    chosen = request.get_preferred_type(list(MEDIA_TYPES))
    if chosen is None:
        offered = ", ".join(MEDIA_TYPES)
        raise ApplicationError(f"The report is offered as {offered}; the Accept header names none of them.",
                               code="not_acceptable", status_code=406, fields={"Accept": [offered]})
    return MEDIA_TYPES[chosen]


def addenda_param(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"[0-9]{1,9}", raw) or int(raw) > MAX_ADDENDA:
        raise ApplicationError.for_field("addenda", "Give the number of addenda of the version: 0, 1, 2…")
    return int(raw)


def file_response(got: delivery.Download, content_type: str, *, inline: bool = False) -> HttpResponse:
    response = HttpResponse(got.content, content_type=content_type)
    response["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{got.filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Report-Addenda"] = str(got.addenda_count)
    response["X-Report-Status"] = "preliminary" if got.preliminary else "amended" if got.addenda_count else "final"
    return response


class JsonErrors(BaseContentNegotiation):
    """Errors (401, 403, 404, 406) in the API's JSON format whatever ``Accept`` says; the view chooses the
    report's form itself."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


REPORT_RESPONSES = {
    (200, "application/pdf"): OpenApiResponse(
        OpenApiTypes.BINARY,
        description="The report in the form Accept asks for (default the PDF). Headers: X-Report-Status "
                    "(preliminary, final, amended), X-Report-Addenda (the version)."),
    (200, "application/fhir+json"): OpenApiResponse(
        OpenApiTypes.OBJECT, description="A FHIR R4 DiagnosticReport; presentedForm holds the PDF."),
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="The same DiagnosticReport."),
    (200, "x-application/hl7-v2+er7"): OpenApiResponse(
        OpenApiTypes.STR, description="An HL7 v2.5.1 ORU^R01 message (ER7, segments separated by CR, UTF-8)."),
    (200, "application/hl7-v2"): OpenApiResponse(OpenApiTypes.STR, description="The same ORU^R01 message."),
    (200, "application/dicom"): OpenApiResponse(OpenApiTypes.BINARY, description="A DICOM Basic Text SR."),
    (406, "application/json"): OpenApiResponse(ErrorSerializer, description="The Accept header names no form "
                                                                            "offered; `fields.Accept` lists them."),
    **{(status, "application/json"): response for status, response in error_responses(400, 404).items()},
}


@extend_schema(tags=["read-requests"])
class ReadRequestReportView(ActorAPIView):
    queryset = Report.objects.none()  # names the model for the schema; the report comes from the selectors
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonErrors

    def get_scoped_queryset(self, actor):
        return Report.objects.none()

    @extend_schema(
        operation_id="read_requests_report",
        parameters=[
            OpenApiParameter("addenda", {"type": "integer", "minimum": 0, "maximum": MAX_ADDENDA},
                             description="The version with this many addenda (default: the latest)."),
            OpenApiParameter("Accept", str, OpenApiParameter.HEADER, required=False,
                             enum=list(MEDIA_TYPES), description="The form wanted; default application/pdf."),
        ],
        responses=REPORT_RESPONSES,
    )
    def get(self, request, public_id):
        """The read's report as the center's systems take it (the center by role, operations, the reader):
        PDF, FHIR DiagnosticReport, HL7 ORU^R01 or DICOM SR, marked preliminary until signed."""
        form, content_type = negotiate(request)
        version = addenda_param(request.query_params.get("addenda"))
        read_request = marketplace_selectors.read_request_get(actor=self.actor, public_id=public_id)
        report = delivery.released_report(actor=self.actor, read_request=read_request)
        got = delivery.report_download(actor=self.actor, report=report, form=form, addenda_count=version,
                                       request=request, via="api")
        return file_response(got, content_type)


urlpatterns = [
    path("read-requests/<uuid:public_id>/report/", ReadRequestReportView.as_view(), name="api_read_request_report"),
]
