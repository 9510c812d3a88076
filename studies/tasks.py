"""Celery tasks of studies: thin, idempotent wrappers around services."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from studies import break_glass, services


@shared_task(name="studies.purge_deleted_studies", acks_late=True)
def purge_deleted_studies(limit: int = 100) -> dict:
    """Remove the files and rows of studies soft-deleted more than ``STUDY_RETENTION_DAYS`` ago.

    Safe to run at any time and any number of times (each study is re-checked under its row lock);
    meant for a daily beat schedule. A full batch queues the next one, so a backlog drains in one go.
    """
    result = services.study_purge_expired(limit=limit)
    if result.studies >= limit:
        purge_deleted_studies.delay(limit)
    return asdict(result)


@shared_task(name="studies.close_expired_break_glass", acks_late=True)
def close_expired_break_glass() -> int:
    """Audit the stop of emergency accesses that ran out (every 5 minutes; idempotent)."""
    return break_glass.break_glass_close_expired()
