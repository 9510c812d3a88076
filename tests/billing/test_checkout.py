"""Card payments through Stripe Checkout (issue 17 items 3-4, "Bad input"), against the fake Stripe: the hosted
page, settling once by webhook or by the payer's return, paying twice, a cancelled order refunded on
settlement, refunds retried and confirmed, expired sessions, and the ledger after each."""

from __future__ import annotations

import pytest
import requests
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from billing.models import JournalTransaction, Payment, StripeEvent
from billing.services import checkout
from billing.stripe_client import client as stripe_sdk
from core.errors import ApplicationError
from tests.billing.checkout_helpers import ORDER, SUCCESS_URL, books, kinds, start
from tests.billing.fake_stripe import deliver
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Status = Payment.Status


@pytest.fixture
def webhook_client():
    return Client()


def _session(fake, payment) -> dict:
    return fake.sessions[payment.stripe_checkout_session_id]


def test_the_hosted_page_pays_and_the_webhook_settles_once_then_the_return_changes_nothing(
        cast, space, order_hooks, fake_stripe, login, webhook_client, django_capture_on_commit_callbacks):
    payment = start(space)
    assert (payment.status, payment.provider) == (Status.OPEN, "stripe")
    session = _session(fake_stripe, payment)
    assert (session["amount_total"], session["currency"], session["mode"]) == (18_000, "usd", "payment")
    assert session["metadata"]["reference"] == ORDER
    assert ("POST", "/v1/checkout/sessions", f"payment:{payment.public_id}:checkout") in fake_stripe.requests
    page = requests.get(payment.checkout_url, timeout=5)
    assert page.status_code == 200
    assert ">Pay</button>" in page.text
    assert "180.00 USD" in page.text
    clicked = requests.post(payment.checkout_url, data={"pay": "1"}, allow_redirects=False, timeout=5)
    assert clicked.status_code == 303
    return_path = f"/billing/payments/{payment.public_id}/return/?session_id={payment.stripe_checkout_session_id}"
    assert clicked.headers["Location"] == f"http://testserver{return_path}"
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    payment.refresh_from_db()
    assert payment.status == Status.PAID
    assert payment.stripe_payment_intent_id == _session(fake_stripe, payment)["payment_intent"]
    assert order_hooks["settled"] == [(ORDER, Status.PAID)]
    assert books(space) == (18_000, -18_000)  # a prepayment: the read's posting will debit the receivable
    # The payer comes back from Stripe: already settled, nothing more is posted or called.
    answer = login(cast.patient).get(return_path)
    assert (answer.status_code, answer.url) == (302, SUCCESS_URL)
    assert kinds(ORDER) == [JournalTransaction.Kind.PAYMENT_RECEIVED]
    assert len(order_hooks["settled"]) == 1


