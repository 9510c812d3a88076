"""Paying an issued invoice by card (issue 15 item 3): the center's finance goes through Stripe Checkout (or a
test payment with Stripe off); settling marks the invoice paid through its state function, once, and the
payment is never a line of the next invoice. An invoice voided meanwhile gets its card payment refunded."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.policy import actor_for_user
from billing.models import Invoice, Payment
from billing.services import invoices, ledger
from tests.billing.checkout_helpers import books
from tests.billing.fake_stripe import deliver
from tests.marketplace.helpers import make_radiologist

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(cast, finance):
    reader = make_radiologist(name="Ana Núñez")
    ledger.post_read_signed(reference="read-card-1", center=cast.center, radiologist=reader, group=None,
                            gross_cents=3500, fee_basis_points=1500, currency="USD",
                            details={"accession": "ACC1", "modality": "CT", "priority": "routine"})
    today = timezone.localdate(timezone=ZoneInfo(cast.center.time_zone))
    draft = invoices.invoice_generate(center=cast.center, year=today.year, month=today.month)
    return invoices.invoice_issue(actor=actor_for_user(finance), invoice=draft)


def _pay_url(invoice):
    return reverse("invoice_pay_card", args=[invoice.public_id])


def test_center_finance_pays_an_issued_invoice_through_stripe_checkout(
        cast, issued, login, fake_stripe, django_capture_on_commit_callbacks):
    center_finance = login(cast.center_finance)
    detail = center_finance.get(reverse("invoice_detail", args=[issued.public_id])).content.decode()
    assert "Pay by card" in detail
    answer = center_finance.post(_pay_url(issued))
    payment = Payment.objects.get()
    assert answer.url == payment.checkout_url
    assert answer.url.startswith(f"{fake_stripe.url}/pay/cs_test_")
    assert (payment.payer, payment.reference, payment.amount_cents) == (
        cast.center, f"invoice:{issued.public_id}", 3500)
    session = fake_stripe.sessions[payment.stripe_checkout_session_id]
    assert session["success_url"].startswith(f"http://testserver/billing/payments/{payment.public_id}/return/")
    assert session["cancel_url"] == f"http://testserver{reverse('invoice_detail', args=[issued.public_id])}"
    fake_stripe.pay(payment.stripe_checkout_session_id)
    deliver(Client(), django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    issued.refresh_from_db()
    payment.refresh_from_db()
    assert (issued.status, payment.status) == (Invoice.Status.PAID, Payment.Status.PAID)
    assert issued.paid_reference == f"Card: {payment.stripe_payment_intent_id}"
    assert books(cast.center) == (3500, 0)  # the read owed, then paid by card: nothing outstanding
    # The payment is no line of the next month's invoice.
    today = timezone.localdate(timezone=ZoneInfo(cast.center.time_zone))
    following = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    assert not invoices.invoice_generate(center=cast.center, year=following.year, month=following.month).lines.exists()
    # Paying again shows the payment already made, and charges nothing.
    again = center_finance.post(_pay_url(issued), follow=True)
    assert "This was already paid on" in again.content.decode()
    assert "Card payment $35.00: paid" in again.content.decode()
    assert (Payment.objects.count(), len(fake_stripe.sessions)) == (1, 1)


def test_an_invoice_voided_while_its_card_payment_was_under_way_is_refunded(
        cast, issued, finance, login, fake_stripe, django_capture_on_commit_callbacks):
    login(cast.center_admin).post(_pay_url(issued))
    payment = Payment.objects.get()
    invoices.invoice_void(actor=actor_for_user(finance), invoice=issued, reason="Wrong center")
    fake_stripe.pay(payment.stripe_checkout_session_id)
    deliver(Client(), django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    payment.refresh_from_db()
    issued.refresh_from_db()
    assert (issued.status, payment.status) == (Invoice.Status.VOID, Payment.Status.REFUNDED)
    assert len(fake_stripe.refunds) == 1
    assert books(cast.center) == (0, 3500)  # the read is still owed; the card payment went back


def test_with_stripe_off_the_invoice_is_paid_by_a_test_payment(cast, issued, login, stripe_off):
    center_finance = login(cast.center_finance)
    answer = center_finance.post(_pay_url(issued))
    payment = Payment.objects.get()
    assert answer.url == reverse("payment_test_pay", args=[payment.public_id])
    assert "takes no card payments" in center_finance.get(answer.url).content.decode()
    done = center_finance.post(answer.url)
    assert done.url == f"http://testserver{reverse('invoice_detail', args=[issued.public_id])}"
    issued.refresh_from_db()
    assert (issued.status, issued.paid_reference) == (Invoice.Status.PAID, f"Card: test payment {payment.public_id}")
    page = center_finance.get(reverse("invoice_detail", args=[issued.public_id])).content.decode()
    assert "a test payment: no card was charged" in page


def test_only_the_centers_money_people_pay_and_only_an_issued_invoice(cast, issued, finance, login, stripe_off):
    assert login(cast.technologist).post(_pay_url(issued)).status_code == 404
    assert login(cast.other_admin).post(_pay_url(issued)).status_code == 404
    assert login(finance).post(_pay_url(issued)).status_code == 403  # platform finance sees it, the center pays
    assert login(cast.center_finance).get(_pay_url(issued)).status_code == 405
    invoices.invoice_void(actor=actor_for_user(finance), invoice=issued, reason="Reissued")
    refused = login(cast.center_finance).post(_pay_url(issued), follow=True)
    assert "This invoice is void: only an issued invoice is paid." in refused.content.decode()
    assert not Payment.objects.exists()
