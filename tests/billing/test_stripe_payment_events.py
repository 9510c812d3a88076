"""Card payments by their PaymentIntent events (issue 15 item 5), against the fake Stripe: a succeeded intent
settles a payment whose session event never came, in any order and once; a declined card marks the payment
failed and tells the payer, and a retry on the same checkout pays it; ``invoice.paid`` is recorded only."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, Notification
from billing.models import Invoice, JournalTransaction, Payment, StripeEvent
from tests.billing.checkout_helpers import ORDER, books, kinds, start
from tests.billing.fake_stripe import deliver

pytestmark = pytest.mark.django_db
Status = Payment.Status
RECEIVED = JournalTransaction.Kind.PAYMENT_RECEIVED


def _send(events, fake, capture):
    deliver(Client(), capture, events, fake)


def test_payment_intent_succeeded_settles_a_payment_whose_session_event_was_lost(
        space, order_hooks, fake_stripe, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    completed, succeeded = fake_stripe.take_events()
    assert (completed["type"], succeeded["type"]) == ("checkout.session.completed", "payment_intent.succeeded")
    _send([succeeded], fake_stripe, django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    assert (payment.status, payment.stripe_payment_intent_id) == (Status.PAID, succeeded["data"]["object"]["id"])
    assert StripeEvent.objects.get().note == f"Payment {ORDER} is paid."
    assert order_hooks["settled"] == [(ORDER, Status.PAID)]
    assert books(space) == (18_000, -18_000)
    # The session's event comes late, then both again (redelivered): nothing more is posted or called.
    again = [completed, succeeded, dict(succeeded, id="evt_redelivered")]
    _send(again, fake_stripe, django_capture_on_commit_callbacks)
    assert kinds(ORDER) == [RECEIVED]
    assert len(order_hooks["settled"]) == 1
    assert books(space) == (18_000, -18_000)


def test_a_stale_succeeded_event_is_not_trusted_the_intent_is_re_read(
        space, order_hooks, fake_stripe, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    _, succeeded = fake_stripe.take_events()
    intent = fake_stripe.payment_intents[succeeded["data"]["object"]["id"]]
    intent.update(status="processing", amount_received=0)  # what Stripe says now wins over the payload
    _send([succeeded], fake_stripe, django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    assert payment.status == Status.OPEN
    assert kinds(ORDER) == []


def test_an_intent_that_received_another_amount_settles_nothing_and_is_audited(
        space, order_hooks, fake_stripe, django_capture_on_commit_callbacks):
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    _, succeeded = fake_stripe.take_events()
    fake_stripe.payment_intents[succeeded["data"]["object"]["id"]]["amount_received"] = 100
    _send([succeeded], fake_stripe, django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    assert payment.status == Status.OPEN
    assert StripeEvent.objects.get().note.startswith("Refused: Stripe's payment intent")
    assert AuditEvent.objects.filter(action="payment.mismatch", object_id=str(payment.public_id)).exists()
    assert order_hooks["settled"] == []


def test_a_declined_card_marks_the_payment_failed_tells_the_payer_once_and_a_retry_pays(
        cast, space, order_hooks, fake_stripe, django_capture_on_commit_callbacks):
    payment = start(space)
    declined = fake_stripe.decline(payment.stripe_checkout_session_id, message="Your card has insufficient funds.",
                                   decline_code="insufficient_funds")
    fake_stripe.take_events()
    _send([declined, dict(declined, id="evt_redelivered")], fake_stripe, django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    assert payment.status == Status.FAILED
    assert payment.last_error.endswith("Your card has insufficient funds.")
    assert payment.stripe_payment_intent_id == declined["data"]["object"]["id"]
    (notice,) = Notification.objects.filter(user=cast.patient)
    assert "did not go through" in notice.title
    assert "insufficient funds" in notice.body
    assert [m.to for m in mail.outbox] == [["patient@example.test"]]
    assert AuditEvent.objects.filter(action="payment.failed", object_id=str(payment.public_id)).count() == 1
    assert kinds(ORDER) == []
    assert order_hooks["settled"] == []
    # Paying again reuses the same checkout (Stripe keeps the session open), and the retry pays it.
    assert start(space).checkout_url == payment.checkout_url
    fake_stripe.pay(payment.stripe_checkout_session_id)
    succeeded = fake_stripe.take_events("payment_intent.succeeded")
    _send(succeeded + [dict(declined, id="evt_late_failure")], fake_stripe, django_capture_on_commit_callbacks)
    payment.refresh_from_db()
    assert (payment.status, payment.last_error) == (Status.PAID, "")
    assert kinds(ORDER) == [RECEIVED]
    assert order_hooks["settled"] == [(ORDER, Status.PAID)]
    assert Notification.objects.filter(user=cast.patient).count() == 1  # the late failure told nobody
    assert books(space) == (18_000, -18_000)


def test_a_second_decline_is_a_second_failure_the_payer_hears_of(
        cast, space, fake_stripe, django_capture_on_commit_callbacks):
    payment = start(space)
    first = fake_stripe.decline(payment.stripe_checkout_session_id)
    second = fake_stripe.decline(payment.stripe_checkout_session_id, message="Your card has expired.")
    fake_stripe.take_events()
    _send([second, first], fake_stripe, django_capture_on_commit_callbacks)  # both re-read: the latest attempt
    payment.refresh_from_db()
    assert payment.status == Status.FAILED
    assert payment.last_error.endswith("Your card has expired.")
    assert Notification.objects.filter(user=cast.patient).count() == 1
    third = fake_stripe.decline(payment.stripe_checkout_session_id, message="Do not honor.")
    fake_stripe.take_events()
    _send([third], fake_stripe, django_capture_on_commit_callbacks)
    assert Notification.objects.filter(user=cast.patient).count() == 2


def test_a_declined_invoice_payment_tells_the_centers_money_people(
        cast, fake_stripe, django_capture_on_commit_callbacks):
    from billing.services import checkout

    payment = checkout.checkout_start(payer=cast.center, reference="test-order:center", description="Invoice",
                                      amount_cents=5_000, currency="USD", success_url="http://testserver/i/",
                                      cancel_url="http://testserver/billing/invoices/x/")
    _send([fake_stripe.decline(payment.stripe_checkout_session_id)], fake_stripe, django_capture_on_commit_callbacks)
    told = set(Notification.objects.values_list("user__email", flat=True))
    assert {cast.center_admin.email, cast.center_finance.email} <= told
    assert cast.technologist.email not in told
    assert Notification.objects.get(user=cast.center_admin).url == "/billing/invoices/x/"


def test_intents_that_are_not_ours_are_recorded_and_change_nothing(space, fake_stripe,
                                                                 django_capture_on_commit_callbacks):
    unknown = fake_stripe._event("payment_intent.succeeded", {"id": "pi_nobody", "object": "payment_intent"})
    payment = start(space)
    fake_stripe.pay(payment.stripe_checkout_session_id)
    _, succeeded = fake_stripe.take_events()
    fake_stripe.payment_intents[succeeded["data"]["object"]["id"]]["metadata"] = {}  # made elsewhere
    _send([unknown, succeeded], fake_stripe, django_capture_on_commit_callbacks)
    notes = list(StripeEvent.objects.order_by("id").values_list("note", flat=True))
    assert notes == ["Not a payment intent Stripe knows: pi_nobody.",
                     f"Not a payment of ours: {succeeded['data']['object']['id']}."]
    assert Payment.objects.get().status == Status.OPEN


def test_invoice_paid_is_recorded_with_its_reason_and_marks_no_invoice_paid(fake_stripe,
                                                                          django_capture_on_commit_callbacks):
    event = fake_stripe._event("invoice.paid", {"id": "in_123", "object": "invoice", "amount_paid": 5000,
                                                "currency": "usd", "status": "paid"})
    _send([event], fake_stripe, django_capture_on_commit_callbacks)
    stored = StripeEvent.objects.get()
    assert stored.processed_at is not None
    assert stored.note.startswith("Recorded only: Stripe invoice in_123 of 5000 USD was not issued by ReadRoom")
    assert not Invoice.objects.filter(status=Invoice.Status.PAID).exists()
