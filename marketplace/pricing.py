"""The quote of a read request: one function, locked on the request at posting.

The prices themselves are billing's (``billing.services.pricing``: the platform's price list by
modality × priority × hour band, or the rate card of the contract the read is directed under);
the marketplace asks through ``quote_for`` and keeps the answer on the request.
"""

from __future__ import annotations

from datetime import datetime

from billing.services.pricing import Quote, quote
from core.money import format_money


def quote_for(*, center, modalities: list[str], priority: str, kind: str, at: datetime | None = None,
              group=None, radiologist=None) -> Quote:
    """What the center will pay for this read if posted ``at`` (now), directed to ``group`` or ``radiologist``."""
    return quote(center=center, modalities=modalities, priority=priority, kind=kind, at=at, group=group,
                 radiologist=radiologist)


__all__ = ["Quote", "format_money", "quote_for"]
