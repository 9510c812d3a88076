"""Celery tasks of the marketplace: thin, idempotent wrappers around services."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from marketplace.services import clock


@shared_task(name="marketplace.sla_tick", acks_late=True)
def sla_tick() -> dict:
    """Every minute: offers to readers who came on shift, widening, escalation, expiry, late marks."""
    result = clock.sla_tick()
    return {k: v for k, v in asdict(result).items() if k != "ids"}


@shared_task(name="marketplace.deliver_webhook", acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    """Send one outbox row (signed); a failure is retried with backoff by ``relay_webhooks``."""
    from marketplace import webhooks

    return webhooks.deliver(delivery_id)


@shared_task(name="marketplace.relay_webhooks", acks_late=True)
def relay_webhooks() -> int:
    """Every minute: send the outbox rows that are due (never sent, or waiting for a retry)."""
    from marketplace import webhooks

    return webhooks.relay_pending()
