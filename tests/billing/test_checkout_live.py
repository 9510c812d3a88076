"""The fake Stripe's "Pay" button against a live server, as the browser test will use it: the click posts a
signed ``checkout.session.completed`` to the webhook over HTTP before redirecting, so the payment is settled
when the payer lands on the return page; a refund's ``charge.refunded`` arrives in the background, racing
the refund's own answer, and the payment is refunded once either way."""

from __future__ import annotations

import time

import pytest
import requests

from billing.models import JournalTransaction, Payment
from billing.services import checkout
from tests.billing.checkout_helpers import ORDER, books, kinds, start

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_pay_button_settles_through_the_webhook_before_the_redirect_and_a_refund_is_made_once(
        space, order_hooks, fake_stripe, live_server):
    fake_stripe.webhook_url = f"{live_server.url}/stripe/webhook/"
    payment = start(space)
    clicked = requests.post(payment.checkout_url, data={"pay": "1"}, allow_redirects=False, timeout=30)
    assert clicked.status_code == 303
    assert clicked.headers["Location"].endswith(
        f"/billing/payments/{payment.public_id}/return/?session_id={payment.stripe_checkout_session_id}")
    assert fake_stripe.delivered == [("checkout.session.completed", 200), ("payment_intent.succeeded", 200)]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert order_hooks["settled"] == [(ORDER, Payment.Status.PAID)]
    assert books(space) == (18_000, -18_000)

    checkout.payment_refund(payment=payment, reason="Cancelled by the patient")  # autocommit: sent at once
    _wait_for(lambda: len(fake_stripe.delivered) == 3)
    assert fake_stripe.delivered[2] == ("charge.refunded", 200)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert len(fake_stripe.refunds) == 1
    assert kinds(ORDER) == [JournalTransaction.Kind.PAYMENT_RECEIVED, JournalTransaction.Kind.PAYMENT_REFUNDED]
    assert books(space) == (0, 0)
    assert order_hooks["refunded"] == [(ORDER, Payment.Status.REFUNDED)]