def test_the_return_settles_first_and_the_late_webhook_is_a_no_op(
        cast, space, order_hooks, fake_stripe, login, webhook_client, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    # The query string's session id is not trusted: the stored one is re-read from Stripe.
    answer = login(cast.patient).get(reverse("payment_return", args=[payment.public_id]) + "?session_id=cs_forged")
    assert answer.url == SUCCESS_URL
    payment.refresh_from_db()
    assert payment.status == Status.PAID
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    notes = dict(StripeEvent.objects.values_list("type", "note"))
    assert notes == {"checkout.session.completed": f"Payment {ORDER} is paid.",
                     "payment_intent.succeeded": f"Payment {ORDER} is paid."}
    assert kinds(ORDER) == [JournalTransaction.Kind.PAYMENT_RECEIVED]
    assert order_hooks["settled"] == [(ORDER, Status.PAID)]
    assert books(space) == (18_000, -18_000)


def test_the_return_page_is_the_payers_alone(cast, space, fake_stripe, login):
    payment = start(space)
    url = reverse("payment_return", args=[payment.public_id])
    assert login(UserFactory(email="another-patient@example.test")).get(url).status_code == 404
    assert login(cast.center_admin).get(url).status_code == 404
    unpaid = login(cast.patient).get(url, follow=False)
    assert unpaid.url == SUCCESS_URL  # not paid yet: on to the order page, which says it is being confirmed
    payment.refresh_from_db()
    assert payment.status == Status.OPEN


def test_paying_twice_reuses_the_open_session_then_refuses_with_the_existing_payment(
        space, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    first = start(space)
    again = start(space)
    assert (again.pk, again.checkout_url) == (first.pk, first.checkout_url)
    assert len(fake_stripe.sessions) == 1
    fake_stripe.pay(first.stripe_checkout_session_id)
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    with pytest.raises(checkout.AlreadyPaid) as refused:
        start(space)
    assert refused.value.code == "already_paid"
    assert refused.value.payment.pk == first.pk
    assert "$180.00" in refused.value.message
    assert (len(fake_stripe.sessions), len(fake_stripe.payment_intents)) == (1, 1)
    assert Payment.objects.count() == 1
    assert books(space) == (18_000, -18_000)


def test_a_session_paid_while_no_webhook_came_is_found_when_paying_again(space, order_hooks, fake_stripe):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    fake_stripe.take_events()  # lost
    with pytest.raises(checkout.AlreadyPaid) as refused:
        start(space)
    assert refused.value.payment.status == Status.PAID
    assert order_hooks["settled"] == [(ORDER, Status.PAID)]
    assert len(fake_stripe.sessions) == 1


def test_an_order_cancelled_before_the_payment_settled_is_refunded_automatically(
        space, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    order_hooks["answer"] = checkout.REFUND
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    payment.refresh_from_db()
    assert payment.status == Status.REFUNDED
    assert payment.refund_reason == checkout.REFUND_REASON_CANCELLED
    (refund,) = fake_stripe.refunds.values()
    assert (refund["amount"], refund["payment_intent"], refund["status"]) == (
        18_000, payment.stripe_payment_intent_id, "succeeded")
    assert payment.stripe_refund_id == refund["id"]
    assert order_hooks["refunded"] == [(ORDER, Status.REFUNDED)]
    assert kinds(ORDER) == [JournalTransaction.Kind.PAYMENT_RECEIVED, JournalTransaction.Kind.PAYMENT_REFUNDED]
    assert books(space) == (0, 0)
    # Stripe's charge.refunded confirms what is already recorded: nothing changes.
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events("charge.refunded"),
            fake_stripe)
    assert len(kinds(ORDER)) == 2
    assert len(order_hooks["refunded"]) == 1


@pytest.fixture
def paid(space, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    payment.refresh_from_db()
    assert payment.status == Status.PAID
    return payment


def test_a_refund_whose_answer_was_lost_is_retried_with_the_same_key_and_made_once(
        space, paid, order_hooks, fake_stripe, django_capture_on_commit_callbacks):
    fake_stripe.fail_next("/v1/refunds", after_processing=True)  # Stripe refunds, the answer is lost
    with django_capture_on_commit_callbacks(execute=True):
        pending = checkout.payment_refund(payment=paid, reason="Patient cancelled before a reader claimed it")
    assert pending.status == Status.REFUND_PENDING
    paid.refresh_from_db()
    assert paid.status == Status.REFUND_PENDING
    assert "APIError" in paid.last_error
    assert books(space) == (18_000, -18_000)  # not reversed until Stripe says it is refunded
    fake_stripe.take_events()  # its charge.refunded is late; the hourly run comes first
    # Asking again, by the service or the hourly run, makes no second refund.
    assert checkout.payment_refund(payment=paid, reason="again").status == Status.REFUND_PENDING
    assert checkout.refunds_retry() == 1
    paid.refresh_from_db()
    assert (paid.status, paid.refund_attempts, paid.last_error) == (Status.REFUNDED, 2, "")
    assert len(fake_stripe.refunds) == 1
    keys = [key for method, path, key in fake_stripe.requests if path == "/v1/refunds"]
    assert keys == [f"payment:{paid.public_id}:refund"] * 2
    assert books(space) == (0, 0)
    assert order_hooks["refunded"] == [(ORDER, Status.REFUNDED)]
    assert checkout.payment_refund(payment=paid, reason="third time").status == Status.REFUNDED
    assert len(kinds(ORDER)) == 2


def test_a_pending_refund_is_confirmed_by_charge_refunded(
        space, paid, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    fake_stripe.refund_status = "pending"
    with django_capture_on_commit_callbacks(execute=True):
        checkout.payment_refund(payment=paid, reason="No reader claimed it in time")
    paid.refresh_from_db()
    assert paid.status == Status.REFUND_PENDING
    assert paid.stripe_refund_id in fake_stripe.refunds
    assert books(space) == (18_000, -18_000)
    fake_stripe.settle_refund(paid.stripe_refund_id)
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events("charge.refunded"),
            fake_stripe)
    paid.refresh_from_db()
    assert paid.status == Status.REFUNDED
    assert books(space) == (0, 0)
    assert order_hooks["refunded"] == [(ORDER, Status.REFUNDED)]


def test_a_refund_made_in_stripes_dashboard_is_recorded_from_charge_refunded(
        space, paid, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    stripe_sdk().v1.refunds.create({"payment_intent": paid.stripe_payment_intent_id})
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events("charge.refunded"),
            fake_stripe)
    paid.refresh_from_db()
    assert (paid.status, paid.refund_reason) == (Status.REFUNDED, "Refunded in Stripe.")
    assert books(space) == (0, 0)


def test_an_expired_session_expires_the_payment_and_the_next_checkout_starts_afresh(
        space, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.expire(payment.stripe_checkout_session_id)
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    payment.refresh_from_db()
    assert (payment.status, payment.expired_at is not None) == (Status.EXPIRED, True)
    fresh = start(space)
    assert fresh.pk != payment.pk
    assert fresh.stripe_checkout_session_id != payment.stripe_checkout_session_id
    assert fresh.status == Status.OPEN
    assert order_hooks["settled"] == []
    assert not JournalTransaction.objects.exists()
    with pytest.raises(ApplicationError) as refused:
        checkout.payment_refund(payment=payment, reason="nothing was paid")
    assert refused.value.fields == {"status": ["This payment is expired unpaid: nothing to refund."]}


def test_a_webhook_for_a_session_that_is_not_ours_changes_nothing(
        space, order_hooks, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    theirs = stripe_sdk().v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://elsewhere.test/ok",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500,
                                                      "product_data": {"name": "Not ours"}}}]})
    fake_stripe.pay(theirs.id)
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    event = StripeEvent.objects.get(type="checkout.session.completed")
    assert event.processed_at is not None
    assert event.note.startswith(f"Refused: No payment of ReadRoom's has the checkout session '{theirs.id}'")
    intent = StripeEvent.objects.get(type="payment_intent.succeeded")
    assert intent.note == f"Not a payment of ours: {intent.object_id}."
    assert not Payment.objects.exists()
    assert not JournalTransaction.objects.exists()
    assert order_hooks["settled"] == []


