"""Celery tasks of billing: thin, idempotent wrappers around services."""

from __future__ import annotations

from celery import shared_task

from billing.services import checkout, transfers, webhooks


@shared_task(name="billing.run_transfers", acks_late=True)
def run_transfers() -> dict:
    """Hourly: finish stored Stripe events still open (an account may have been enabled), then send every
    earning not yet transferred (held ones whose payee can now be paid) and every refund still pending;
    a retry reuses each idempotency key."""
    finished = webhooks.events_process_open()
    return {**transfers.transfers_run(), "events_finished": finished, "refunds_done": checkout.refunds_retry()}


@shared_task(name="billing.process_stripe_event", acks_late=True)
def process_stripe_event(event_pk: int) -> str:
    """Act on one stored Stripe event (once; a failed attempt stays open for the hourly run)."""
    event = webhooks.event_process(event_pk)
    return event.note if event is not None else ""


@shared_task(name="billing.send_refund", acks_late=True)
def send_refund(payment_pk: int) -> str:
    """Ask Stripe for a pending refund (after the commit that recorded it; the hourly run retries)."""
    payment = checkout.refund_send(payment_pk)
    return payment.status if payment is not None else ""
