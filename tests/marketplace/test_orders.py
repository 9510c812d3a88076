"""A patient's second-opinion order (issue 17 items 3-4): made, paid, posted to the right readers, followed,
cancelled and refunded — through billing's real checkout with Stripe off (the test payment)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import Organization, User
from accounts.patients import patient_details_save
from accounts.policy import actor_for_user
from billing.models import Payment
from billing.services import checkout
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace.models import Kind, Offer, ReadRequest, Status
from marketplace.order_models import OrderStatus, Question, Turnaround
from marketplace.services import clock, orders
from marketplace.services.offers import offer_claim
from tests.factories import UserFactory
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, signed_read

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stripe_off(settings):
    settings.STRIPE_SECRET_KEY = ""


def patient(email="pat@example.test", region="CA"):
    user = UserFactory(email=email, full_name="Pat Patient", kind=User.Kind.PATIENT)
    patient_details_save(actor=actor_for_user(user), date_of_birth=date(1970, 5, 1), country="US", region=region)
    return user


def me(user):
    return actor_for_user(user)


def own_study(user, modality="CT", description="CT HEAD WITHOUT CONTRAST"):
    return ingest_study(user.patient_profile.space, modality=modality, description=description)


def order_for(user, study, **fields):
    data = orders.OrderData(study=study, subspecialty=fields.pop("subspecialty", "neuro"), accept_terms=True, **fields)
    return orders.order_create(actor=me(user), data=data)


def pay(user, order):
    payment = orders.order_checkout(actor=me(user), order=order)
    checkout.checkout_confirm_test_payment(actor=me(user), payment=payment)
    order.refresh_from_db()
    return order


def test_a_paid_order_posts_a_second_opinion_licensed_where_the_patient_lives():
    reader_ca = make_radiologist(regions=("CA",), subspecialties=("neuro",))
    make_radiologist(regions=("TX",), subspecialties=("neuro",))  # the study's space is in CA: not eligible
    user = patient()
    study = own_study(user)
    order = order_for(user, study, turnaround=Turnaround.EXPEDITED)
    assert order.status == OrderStatus.DRAFT
    assert order.read_request is None
    assert order.quoted_cents == 37500  # CT second opinion 250 × 1.5 expedited
    assert not ReadRequest.objects.exists()  # nothing offered before payment
    order = pay(user, order)
    assert order.status == OrderStatus.PAID
    assert order.paid_at is not None
    read_request = order.read_request
    assert (read_request.kind, read_request.jurisdiction, read_request.status) == (Kind.SECOND_OPINION, "US-CA",
                                                                                  Status.OPEN)
    assert read_request.center == user.patient_profile.space
    assert read_request.subspecialty == "neuro"
    assert read_request.deadline - read_request.created_at == pytest.approx(timedelta(hours=24), abs=timedelta(
        seconds=5))
    assert list(Offer.objects.filter(read_request=read_request).values_list("radiologist", flat=True)) == [
        reader_ca.pk]


def test_the_price_and_how_many_could_read_it_are_shown_before_paying():
    make_radiologist(regions=("CA",), subspecialties=("neuro",))
    make_radiologist(regions=("CA",), subspecialties=("neuro",))
    make_radiologist(regions=("CA",), subspecialties=("body",))
    user = patient()
    study = own_study(user, modality="CR", description="CHEST PA")
    space = user.patient_profile.space
    assert orders.quote(study, Turnaround.STANDARD, space).cents == 15000
    assert orders.eligible_reader_count(study=study, subspecialty="neuro", turnaround=Turnaround.STANDARD,
                                        jurisdiction="US-CA", space=space) == 2
    assert orders.eligible_reader_count(study=study, subspecialty="neuro", turnaround=Turnaround.STANDARD,
                                        jurisdiction="US-NY", space=space) == 0


def test_paying_twice_charges_once_and_shows_the_existing_payment():
    user = patient()
    order = pay(user, order_for(user, own_study(user)))
    order.status = OrderStatus.DRAFT  # a stale page offering "Pay" again
    with pytest.raises(ApplicationError) as refused:
        orders.order_checkout(actor=me(user), order=order)
    assert refused.value.code in ("invalid_transition", "already_paid")
    assert Payment.objects.filter(reference=order.reference).count() == 1


def test_cancelling_before_a_claim_refunds_in_full_and_withdraws_the_read():
    make_radiologist(regions=("CA",), subspecialties=("neuro",))
    user = patient()
    order = pay(user, order_for(user, own_study(user)))
    order = orders.order_cancel(actor=me(user), order=order)
    assert order.status == OrderStatus.CANCELLED
    order.read_request.refresh_from_db()
    assert order.read_request.status == Status.CANCELLED
    assert Payment.objects.get(reference=order.reference).status == Payment.Status.REFUNDED


def test_once_a_specialist_took_it_the_patient_can_no_longer_cancel():
    reader = make_radiologist(regions=("CA",), subspecialties=("neuro",))
    user = patient()
    order = pay(user, order_for(user, own_study(user)))
    offer_claim(actor=actor(reader.user), offer=Offer.objects.get(read_request=order.read_request))
    with pytest.raises(PermissionDenied):
        orders.order_cancel(actor=me(user), order=order)
    assert Payment.objects.get(reference=order.reference).status == Payment.Status.PAID


def test_nobody_claims_within_half_the_turnaround_the_clock_refunds_and_says_why():
    make_radiologist(regions=("CA",), subspecialties=("neuro",))
    user = patient()
    order = pay(user, order_for(user, own_study(user)))  # standard: 48 h
    clock.sla_tick(at=timezone.now() + timedelta(hours=23))
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    result = clock.sla_tick(at=timezone.now() + timedelta(hours=24, minutes=1))
    order.refresh_from_db()
    assert result.refunded == 1
    assert order.status == OrderStatus.CANCELLED
    assert "within 24 hours" in order.cancel_reason
    assert Payment.objects.get(reference=order.reference).status == Payment.Status.REFUNDED
    assert user.notifications.filter(title="Your payment was refunded").exists()


def test_a_payment_settling_after_the_order_was_cancelled_is_refunded():
    user = patient()
    order = order_for(user, own_study(user))
    payment = orders.order_checkout(actor=me(user), order=order)
    orders.order_cancel(actor=me(user), order=order)  # cancelled while the checkout page was open
    checkout.checkout_confirm_test_payment(actor=me(user), payment=payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert not ReadRequest.objects.exists()


def test_orders_belong_to_their_patient():
    user, other = patient(), patient(email="other@example.test")
    order = order_for(user, own_study(user))
    with pytest.raises(NotFound):
        orders.order_checkout(actor=me(other), order=order)
    with pytest.raises(NotFound):
        orders.order_cancel(actor=me(other), order=order)
    with pytest.raises(NotFound):
        orders.orderable_study(actor=me(other), public_id=order.study.public_id)
    professional = UserFactory(kind=User.Kind.PROFESSIONAL)
    with pytest.raises(NotFound):
        orders.order_create(actor=me(professional), data=orders.OrderData(study=order.study, subspecialty="neuro",
                                                                          accept_terms=True))


@pytest.mark.parametrize(("fields", "field"), [
    ({"accept_terms": False}, "accept_terms"),
    ({"question": Question.SPECIFIC, "question_text": "  "}, "question_text"),
    ({"subspecialty": "astrology"}, "subspecialty"),
    ({"turnaround": "tomorrow"}, "turnaround"),
])
def test_an_incomplete_order_names_the_field_and_saves_nothing(fields, field):
    user = patient()
    study = own_study(user)
    data = {"study": study, "subspecialty": "neuro", "accept_terms": True, **fields}
    with pytest.raises(ApplicationError) as refused:
        orders.order_create(actor=me(user), data=orders.OrderData(**data))
    assert field in refused.value.fields
    assert not user.opinion_orders.exists()


def test_a_patient_without_details_is_asked_for_them_first():
    user = UserFactory(kind=User.Kind.PATIENT)
    center = Organization.objects.create(name="C", legal_name="C", slug="c", kind="imaging_center", country="US",
                                         region="TX", time_zone="America/Chicago")
    with pytest.raises(ApplicationError) as refused:
        orders.order_create(actor=me(user), data=orders.OrderData(study=ingest_study(center), subspecialty="neuro",
                                                                  accept_terms=True))
    assert refused.value.code == "details_required"


def test_the_subspecialty_is_suggested_from_the_images():
    user = patient()
    assert orders.suggested_subspecialty(own_study(user, description="CT HEAD")) == "neuro"
    assert orders.suggested_subspecialty(own_study(user, modality="MG", description="MAMMO")) == "breast"


def test_a_shared_studys_original_reader_and_their_group_are_never_offered_the_second_opinion():
    from accounts.models import Organization as Org
    from studies.services import study_access_grant_create
    from tests.factories import MembershipFactory, OrganizationFactory

    center = OrganizationFactory(kind=Org.Kind.IMAGING_CENTER, region="CA", slug="coast")
    poster = MembershipFactory(organization=center, roles=["admin"]).user
    group = OrganizationFactory(kind=Org.Kind.RADIOLOGY_GROUP, slug="first-readers")
    first_reader = make_radiologist(regions=("CA",), subspecialties=("neuro",), group=group)
    colleague = make_radiologist(regions=("CA",), subspecialties=("neuro",), group=group)
    outsider = make_radiologist(regions=("CA",), subspecialties=("neuro",))
    study = ingest_study(center, description="CT HEAD")
    signed_read(poster, study, first_reader.user)
    user = patient()
    study_access_grant_create(actor=None, study=study, user=user, level="full", reason="shared with the patient",
                              expires_at=timezone.now() + timedelta(days=3650))
    order = pay(user, order_for(user, orders.orderable_study(actor=me(user), public_id=study.public_id)))
    assert order.read_request.original_reader == first_reader
    offered = set(Offer.objects.filter(read_request=order.read_request).values_list("radiologist", flat=True))
    assert offered == {outsider.pk}
    assert colleague.pk not in offered


def test_images_a_second_opinion_is_reading_cannot_be_deleted_until_it_is_reported():
    from studies.services import study_soft_delete

    make_radiologist(regions=("CA",), subspecialties=("neuro",))
    user = patient()
    study = own_study(user)
    pay(user, order_for(user, study))
    with pytest.raises(ApplicationError) as refused:
        study_soft_delete(actor=me(user), study=study, reason="not needed")
    assert "second opinion" in refused.value.message
