"""Stripe off (the embedded default): the checkout page is ReadRoom's own, says plainly that no card is
taken, and records a confirmed *test payment* (provider "none") with the same postings and hooks; its
refund is recorded in the ledger only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.policy import actor_for_user
from billing.models import JournalTransaction, Payment
from billing.services import checkout
from core.errors import NotFound
from tests.billing.checkout_helpers import ORDER, SUCCESS_URL, books, kinds, start
from tests.billing.fake_stripe import API_KEY
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Status = Payment.Status


def test_the_test_payment_page_says_no_card_is_taken_and_records_a_test_payment(
        cast, space, order_hooks, stripe_off, login):
    payment = start(space)
    assert (payment.provider, payment.checkout_url) == (
        "none", reverse("payment_test_pay", args=[payment.public_id]))
    patient = login(cast.patient)
    page = patient.get(payment.checkout_url).content.decode()
    assert "takes no card payments" in page
    assert "no card is charged and no money moves" in page
    assert "Confirm test payment" in page
    assert "$180.00" in page
    answer = patient.post(payment.checkout_url)
    assert (answer.status_code, answer.url) == (302, SUCCESS_URL)
    payment.refresh_from_db()
    assert (payment.status, payment.provider, payment.stripe_payment_intent_id) == (Status.PAID, "none", "")
    assert order_hooks["settled"] == [(ORDER, Status.PAID)]
    assert books(space) == (18_000, -18_000)
    # Confirming again (a double click, the back button) changes nothing.
    assert patient.post(payment.checkout_url).url == SUCCESS_URL
    assert kinds(ORDER) == [JournalTransaction.Kind.PAYMENT_RECEIVED]
    assert len(order_hooks["settled"]) == 1
    assert "This payment is paid" in patient.get(payment.checkout_url).content.decode()
    with pytest.raises(checkout.AlreadyPaid):
        start(space)


def test_a_test_payment_is_refunded_in_the_ledger_only(space, order_hooks, stripe_off, cast):
    payment = start(space)
    checkout.checkout_confirm_test_payment(actor=actor_for_user(cast.patient), payment=payment)
    refunded = checkout.payment_refund(payment=payment, reason="Patient cancelled")
    assert (refunded.status, refunded.refund_reason) == (Status.REFUNDED, "Patient cancelled")
    assert kinds(ORDER) == [JournalTransaction.Kind.PAYMENT_RECEIVED, JournalTransaction.Kind.PAYMENT_REFUNDED]
    assert books(space) == (0, 0)
    assert order_hooks["refunded"] == [(ORDER, Status.REFUNDED)]


def test_a_cancelled_order_paid_by_test_payment_is_refunded_at_once(cast, space, order_hooks, stripe_off, login):
    order_hooks["answer"] = checkout.REFUND
    payment = start(space)
    login(cast.patient).post(payment.checkout_url)
    payment.refresh_from_db()
    assert payment.status == Status.REFUNDED
    assert books(space) == (0, 0)


def test_the_test_payment_page_is_the_payers_and_only_while_stripe_is_off(
        cast, space, stripe_off, login, fake_stripe_server, settings):
    payment = start(space)
    url = payment.checkout_url
    assert login(UserFactory(email="another-patient@example.test")).post(url).status_code == 404
    assert login(cast.center_finance).get(url).status_code == 404
    with pytest.raises(NotFound):
        checkout.checkout_confirm_test_payment(actor=actor_for_user(cast.center_admin), payment=payment)
    settings.STRIPE_SECRET_KEY = API_KEY  # switched on: no more test payments
    assert login(cast.patient).post(url).status_code == 404
    payment.refresh_from_db()
    assert payment.status == Status.OPEN
    assert not JournalTransaction.objects.exists()


def test_a_test_payment_left_open_is_given_up_when_stripe_is_switched_on(space, fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = ""
    old = start(space)
    assert old.provider == "none"
    settings.STRIPE_SECRET_KEY = API_KEY
    fresh = start(space)
    old.refresh_from_db()
    assert (old.status, fresh.provider, fresh.status) == (Status.EXPIRED, "stripe", Status.OPEN)
