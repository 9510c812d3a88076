"""The platform's default price list (domain.md, in minor units), seeded by migration 0003 for each
currency a center may bill in; finance edits it from there."""

from __future__ import annotations

# Routine day price per modality (domain.md: X-ray 8–12, CT 30–40, MR 40–50, US 22–28).
ROUTINE_DAY_CENTS = {
    "CR": 1000, "DX": 1000, "IO": 1000, "RF": 2000, "XA": 3000, "BMD": 1500,
    "CT": 3500, "MR": 4500, "US": 2500, "MG": 3500, "NM": 5000, "PT": 6000, "*": 3000,
}
# Priority surcharges (domain.md: STAT +1–2 per read).
SURCHARGE_CENTS = {"routine": 0, "urgent": 100, "stat": 200}
# Nights, weekends and public holidays cost more (domain.md); the factor applies to the routine price.
BAND_FACTOR = {"day": 1.0, "night": 1.2, "weekend": 1.25, "holiday": 1.5}
CURRENCIES = {"USD": "Platform prices (US dollars)", "CAD": "Platform prices (Canadian dollars)",
              "AUD": "Platform prices (Australian dollars)", "GBP": "Platform prices (pounds sterling)"}


def cell_cents(modality: str, priority: str, band: str) -> int:
    """Rounded to half a unit (50 minor units), as a price list would print it."""
    base = ROUTINE_DAY_CENTS[modality] * BAND_FACTOR[band]
    return int(round(base / 50) * 50) + SURCHARGE_CENTS[priority]


def rows():
    """(modality, priority, band, cents) for every cell."""
    for modality in ROUTINE_DAY_CENTS:
        for priority in SURCHARGE_CENTS:
            for band in BAND_FACTOR:
                yield modality, priority, band, cell_cents(modality, priority, band)


def seed(price_list_model, price_model) -> None:
    """Create each currency's list and any missing cell (models passed in: the migration's or the real ones)."""
    for currency, name in CURRENCIES.items():
        price_list, _ = price_list_model.objects.get_or_create(currency=currency, defaults={"name": name})
        have = set(price_model.objects.filter(price_list=price_list).values_list("modality", "priority", "band"))
        price_model.objects.bulk_create([price_model(price_list=price_list, modality=m, priority=p, band=b, cents=c)
                                         for m, p, b, c in rows() if (m, p, b) not in have])
