"""FHIR R4 in and out (issue 23, item 3): ``POST /fhir/ServiceRequest`` becomes an order (validated by
fhir.resources both ways: what we send and what we answer), errors come back as OperationOutcomes naming the
element, and ``GET /fhir/DiagnosticReport?based-on=ServiceRequest/{id}`` returns the signed report."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.servicerequest import ServiceRequest
from rest_framework.test import APIClient

from accounts import services
from accounts.audit import AuditEvent
from accounts.policy import actor_for_user
from marketplace.models import Offer
from marketplace.ris_models import RisOrder, RisOrderStatus
from marketplace.services.offers import offer_claim
from reporting.services import reports
from tests.marketplace.helpers import actor, make_radiologist
from tests.marketplace.ris_helpers import ingest_with_accession
from tests.reporting.conftest import make_template

pytestmark = pytest.mark.django_db
URL = "/fhir/ServiceRequest"
FHIR = "application/fhir+json"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def service_request(*, placer="SR-1", accession="F100", patient="MRN100201", status="active", **extra) -> dict:
    body = {
        "resourceType": "ServiceRequest",
        "status": status,
        "intent": "order",
        "priority": "stat",
        "identifier": [
            {"type": {"coding": [{"system": V2_0203, "code": "PLAC"}]}, "value": placer},
            {"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]}, "value": accession},
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24725-4", "display": "CT Head"}],
                 "text": "CT HEAD WITHOUT CONTRAST"},
        "subject": {"reference": f"Patient/{patient}", "display": "Nguyen^Minh"},
        "requester": {"display": "Dr Chidi Okafor"},
        "reasonCode": [{"text": "Sudden worst headache."}],
        "note": [{"text": "On warfarin."}],
        **extra,
    }
    ServiceRequest.model_validate(body)  # what we send is a valid R4 resource
    return body


@pytest.fixture
def key_client(cast):
    _, secret = services.api_key_create(actor=actor_for_user(cast.center_admin), organization=cast.center,
                                        name="RIS", roles=["technologist"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def post(client, body) -> tuple[int, dict]:
    response = client.post(URL, json.dumps(body), content_type=FHIR)
    return response.status_code, json.loads(response.content)


def test_a_service_request_with_the_centers_key_becomes_an_order_and_its_read(cast, key_client):
    make_radiologist(user=cast.radiologist)
    study = ingest_with_accession(cast.center, accession="F100", patient=1)
    status, answer = post(key_client, service_request())
    assert status == 201
    ServiceRequest.model_validate(answer)
    order = RisOrder.objects.get(public_id=answer["id"])
    assert (order.source, order.placer_order_number, order.accession_number, order.patient_id) == (
        "fhir", "SR-1", "F100", "MRN100201")
    assert order.status == RisOrderStatus.POSTED
    assert order.read_request.study == study
    assert order.read_request.priority == "stat"
    assert order.clinical_history == "Sudden worst headache.\nOn warfarin."
    assert (order.procedure_code, order.procedure_text, order.ordering_physician) == (
        "24725-4", "CT HEAD WITHOUT CONTRAST", "Dr Chidi Okafor")
    again_status, again = post(key_client, service_request())
    assert (again_status, again["id"]) == (200, answer["id"])  # the same order once
    revoked_status, revoked = post(key_client, service_request(status="revoked"))
    assert revoked_status == 200
    assert revoked["status"] == "revoked"
    order.refresh_from_db()
    assert order.status == RisOrderStatus.CANCELLED


@pytest.mark.parametrize(("body", "expression"), [
    ({"resourceType": "ServiceRequest", "status": "active", "intent": "order"}, "ServiceRequest.subject"),
    ({"resourceType": "Patient"}, "resourceType"),
    ("not an object", "ServiceRequest"),
])
def test_an_invalid_resource_is_answered_400_with_an_operation_outcome_naming_it(key_client, body, expression):
    status, answer = post(key_client, body)
    assert status == 400
    OperationOutcome.model_validate(answer)
    assert answer["issue"][0]["expression"] == [expression]


def test_an_unknown_priority_and_a_missing_accession_are_named(key_client):
    status, answer = post(key_client, service_request(priority="whenever"))
    assert (status, answer["issue"][0]["expression"]) == (400, ["ServiceRequest.priority"])
    body = service_request()
    body["identifier"] = body["identifier"][:1]
    status, answer = post(key_client, body)
    assert status == 400
    OperationOutcome.model_validate(answer)
    assert answer["issue"][0]["expression"] == ["ServiceRequest.identifier"]
    assert "required" in answer["issue"][0]["diagnostics"]


def test_a_cancel_of_an_unknown_order_is_422(key_client):
    status, answer = post(key_client, service_request(placer="NEVER", status="revoked"))
    assert status == 422
    assert answer["issue"][0]["code"] == "not-found"


def test_who_may_post(cast, login):
    body = service_request(placer="SR-9")
    assert login(cast.technologist, api=True).post(URL, json.dumps(body), content_type=FHIR).status_code == 201
    assert login(cast.center_viewer, api=True).post(URL, json.dumps(body), content_type=FHIR).status_code == 403
    assert login(cast.radiologist, api=True).post(URL, json.dumps(body), content_type=FHIR).status_code == 404
    assert APIClient().post(URL, json.dumps(body), content_type=FHIR).status_code == 401


def test_the_diagnostic_report_of_a_signed_order_comes_back_in_a_bundle(cast, key_client, login,
                                                                      django_capture_on_commit_callbacks):
    make_radiologist(user=cast.radiologist)
    make_template(body_parts=())
    ingest_with_accession(cast.center, accession="F200", patient=1)
    _, answer = post(key_client, service_request(placer="SR-2", accession="F200"))
    search = reverse("fhir_diagnostic_report") + f"?based-on=ServiceRequest/{answer['id']}"
    empty = json.loads(key_client.get(search).content)
    assert (empty["type"], empty["total"]) == ("searchset", 0)
    order = RisOrder.objects.get(public_id=answer["id"])
    offer = Offer.objects.get(read_request=order.read_request, radiologist__user=cast.radiologist)
    offer_claim(actor=actor(cast.radiologist), offer=offer)
    order.read_request.refresh_from_db()
    report = reports.report_open(actor=actor(cast.radiologist), read_request=order.read_request)
    report = reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                                 sections={**report.sections, "findings": "No bleed.", "impression": "Normal."},
                                 fields=report.fields)
    with django_capture_on_commit_callbacks(execute=True):
        reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version,
                            second_factor_age=0)
    response = key_client.get(search)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR)
    bundle = json.loads(response.content)
    Bundle.model_validate(bundle)
    assert bundle["total"] == 1
    resource = bundle["entry"][0]["resource"]
    assert (resource["resourceType"], resource["id"], resource["status"]) == (
        "DiagnosticReport", str(report.public_id), "final")
    assert AuditEvent.objects.filter(action="report.downloaded", object_id=str(report.public_id),
                                     extra__via="fhir").exists()
    # Another center's admin and a bad parameter.
    assert login(cast.other_admin, api=True).get(search).status_code == 404
    assert key_client.get(reverse("fhir_diagnostic_report")).status_code == 400