def test_a_session_for_another_amount_settles_nothing(
        cast, space, order_hooks, fake_stripe, login, webhook_client, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    _session(fake_stripe, payment)["amount_total"] = 100
    # The session's event alone (its intent's check has a test of its own: test_stripe_payment_events.py).
    deliver(webhook_client, django_capture_on_commit_callbacks, fake_stripe.take_events("checkout.session.completed"),
            fake_stripe)
    assert "is for 100 USD" in StripeEvent.objects.get().note
    login(cast.patient).get(reverse("payment_return", args=[payment.public_id]))
    payment.refresh_from_db()
    assert payment.status == Status.OPEN
    assert not JournalTransaction.objects.exists()
    assert order_hooks["settled"] == []
    assert AuditEvent.objects.filter(action="payment.mismatch", object_id=str(payment.public_id)).count() == 2
    with pytest.raises(ApplicationError) as refused:
        checkout.checkout_settle(payment.stripe_checkout_session_id)
    assert (refused.value.code, list(refused.value.fields)) == ("amount_mismatch", ["amount_total"])


@pytest.mark.parametrize(("field", "value"), [
    ("amount_cents", 0), ("amount_cents", -500), ("amount_cents", 12.5), ("amount_cents", True),
    ("currency", "usd"), ("currency", "DOLLARS"), ("reference", ""), ("reference", "x" * 101),
    ("description", " "), ("success_url", "/orders/1/"), ("cancel_url", "javascript:alert(1)"),
    ("customer_email", "not-an-email"), ("payer", None),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(space, fake_stripe, field, value):
    arguments = {"payer": space, "reference": ORDER, "description": "Second opinion", "amount_cents": 18_000,
                 "currency": "USD", "success_url": SUCCESS_URL, "cancel_url": SUCCESS_URL,
                 "customer_email": "patient@example.test", field: value}
    with pytest.raises(ApplicationError) as refused:
        checkout.checkout_start(**arguments)
    assert list(refused.value.fields) == [field]
    assert not Payment.objects.exists()
    assert fake_stripe.sessions == {}


def test_a_stripe_failure_at_the_start_leaves_nothing_half_written(space, fake_stripe):
    fake_stripe.fail_next("/v1/checkout/sessions")
    with pytest.raises(ApplicationError) as refused:
        start(space)
    assert (refused.value.code, refused.value.status_code) == ("stripe_error", 502)
    assert not Payment.objects.exists()
    assert start(space).status == Status.OPEN  # the next try works


def test_an_open_payment_for_another_amount_is_refused(space, fake_stripe):
    start(space)
    with pytest.raises(ApplicationError) as refused:
        start(space, amount=9_000)
    assert (refused.value.code, list(refused.value.fields)) == ("payment_mismatch", ["amount_cents"])
    assert Payment.objects.count() == 1


def test_charge_refunded_for_a_charge_that_is_not_ours_changes_nothing(
        space, paid, fake_stripe, webhook_client, django_capture_on_commit_callbacks):
    unknown = fake_stripe._event("charge.refunded", {"id": "ch_unknown", "object": "charge", "amount": 100})
    theirs = stripe_sdk().v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://elsewhere.test/ok",
        "line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500,
                                                      "product_data": {"name": "Not ours"}}}]})
    fake_stripe.pay(theirs.id)
    fake_stripe.take_events()
    stripe_sdk().v1.refunds.create({"payment_intent": fake_stripe.sessions[theirs.id]["payment_intent"]})
    deliver(webhook_client, django_capture_on_commit_callbacks, [unknown, *fake_stripe.take_events()], fake_stripe)
    notes = sorted(StripeEvent.objects.values_list("note", flat=True))
    assert notes[0] == "Not a charge Stripe knows: ch_unknown."
    assert notes[1].startswith("Not a charge of ours: ch_")
    paid.refresh_from_db()
    assert paid.status == Status.PAID
    assert books(space) == (18_000, -18_000)
