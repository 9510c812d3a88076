"""What signing a report means beyond the report itself: which reports the center receives now."""

from __future__ import annotations

from datetime import datetime

from marketplace.models import Kind
from reporting.models import Report
from reporting.quality import overreads, peer_review


def after_sign(report: Report, now: datetime) -> list[Report]:
    """Record what the signature settles; return the reports to announce and deliver to the center now.

    A peer review is never delivered (it is confidential); an overread is, and at a two-level read's second
    level it releases the first report too; a two-level read's first report is held for its second level.
    """
    kind = report.read_request.kind
    if kind == Kind.PEER_REVIEW:
        peer_review.on_review_signed(report, now)
        return []
    if kind == Kind.OVERREAD:
        return overreads.on_overread_signed(report, now)
    if report.read_request.levels == 2:
        overreads.post_second_level(report.read_request, now)
        return []
    return [report]
