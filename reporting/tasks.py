"""Celery tasks of reporting: thin, idempotent wrappers around services."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from reporting.services import critical, delivery


@shared_task(name="reporting.deliver_report", acks_late=True)
def deliver_report(report_id: int, addenda_count: int) -> list[str]:
    """Build the delivery forms of a signed report (with its first ``addenda_count`` addenda); a form
    already built is kept, so a retry or a second run adds only what is missing."""
    return delivery.deliver(report_id, addenda_count)


@shared_task(name="reporting.escalate_critical_results", acks_late=True)
def escalate_critical_results() -> dict:
    """Every minute: unacknowledged critical results past their time go to the center's admins, then to
    platform operations (idempotent: a second run notifies nobody again)."""
    return asdict(critical.critical_escalate_due())
