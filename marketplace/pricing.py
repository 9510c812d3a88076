"""The quote of a read request: one function, locked on the request at posting.

The prices themselves are billing's (``billing.services.pricing``: the platform's price list by
modality × priority × hour band, or the rate card of the contract the read is directed under);
the marketplace asks through ``quote_for`` and keeps the answer on the request.
"""

from __future__ import annotations

from datetime import datetime

from billing.services.pricing import Quote, quote


def quote_for(*, center, modalities: list[str], priority: str, kind: str, at: datetime | None = None,
              group=None, radiologist=None) -> Quote:
    """What the center will pay for this read if posted ``at`` (now), directed to ``group`` or ``radiologist``."""
    return quote(center=center, modalities=modalities, priority=priority, kind=kind, at=at, group=group,
                 radiologist=radiologist)


def format_money(cents: int, currency: str) -> str:
    """``$35.00``-style text for pages (the API sends integer minor units)."""
    symbol = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{symbol}{cents // 100:,}.{cents % 100:02d}"


__all__ = ["Quote", "format_money", "quote_for"]
