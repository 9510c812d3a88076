"""The quote of a read request: one function, locked on the request at posting.

A simple default price table by modality and priority (domain.md, USD, in cents); the billing issue
replaces this table with price lists and contracts behind the same ``quote_for``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Routine price per modality, in minor units (domain.md: X-ray 8–12, CT 30–40, MR 40–50, US 22–28).
ROUTINE_CENTS = {
    "CR": 1000, "DX": 1000, "IO": 1000, "RF": 2000, "XA": 3000, "BMD": 1500,
    "CT": 3500, "MR": 4500, "US": 2500, "MG": 3500, "NM": 5000, "PT": 6000, "OT": 3000,
}
DEFAULT_CENTS = 3000
# Priority surcharges (domain.md: STAT +1–2 per read).
SURCHARGE_CENTS = {"routine": 0, "urgent": 100, "stat": 200}
# A second opinion a patient orders is priced as a product (domain.md: ~250 CT/MR/MG, ~150 X-ray/US).
SECOND_OPINION_CENTS = {"CT": 25000, "MR": 25000, "MG": 25000, "PT": 25000, "NM": 25000}
SECOND_OPINION_DEFAULT_CENTS = 15000
CURRENCY_BY_COUNTRY = {"US": "USD", "CA": "CAD", "AU": "AUD", "GB": "GBP"}


@dataclass(frozen=True)
class Quote:
    cents: int
    currency: str


def quote_for(*, center, modalities: list[str], priority: str, kind: str) -> Quote:
    """What the center will pay for this read: the dearest modality of the study, plus the priority surcharge."""
    currency = CURRENCY_BY_COUNTRY.get(center.country, "USD")
    if kind == "second_opinion":
        cents = max((SECOND_OPINION_CENTS.get(m, SECOND_OPINION_DEFAULT_CENTS) for m in modalities),
                    default=SECOND_OPINION_DEFAULT_CENTS)
    else:
        cents = max((ROUTINE_CENTS.get(m, DEFAULT_CENTS) for m in modalities), default=DEFAULT_CENTS)
    return Quote(cents + SURCHARGE_CENTS.get(priority, 0), currency)


def format_money(cents: int, currency: str) -> str:
    """``$35.00``-style text for pages (the API sends integer minor units)."""
    symbol = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{symbol}{cents // 100:,}.{cents % 100:02d}"
