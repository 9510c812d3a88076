"""Paying an issued invoice by card (issue 15 item 3): a checkout for ``invoice:<public_id>``, settled into
the invoice's ``paid`` state through ``invoice_transition``.

The card payment's posting (Stripe clearing against the center's receivable) is the invoice's payment;
nothing else is posted. An invoice voided or paid by bank transfer while the card payment was under way
answers "refund": the card payment is refunded in full.
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.policy import Actor
from billing import policy
from billing.models import PAYMENT_PAYABLE, Invoice, Payment
from billing.services import checkout, invoices
from core.errors import ApplicationError, NotFound, PermissionDenied

PREFIX = "invoice:"


def invoice_pay_by_card(*, actor: Actor, invoice: Invoice, success_url: str, cancel_url: str,
                        request: HttpRequest | None = None) -> Payment:
    """A center's admins and finance pay its issued invoice by card: a checkout for the invoice's total
    (an open one comes back; a paid one raises ``checkout.AlreadyPaid`` carrying it)."""
    if not actor.has_role(invoice.center_id, *policy.MONEY_ROLES):
        if policy.can_see_invoice(actor, invoice):
            raise PermissionDenied("The center's admins and finance pay its invoices.")
        raise NotFound("Invoice not found.")
    earlier = payment_of(invoice)
    if earlier is not None and earlier.status not in PAYMENT_PAYABLE:
        raise checkout.AlreadyPaid(earlier)
    if invoice.status != Invoice.Status.ISSUED:
        raise ApplicationError.for_field("status", f"This invoice is {invoice.get_status_display().lower()}: "
                                         "only an issued invoice is paid.", code="invalid_transition")
    if invoice.total_cents <= 0:
        raise ApplicationError.for_field("total_cents", "This invoice owes nothing.", code="invalid_invoice")
    return checkout.checkout_start(payer=invoice.center, reference=f"{PREFIX}{invoice.public_id}",
                                   description=f"ReadRoom invoice {invoice.number}", amount_cents=invoice.total_cents,
                                   currency=invoice.currency, success_url=success_url, cancel_url=cancel_url,
                                   customer_email=actor.user.email if actor.user else "")


def invoice_card_settled(payment: Payment) -> str | None:
    """Settled-hook: the invoice is paid (its state function); gone meanwhile (void, paid otherwise): refund."""
    invoice = Invoice.objects.filter(public_id=payment.reference.removeprefix(PREFIX)).first()
    if invoice is None or invoice.status != Invoice.Status.ISSUED or invoice.total_cents != payment.amount_cents:
        return checkout.REFUND
    paid_by = payment.stripe_payment_intent_id or f"test payment {payment.public_id}"
    invoices.invoice_transition(invoice=invoice, to=Invoice.Status.PAID, actor=None,
                                reason=f"Paid by card ({paid_by})",
                                fields={"paid_at": payment.paid_at, "paid_reference": f"Card: {paid_by}"[:200]})
    return None


def payment_of(invoice: Invoice) -> Payment | None:
    """The invoice's card payment that did not expire, if any."""
    return Payment.objects.exclude(status=Payment.Status.EXPIRED).filter(
        reference=f"{PREFIX}{invoice.public_id}").first()


def register() -> None:
    """At start-up (``BillingConfig.ready``)."""
    checkout.on_payment_settled(invoice_card_settled, prefix=PREFIX)
