"""Delivery of signed reports (PDF, HL7 v2, FHIR, DICOM SR): being written (issue 14, item 5)."""

from __future__ import annotations


def deliver(report_id: int, addenda_count: int) -> list[str]:
    raise NotImplementedError("reporting delivery is being written")
