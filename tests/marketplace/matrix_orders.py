"""Access-matrix rows of a patient's second-opinion pages (issue 17): the ordering patient alone (200); every
other principal gets 404, as for an order that does not exist; POST-only routes answer 405 to a GET."""

from __future__ import annotations

from datetime import date

from accounts.models import User
from accounts.patients import patient_details_save
from accounts.policy import actor_for_user
from billing.services import checkout
from marketplace.services import orders
from tests.marketplace.helpers import ingest_study

SIGNED_IN = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
             "platform_operations", "platform_finance", "patient"]


def order_objects(patient: User) -> dict:
    """A patient with details, a study of their own, a draft order on it and a paid one."""
    actor = actor_for_user(patient)
    profile = patient_details_save(actor=actor, date_of_birth=date(1980, 1, 1), country="US", region="TX")
    actor = actor_for_user(patient)
    study = ingest_study(profile.space, description="CT HEAD")
    data = orders.OrderData(study=study, subspecialty="neuro", accept_terms=True)
    draft = orders.order_create(actor=actor, data=data)
    paid = orders.order_create(actor=actor, data=data)
    checkout.checkout_confirm_test_payment(actor=actor, payment=orders.order_checkout(actor=actor, order=paid))
    return {"patient_study": study, "draft_order": draft, "paid_order": paid}


def _patient_only() -> dict:
    return {"anonymous": 302, **{p: 200 if p == "patient" else 404 for p in SIGNED_IN}}


def _post_only() -> dict:
    return {"anonymous": 302, **{p: 405 for p in SIGNED_IN}}


ROWS: dict = {
    "opinion_order_list": (None, _patient_only()),
    "opinion_order_create": (lambda o: {"study_id": o["patient_study"].public_id}, _patient_only()),
    "opinion_order_detail": (lambda o: {"public_id": o["draft_order"].public_id}, _patient_only()),
    "opinion_order_pay": (lambda o: {"public_id": o["draft_order"].public_id}, _post_only()),
    "opinion_order_cancel": (lambda o: {"public_id": o["draft_order"].public_id}, _post_only()),
    "opinion_order_receipt": (lambda o: {"public_id": o["paid_order"].public_id}, _patient_only()),
}
