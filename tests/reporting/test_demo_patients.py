"""The demo world's patients (issue 17, item 7): patient1's second opinion signed and disagreeing with the
original report, patient2's with a specialist, patient3's upload with no order — made through the services
a patient and a reader use, and a second ``load_demo`` creates nothing."""

from __future__ import annotations

import pytest

from accounts.models import Organization, User
from billing.models import Payment
from marketplace.models import Kind, Status
from marketplace.order_models import OrderStatus, SecondOpinionOrder
from reporting.models import Report
from studies.models import Study
from tests.reporting.test_demo import load_demo


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        return load_demo()


def order_of(email: str) -> SecondOpinionOrder:
    return SecondOpinionOrder.objects.select_related("read_request", "study").get(patient__email=email)


def test_patient1_reads_a_signed_second_opinion_that_disagrees(demo):
    order = order_of("patient1@readroom.demo")
    assert order.status == OrderStatus.PAID
    assert order.jurisdiction == "US-FL"
    assert (order.read_request.kind, order.read_request.status) == (Kind.SECOND_OPINION, Status.REPORTED)
    report = Report.objects.get(read_request=order.read_request)
    assert report.status == Report.Status.FINAL
    assert report.template.name == "Second opinion"
    assert report.fields["agreement"] == "disagrees"
    assert report.sections["patient_summary"].startswith("The specialist looked again")
    payment = Payment.objects.get(reference=order.reference)
    assert (payment.status, payment.provider) == (Payment.Status.PAID, Payment.Provider.NONE)
    assert order.study.organization.kind == Organization.Kind.PATIENT
    assert "patient1@readroom.demo: second opinion (Neuroradiology): Report ready" in demo


def test_patient2_has_an_order_with_a_specialist_and_patient3_only_images(demo):
    order = order_of("patient2@readroom.demo")
    assert order.read_request.status in (Status.ASSIGNED, Status.IN_PROGRESS)
    assert order.turnaround == "expedited"
    patient3 = User.objects.get(email="patient3@readroom.demo")
    assert Study.objects.filter(organization=patient3.patient_profile.space).count() == 1
    assert not SecondOpinionOrder.objects.filter(patient=patient3).exists()
    assert patient3.patient_profile.jurisdiction == "CA-ON"


def test_a_second_load_creates_no_patient_rows(demo):
    before = (SecondOpinionOrder.objects.count(), Study.objects.count(), Payment.objects.count())
    load_demo()
    assert (SecondOpinionOrder.objects.count(), Study.objects.count(), Payment.objects.count()) == before
