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


# --- orders from a center's RIS (issue 23) -----------------------------------------------------------

@shared_task(name="marketplace.ris_order_match", acks_late=True)
def ris_order_match(order_id: int, study_id: int) -> str:
    """A study arrived with a waiting order's accession number: post its read, or hold a patient mismatch."""
    from marketplace.ris.orders import order_match_by_ids

    return order_match_by_ids(order_id, study_id)


@shared_task(bind=True, name="marketplace.send_hl7_message", acks_late=True, max_retries=5)
def send_hl7_message(self, message_id: int) -> str:
    """Send one report to the center's RIS over MLLP; no connection or no ACK is retried with backoff (at most
    5 times); after the last try the row keeps the error for the center's admins (no exception: nothing to
    undo)."""
    from marketplace.ris import outbound

    result = outbound.hl7_out_send(message_id)
    if self.request.is_eager:
        # In-process (the embedded default, tests): no broker to come back later, and an eager retry would raise
        # into the signing request; the retries run now, without the wait.
        for _ in range(self.max_retries - self.request.retries):
            if result.outcome != outbound.RETRY:
                break
            result = outbound.hl7_out_send(message_id)
        return result.outcome
    if result.outcome == outbound.RETRY and self.request.retries < self.max_retries:
        raise self.retry(countdown=min(30 * 2 ** self.request.retries, 3600))  # 30 s, 1, 2, 4, 8 min
    return result.outcome


@shared_task(name="marketplace.ris_unordered_studies", acks_late=True)
def ris_unordered_studies() -> int:
    """Every five minutes: tell the admins of centers with an HL7 interface of studies that crossed the wait for
    their order (they are listed on the orders page; nothing is posted for them)."""
    from marketplace.ris import waiting

    return waiting.notify_unordered_studies()


# --- overflow rules (issue 18) ----------------------------------------------------------------------------

@shared_task(name="marketplace.overflow_tick", acks_late=True)
def overflow_tick() -> int:
    """Every minute: post what the centers' unread and backlog rules (and missed hours arrivals) call for."""
    from marketplace.services.overflow import overflow_tick as tick

    return tick()
