"""Money as people read it. Amounts are integer minor units with an ISO 4217 code everywhere else."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£"}


def format_money(cents: int, currency: str) -> str:
    """``$35.00``-style text for pages (the API sends integer minor units); a credit reads ``−$5.00``."""
    sign = "−" if cents < 0 else ""
    symbol = SYMBOLS.get(currency, f"{currency} ")
    return f"{sign}{symbol}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def parse_money(text: str) -> int:
    """``"32.50"`` → 3250 minor units; refuses more than two decimals, negatives and non-numbers (ValueError)."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount") from None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:
        raise ValueError(f"{text!r} is not an amount in whole cents")
    return int(value * 100)
