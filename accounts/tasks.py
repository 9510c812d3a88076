"""Celery tasks of accounts: thin, idempotent wrappers around services."""

from __future__ import annotations

from celery import shared_task

from accounts.credentials import services as credential_services


@shared_task(name="accounts.credentials_daily", acks_late=True)
def credentials_daily() -> dict[str, int]:
    """Once a day: mark verified items past their expiry date expired, then send due expiry reminders.

    Safe to run twice: an expired item is no longer verified, and each reminder threshold is
    recorded once per item and expiry date. Eligibility never waits for this task.
    """
    expired = credential_services.credentials_expire_due()
    reminded = credential_services.credential_reminders_send()
    return {"expired": expired, "reminded": reminded}
