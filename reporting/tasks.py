"""Celery tasks of reporting: thin, idempotent wrappers around services."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from reporting.services import critical, delivery


@shared_task(name="reporting.deliver_report", acks_late=True)
def deliver_report(report_id: int, addenda_count: int) -> list[str]:
    """Build the delivery forms of a signed report (with its first ``addenda_count`` addenda); a form
    already built is kept, so a retry or a second run adds only what is missing."""
    built = delivery.deliver(report_id, addenda_count)
    from reporting.services.ris_outbound import report_send_to_ris

    report_send_to_ris(report_id, addenda_count)  # issue 23: to the center's RIS when it has an MLLP endpoint
    return built


@shared_task(name="reporting.escalate_critical_results", acks_late=True)
def escalate_critical_results() -> dict:
    """Every minute: unacknowledged critical results past their time go to the center's admins, then to
    platform operations (idempotent: a second run notifies nobody again)."""
    return asdict(critical.critical_escalate_due())


@shared_task(name="reporting.sample_peer_reviews", acks_late=True)
def sample_peer_reviews() -> dict:
    """Every five minutes: sample the reports signed since the last run for blind peer review, and end the
    reviews whose read request ended unread (idempotent: each report is considered once)."""
    from reporting.quality import peer_review, sampling

    posted = sampling.sample_signed_reports()
    return {"posted": len(posted), "cancelled": peer_review.cancel_unread_reviews()}
