"""Access-matrix rows of the center's RIS pages and the FHIR endpoints (issue 23).

Interfaces and the message log: the active center's admins (the other center's admin sees their own, empty);
orders: the center's viewing roles; posting a held order is POST only (405 to a GET; tests/test_access_matrix.py
probes a foreign order by POST). FHIR: a key or a signed-in person; ``POST /fhir/ServiceRequest`` answers a GET
405, and the DiagnosticReport search without ``based-on`` 400 (tests/marketplace/test_ris_fhir.py probes who
sees which order's report)."""

from __future__ import annotations

from tests.marketplace.ris_helpers import interface_for, order

SIGNED_IN = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
             "platform_operations", "platform_finance", "patient"]


def ris_objects(center) -> dict:
    """An HL7 interface of ``center`` and a waiting order."""
    return {"hl7_interface": interface_for(center),
            "ris_order": order(center, placer=f"MX-{center.slug}", accession=f"MX{center.pk}", patient_id="MRN1")}


def _expect(ok: set[str], *, status: int = 200, anonymous: int = 302) -> dict:
    return {"anonymous": anonymous, **{p: status if p in ok else 404 for p in SIGNED_IN}}


ADMINS_OF_THEIR_CENTER = {"center_admin", "other_admin"}
ROWS: dict = {
    "ris_interfaces": (None, _expect(ADMINS_OF_THEIR_CENTER)),
    "ris_interface_edit": (lambda o: {"public_id": o["hl7_interface"].public_id}, _expect({"center_admin"})),
    "ris_order_list": (None, _expect({"center_admin", "technologist", "center_viewer", "other_admin"})),
    "ris_order_release": (lambda o: {"public_id": o["ris_order"].public_id}, _expect(set(SIGNED_IN), status=405)),
    "ris_message_list": (None, _expect(ADMINS_OF_THEIR_CENTER)),
    "fhir_service_request": (None, _expect(set(SIGNED_IN), status=405, anonymous=401)),
    "fhir_diagnostic_report": (None, _expect(set(SIGNED_IN), status=400, anonymous=401)),
}
