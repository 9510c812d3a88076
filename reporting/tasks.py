"""Celery tasks of reporting: thin, idempotent wrappers around services."""

from __future__ import annotations

from celery import shared_task

from reporting.services import delivery


@shared_task(name="reporting.deliver_report", acks_late=True)
def deliver_report(report_id: int, addenda_count: int) -> list[str]:
    """Build the delivery forms of a signed report (with its first ``addenda_count`` addenda); a form
    already built is kept, so a retry or a second run adds only what is missing."""
    return delivery.deliver(report_id, addenda_count)
