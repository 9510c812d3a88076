"""Card payment pages: the return from Stripe Checkout, the test-payment page (Stripe off), and an
invoice's "Pay by card". Thin: one service call each; who may act is decided by the selectors and services."""

from __future__ import annotations

import contextlib

import stripe
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, page_errors
from billing import selectors, stripe_client
from billing.models import PAYMENT_PAYABLE, Payment
from billing.services import checkout, invoice_cards
from core.errors import ApplicationError, NotFound


@login_required
@require_http_methods(["GET"])
@page_errors
def payment_return(request, public_id):
    """Stripe sends the payer here once paid: settle now (the webhook may not have come yet), then go on to
    the page that asked for the payment. The session is the stored one, never the query string's."""
    actor = actor_of(request)
    payment = selectors.payment_get(actor=actor, public_id=public_id)
    if payment.status in PAYMENT_PAYABLE and payment.provider == Payment.Provider.STRIPE:
        # Stripe unreachable or the session refused: the webhook settles it; the page says it is being confirmed.
        with contextlib.suppress(stripe.StripeError, ApplicationError):
            payment = checkout.checkout_settle(payment.stripe_checkout_session_id)
    if payment.status == Payment.Status.FAILED:
        messages.error(request, f"Your card was not accepted ({payment.last_error.partition(': ')[2] or 'declined'}); "
                       "you can pay again with another card.")
    elif payment.status == Payment.Status.OPEN:
        messages.info(request, "Your payment is being confirmed; this page updates when Stripe tells us.")
    return redirect(payment.success_url)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def payment_test_pay(request, public_id):
    """Stripe off: say plainly that no card is taken, and let the payer confirm a test payment."""
    actor = actor_of(request)
    payment = selectors.payment_get(actor=actor, public_id=public_id)
    if stripe_client.enabled() or payment.provider != Payment.Provider.NONE:
        raise NotFound("Payment not found.")
    if request.method == "POST":
        payment = checkout.checkout_confirm_test_payment(actor=actor, payment=payment)
        messages.success(request, "Test payment recorded (no card was charged).")
        return redirect(payment.success_url)
    return render(request, "billing/payment_test.html", {"payment": payment})


@login_required
@require_POST
@page_errors
def invoice_pay_card(request, public_id):
    """A center's admins and finance pay an issued invoice by card: off to the checkout page."""
    actor = actor_of(request)
    invoice = selectors.invoice_get(actor=actor, public_id=public_id)
    back = request.build_absolute_uri(reverse("invoice_detail", args=[invoice.public_id]))
    try:
        payment = invoice_cards.invoice_pay_by_card(actor=actor, invoice=invoice, success_url=back, cancel_url=back,
                                                    request=request)
    except checkout.AlreadyPaid as paid:
        messages.info(request, paid.message)
        return redirect("invoice_detail", public_id=invoice.public_id)
    except ApplicationError as refusal:
        if refusal.status_code in (403, 404):
            raise
        messages.error(request, refusal.message)
        return redirect("invoice_detail", public_id=invoice.public_id)
    return redirect(payment.checkout_url)
