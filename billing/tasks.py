"""Celery tasks of billing: thin, idempotent wrappers around services."""

from __future__ import annotations

from celery import shared_task

from billing.services import transfers, webhooks


@shared_task(name="billing.run_transfers", acks_late=True)
def run_transfers() -> dict:
    """Hourly: finish stored Stripe events still open (an account may have been enabled), then send every
    earning not yet transferred (held ones whose payee can now be paid); a retry reuses each idempotency key."""
    finished = webhooks.events_process_open()
    return {**transfers.transfers_run(), "events_finished": finished}


@shared_task(name="billing.process_stripe_event", acks_late=True)
def process_stripe_event(event_pk: int) -> str:
    """Act on one stored Stripe event (once; a failed attempt stays open for the hourly run)."""
    event = webhooks.event_process(event_pk)
    return event.note if event is not None else ""
