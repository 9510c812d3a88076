"""``POST /fhir/ServiceRequest`` (issue 23): a center's RIS orders an exam in FHIR R4.

Authenticated by the center's API key (admin or technologist role) or a session of the center's admin or
technologist (the active organization). Answers 201 with the ServiceRequest (id: the order's public id; 200
for a repeated order), or an OperationOutcome naming the element: 400 for a body that is no valid R4
ServiceRequest, 422 for an order the center's orders refuse. Kept out of the OpenAPI document: FHIR
clients read the resource's own definition.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.api_base import ActorAPIView
from accounts.models import Organization
from core.errors import ApplicationError, NotFound
from marketplace import policy
from marketplace.ris import fhir
from marketplace.ris.orders import NEW, order_apply
from marketplace.ris_models import RisOrder

FHIR_JSON = "application/fhir+json"


class FhirJsonParser(JSONParser):
    media_type = FHIR_JSON


class FhirJsonRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


def _body(request):
    try:
        return request.data
    except ParseError as error:
        raise fhir.FhirInvalid("ServiceRequest", f"The body is not JSON: {error.detail}", "structure") from None


def fhir_response(body: dict, status: int) -> Response:
    return Response(body, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")


@extend_schema(exclude=True)
class ServiceRequestCreateView(ActorAPIView):
    parser_classes = [FhirJsonParser, JSONParser]
    renderer_classes = [FhirJsonRenderer, JSONRenderer]
    queryset = RisOrder.objects.none()

    def get_scoped_queryset(self, actor):
        return RisOrder.objects.filter(center=actor.active_organization)

    def post(self, request):
        center = self.actor.active_organization
        if center is None or not policy.can_post(self.actor, center):
            if center is not None and center.kind == Organization.Kind.IMAGING_CENTER and \
                    center.pk in self.actor.memberships:
                return fhir_response(fhir.operation_outcome(
                    "Only the center's admins and technologists (or its API key) order exams.",
                    code="forbidden"), 403)
            raise NotFound()
        try:
            resource, data = fhir.parse_service_request(_body(request))
        except fhir.FhirInvalid as error:
            return fhir_response(fhir.operation_outcome(error.text, expression=error.expression, code=error.code),
                                 400)
        earlier = RisOrder.objects.filter(center=center, placer_order_number=data.placer_order_number).exists()
        try:
            order = order_apply(center=center, data=data, source=RisOrder.Source.FHIR, actor=self.actor)
        except ApplicationError as error:
            return fhir_response(fhir.outcome_for_error(error), 422 if error.status_code != 400 else 400)
        created = data.control == NEW and not earlier
        return fhir_response(fhir.service_request_answer(resource, order), 201 if created else 200)
