"""Signed reports back to the center's RIS (issue 23, item 4): the ORU^R01 that delivery built for a version is
handed to the marketplace's outbound HL7 log, which sends it over MLLP with retries when the center registered
an outbound endpoint (``marketplace.ris.outbound``)."""

from __future__ import annotations

from marketplace.ris import outbound
from reporting.models import Delivery


def report_send_to_ris(report_id: int, addenda_count: int):
    """Queue this version's ORU^R01 for the center's RIS; None when the center has no outbound endpoint or the
    form is not built. Idempotent: a version goes out once (its MSH-10 is the same every time)."""
    row = (Delivery.objects.filter(report_id=report_id, addenda_count=addenda_count, form=Delivery.Form.HL7)
           .select_related("report__read_request").first())
    if row is None:
        return None
    read_request = row.report.read_request
    return outbound.hl7_out_queue(center_id=read_request.center_id, raw=bytes(row.payload), read_request=read_request)
