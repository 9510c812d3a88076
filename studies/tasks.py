"""Celery tasks of studies: thin, idempotent wrappers around services."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from studies import services


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
