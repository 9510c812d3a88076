"""Builders of the patient-side reporting tests: a patient's paid second opinion, claimed by the cast's
radiologist, through the real services (patient details, ingest into the personal space, order, test
payment, claim), and its report written on the seeded second-opinion template."""

from __future__ import annotations

from datetime import date

from accounts.models import License, User
from accounts.patients import patient_details_save
from billing.services.checkout import checkout_confirm_test_payment
from marketplace.models import Offer, SecondOpinionOrder
from marketplace.services.offers import offer_claim
from marketplace.services.orders import OrderData, order_checkout, order_create
from reporting.models import Report
from reporting.seed_templates import SECOND_OPINION
from reporting.services import reports
from tests.factories import UserFactory
from tests.marketplace.helpers import actor, ingest_study, make_radiologist
from tests.reporting.templates_helpers import seed_platform_templates

SUMMARY = "The scan of your head shows no bleeding and no sign of a stroke. Your first report said the same."


def new_patient(email: str) -> User:
    return UserFactory(email=email, kind=User.Kind.PATIENT)


def paid_order(patient: User, *, question_text: str = "") -> SecondOpinionOrder:
    """A patient in Texas with a CT head in their own space, ordered and paid (a test payment): the order
    has posted its read request of kind second_opinion."""
    patient_actor = actor(patient)
    if not hasattr(patient, "patient_profile"):
        patient_details_save(actor=patient_actor, date_of_birth=date(1970, 5, 4), country="US", region="TX")
        patient_actor = actor(patient)
    space = patient.patient_profile.space
    study = ingest_study(space, modality="CT", description="CT HEAD WITHOUT CONTRAST")
    order = order_create(actor=patient_actor, data=OrderData(
        study=study, question="specific" if question_text else "whole_study", question_text=question_text,
        subspecialty="neuro", accept_terms=True))
    payment = order_checkout(actor=patient_actor, order=order)
    checkout_confirm_test_payment(actor=patient_actor, payment=payment)
    order.refresh_from_db()
    assert order.read_request is not None, "the paid order posted no read request"
    return order


def claimed_order(cast, patient: User | None = None, **kwargs) -> SecondOpinionOrder:
    """``paid_order`` claimed by the cast's radiologist (licensed in TX), the seeded templates in place."""
    seed_platform_templates()
    if not License.objects.filter(radiologist__user=cast.radiologist).exists():
        make_radiologist(user=cast.radiologist)
    order = paid_order(patient or cast.patient, **kwargs)
    offer = Offer.objects.get(read_request=order.read_request, radiologist__user=cast.radiologist)
    offer_claim(actor=actor(cast.radiologist), offer=offer)
    order.read_request.refresh_from_db()
    return order


def opened_by(reader: User, order: SecondOpinionOrder) -> Report:
    return reports.report_open(actor=actor(reader), read_request=order.read_request)


def written_by(reader: User, report: Report, *, summary: str = SUMMARY, agreement: str = "agrees",
               **sections) -> Report:
    """The draft with findings, an impression, the patient's summary and the agreement saved."""
    return reports.report_save(actor=actor(reader), report=report, version=report.version, sections={
        **report.sections, "findings": "No intracranial hemorrhage.", "impression": "No acute abnormality.",
        "patient_summary": summary, **sections}, fields={**report.fields, "agreement": agreement})


def opened(cast, order: SecondOpinionOrder) -> Report:
    return opened_by(cast.radiologist, order)


def written(cast, report: Report, **kwargs) -> Report:
    return written_by(cast.radiologist, report, **kwargs)


def signed_order(cast, patient: User | None = None, *, agreement: str = "agrees", **kwargs) -> SecondOpinionOrder:
    """A second opinion signed by the cast's radiologist (fresh second factor), with the patient's summary."""
    order = claimed_order(cast, patient, **kwargs)
    report = written(cast, opened(cast, order), agreement=agreement)
    reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version, second_factor_age=0)
    order.read_request.refresh_from_db()
    return order


__all__ = ["SECOND_OPINION", "SUMMARY", "claimed_order", "new_patient", "opened", "opened_by", "paid_order",
           "signed_order", "written", "written_by"]
