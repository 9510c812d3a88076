"""Builders of the critical-result and message-thread tests: a read signed with a critical result,
through the real services (claim, open, save, sign)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from reporting.models import CriticalResult
from reporting.services import reports
from tests.marketplace.helpers import actor, ingest_study
from tests.reporting.conftest import assigned_read


def sign_with_critical(cast, report, *, category: int = 1, finding: str = "Acute subdural hematoma"):
    """Sign the cast radiologist's draft with a critical result of ``category``; the CriticalResult row."""
    reader = actor(cast.radiologist)
    report = reports.report_save(actor=reader, report=report, version=report.version,
                                 sections={**report.sections, "impression": finding}, fields=report.fields)
    critical = reports.CriticalInput(category=category, finding=finding, contacted_name="Dr Ana Rivera",
                                     contacted_at=timezone.now() - timedelta(minutes=2), method="phone",
                                     read_back=True)
    signed = reports.report_sign(actor=reader, report=report, version=report.version, second_factor_age=10,
                                 critical=critical)
    return CriticalResult.objects.select_related("center", "read_request", "report").get(report=signed)


def another_critical(cast, *, category: int = 1, finding: str = "Tension pneumothorax"):
    """A second read at the cast's center (another patient), signed with a critical result."""
    read_request = assigned_read(cast, study=ingest_study(cast.center, modality="CT", patient=7))
    draft = reports.report_open(actor=actor(cast.radiologist), read_request=read_request)
    return sign_with_critical(cast, draft, category=category, finding=finding)
