"""``GET /fhir/DiagnosticReport?based-on=ServiceRequest/{id}`` (issue 23): the report of a RIS order as a FHIR
R4 searchset Bundle holding the DiagnosticReport delivery built (latest version; none yet: an empty Bundle).

The ServiceRequest id is the order's public id (``POST /fhir/ServiceRequest`` answered it). The order is looked
up in the caller's scope (its center's people by role or its API key; anyone else 404); the report handed out is
recorded in the audit log as a PHI read. Kept out of the OpenAPI document, like the ServiceRequest endpoint.
"""

from __future__ import annotations

import json
import re

from django.urls import path
from drf_spectacular.utils import extend_schema
from fhir.resources.R4B.bundle import Bundle
from rest_framework.response import Response

from accounts.api_base import ActorAPIView
from core.errors import NotFound
from marketplace.api.fhir import FhirJsonRenderer, fhir_response
from marketplace.ris import fhir as ris_fhir
from marketplace.ris.selectors import ris_order_get
from marketplace.ris_models import RisOrder
from reporting.models import Delivery
from reporting.services import delivery

BASED_ON = re.compile(r"^(?:ServiceRequest/)?([0-9a-fA-F-]{36})$")


def searchset(resources: list[dict], base_url: str) -> dict:
    """A FHIR searchset Bundle of ``resources``, validated."""
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
              "entry": [{"fullUrl": f"{base_url}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                        for r in resources]}
    Bundle.model_validate(bundle)
    return bundle


@extend_schema(exclude=True)
class DiagnosticReportSearchView(ActorAPIView):
    renderer_classes = [FhirJsonRenderer]
    queryset = RisOrder.objects.none()

    def get_scoped_queryset(self, actor):
        return RisOrder.objects.none()  # the order comes from marketplace.ris.selectors.ris_order_get

    def get(self, request) -> Response:
        match = BASED_ON.match(request.query_params.get("based-on", "").strip())
        if match is None:
            return fhir_response(ris_fhir.operation_outcome(
                "Search by based-on=ServiceRequest/{id} (the id POST /fhir/ServiceRequest answered).",
                expression="based-on", code="required"), 400)
        try:
            order = ris_order_get(actor=self.actor, public_id=match.group(1))
        except NotFound:
            return fhir_response(ris_fhir.operation_outcome("ServiceRequest not found.", expression="based-on",
                                                            code="not-found"), 404)
        base_url = request.build_absolute_uri("/fhir/DiagnosticReport")
        if order.read_request is None:
            return fhir_response(searchset([], base_url), 200)
        try:
            report = delivery.released_report(actor=self.actor, read_request=order.read_request)
        except NotFound:
            return fhir_response(searchset([], base_url), 200)
        got = delivery.report_download(actor=self.actor, report=report, form=Delivery.Form.FHIR, addenda_count=None,
                                       request=request, via="fhir")
        return fhir_response(searchset([json.loads(got.content)], base_url), 200)


urlpatterns = [
    path("fhir/DiagnosticReport", DiagnosticReportSearchView.as_view(), name="fhir_diagnostic_report"),
]
