"""FHIR R4 ServiceRequest in (issue 23, item 3): a RIS posts its order as a ServiceRequest, validated with
fhir.resources (the installed 8.x offers R4B, whose ServiceRequest is R4's), turned into ``OrderData``.

Mapping: ``identifier`` typed PLAC (v2-0203) is the placer order number (else the first identifier that is
not ACSN), typed ACSN the accession number; ``subject`` the patient (its identifier, else the id of its
reference; ``display`` the name); ``code`` the procedure; ``priority`` routine/urgent/asap/stat (asap is
urgent); ``requester.display`` the ordering physician; ``reasonCode`` and ``note`` the clinical history.
``status`` active (or draft) is a new order, revoked or entered-in-error a cancel. Errors come back as an
OperationOutcome whose ``expression`` names the element (FHIRPath).
"""

from __future__ import annotations

import pydantic
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.servicerequest import ServiceRequest

from core.errors import ApplicationError
from marketplace.ris.orders import CANCEL, NEW, OrderData
from marketplace.ris_models import RisOrder, RisOrderStatus

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PRIORITY = {"routine": "routine", "urgent": "urgent", "asap": "urgent", "stat": "stat"}
CONTROL = {"active": NEW, "draft": NEW, "revoked": CANCEL, "entered-in-error": CANCEL}


class FhirInvalid(Exception):
    """A body that is no valid R4 ServiceRequest: the element (FHIRPath), the issue code, the text."""

    def __init__(self, expression: str, text: str, code: str = "invalid") -> None:
        super().__init__(text)
        self.expression, self.text, self.code = expression, text, code


def _path(loc: tuple) -> str:
    parts = ["ServiceRequest"]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def parse_service_request(body: object) -> tuple[dict, OrderData]:
    """The validated resource (as JSON) and what it orders; ``FhirInvalid`` names the first bad element."""
    if not isinstance(body, dict):
        raise FhirInvalid("ServiceRequest", "The body must be a JSON object (a FHIR resource).", "structure")
    if body.get("resourceType") != "ServiceRequest":
        raise FhirInvalid("resourceType", "resourceType must be ServiceRequest.", "structure")
    try:
        resource = ServiceRequest.model_validate(body)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        code = "required" if first.get("type") == "missing" else "invalid"
        raise FhirInvalid(_path(first.get("loc", ())), f"{_path(first.get('loc', ()))}: {first.get('msg')}",
                          code) from None
    data = resource.model_dump(mode="json", exclude_none=True)
    control = CONTROL.get(data.get("status", ""))
    if control is None:
        raise FhirInvalid("ServiceRequest.status", "status must be active (a new order) or revoked (a cancel).",
                          "code-invalid")
    if data.get("intent") not in ("order", "original-order", "filler-order", "instance-order"):
        raise FhirInvalid("ServiceRequest.intent", "intent must be order (or original-order).", "code-invalid")
    priority = data.get("priority", "routine")
    if priority not in PRIORITY:
        raise FhirInvalid("ServiceRequest.priority", "priority must be routine, urgent, asap or stat.",
                          "code-invalid")
    placer, accession = _identifiers(data.get("identifier", []))
    subject = data.get("subject", {})
    reference = str(subject.get("reference", ""))
    patient_id = str(subject.get("identifier", {}).get("value", "")) or reference.rpartition("/")[2]
    coding = (data.get("code", {}).get("coding") or [{}])[0]
    history = [c.get("text", "") for c in data.get("reasonCode", [])] + [n.get("text", "") for n in
                                                                           data.get("note", [])]
    order = OrderData(control=control, placer_order_number=placer, accession_number=accession,
                      patient_id=patient_id, patient_name=str(subject.get("display", "")),
                      procedure_code=str(coding.get("code", "")),
                      procedure_text=str(data.get("code", {}).get("text") or coding.get("display", "")),
                      priority=PRIORITY[priority],
                      ordering_physician=str(data.get("requester", {}).get("display", "")),
                      clinical_history="\n".join(t.strip() for t in history if t and t.strip()))
    return data, order


def _identifiers(identifiers: list[dict]) -> tuple[str, str]:
    def typed(code: str) -> str:
        return next((str(i.get("value", "")) for i in identifiers
                     if any(c.get("code") == code for c in i.get("type", {}).get("coding", []))), "")

    placer = typed("PLAC") or next((str(i.get("value", "")) for i in identifiers
                                    if not any(c.get("code") == "ACSN" for c in i.get("type", {}).get("coding", []))),
                                   "")
    return placer, typed("ACSN")


def service_request_answer(resource: dict, order: RisOrder) -> dict:
    """The resource as stored: our id (the order's public id), its status as the order now stands."""
    answer = {**resource, "id": str(order.public_id)}
    answer["status"] = "revoked" if order.status == RisOrderStatus.CANCELLED else "active"
    ServiceRequest.model_validate(answer)
    return answer


def operation_outcome(text: str, *, expression: str = "", code: str = "invalid") -> dict:
    """One error issue, validated as an R4 OperationOutcome."""
    issue = {"severity": "error", "code": code, "diagnostics": text}
    if expression:
        issue["expression"] = [expression]
    outcome = {"resourceType": "OperationOutcome", "issue": [issue]}
    OperationOutcome.model_validate(outcome)
    return outcome


def outcome_for_error(error: ApplicationError) -> dict:
    """An order refusal (``order_apply``) as an OperationOutcome naming the element."""
    expression = next(iter(error.fields), "")
    code = {"required": "required", "unknown_order": "not-found"}.get(error.code, "business-rule")
    return operation_outcome(error.message, expression=expression, code=code)
