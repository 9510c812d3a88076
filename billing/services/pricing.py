"""The quote of a read: computed once at posting, from the contract's rate card if one applies, else the
platform's price list, for the hour band the study is posted in (in the center's time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization, RadiologistProfile
from billing import price_defaults
from billing.models import (
    ANY_MODALITY,
    DEFAULT_FEE_BASIS_POINTS,
    DEFAULT_REVIEW_PERCENT,
    Band,
    Contract,
    Price,
    PriceList,
)

CURRENCY_BY_COUNTRY = {"US": "USD", "CA": "CAD", "AU": "AUD", "GB": "GBP"}
NIGHT_STARTS, NIGHT_ENDS = 19, 7  # local hours: 19:00–07:00 is night
# A second opinion a patient orders is priced as a product (domain.md: ~250 CT/MR/MG, ~150 X-ray/US).
SECOND_OPINION_CENTS = {"CT": 25000, "MR": 25000, "MG": 25000, "PT": 25000, "NM": 25000}
SECOND_OPINION_DEFAULT_CENTS = 15000
SECOND_OPINION_EXPEDITED_PERCENT = 150
FALLBACK_CENTS = 3000  # a modality the price list does not name and no ``*`` row covers


@dataclass(frozen=True)
class Quote:
    cents: int
    currency: str
    fee_basis_points: int = DEFAULT_FEE_BASIS_POINTS
    band: str = Band.DAY
    contract_id: int | None = None

    @property
    def fee_cents(self) -> int:
        return min(self.cents, (self.cents * self.fee_basis_points + 5_000) // 10_000)

    @property
    def earning_cents(self) -> int:
        """What the reader earns: the quote minus the platform's fee."""
        return self.cents - self.fee_cents


def default_prices() -> list[Price]:
    """The seeded price list's cells (billing.price_defaults), for a currency without a list of its own
    (the same figures migration 0003 seeds: a database emptied by a test run still prices as a new one)."""
    return [Price(modality=m, priority=p, band=b, cents=c) for m, p, b, c in price_defaults.rows()]


def currency_of(center: Organization) -> str:
    return CURRENCY_BY_COUNTRY.get(center.country, "USD")


@lru_cache(maxsize=64)
def _holidays(country: str, region: str):
    try:
        return holidays.country_holidays(country, subdiv=region or None)
    except NotImplementedError:  # a region (or country) the package does not know: its national days
        try:
            return holidays.country_holidays(country)
        except NotImplementedError:
            return {}


def is_public_holiday(day: date, *, country: str, region: str = "") -> bool:
    return day in _holidays(country, region)


def band_at(moment: datetime, center: Organization) -> str:
    """The price band of ``moment`` at the center: public holiday, weekend, night or day (local time)."""
    local = moment.astimezone(ZoneInfo(center.time_zone))
    if is_public_holiday(local.date(), country=center.country, region=center.region):
        return Band.HOLIDAY
    if local.weekday() >= 5:
        return Band.WEEKEND
    if local.hour >= NIGHT_STARTS or local.hour < NIGHT_ENDS:
        return Band.NIGHT
    return Band.DAY


def applicable_contract(*, center: Organization, group: Organization | None = None,
                        radiologist: RadiologistProfile | None = None, on: date) -> Contract | None:
    """The center's active contract with the group or radiologist the read is directed to, on that day."""
    if group is None and radiologist is None:
        return None
    party = Q(group=group) if group is not None else Q(radiologist=radiologist)
    return (Contract.objects.filter(party, center=center, status=Contract.Status.ACTIVE, starts_on__lte=on)
            .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=on)).order_by("-starts_on", "-id").first())


def _cell(prices: list[Price], modality: str, priority: str, band: str) -> int | None:
    """The price of one modality: its own row, else the ``*`` row; the band's, else the day's."""
    table = {(p.modality, p.priority, p.band): p.cents for p in prices}
    for mod in (modality, ANY_MODALITY):
        for b in (band, Band.DAY):
            if (mod, priority, b) in table:
                return table[(mod, priority, b)]
    return None


def quote(*, center: Organization, modalities: list[str], priority: str, kind: str, at: datetime | None = None,
          group: Organization | None = None, radiologist: RadiologistProfile | None = None) -> Quote:
    """What the center will pay for this read: the dearest of the study's modalities."""
    at = at or timezone.now()
    band = band_at(at, center)
    currency = currency_of(center)
    if kind == "second_opinion":
        cents = max((SECOND_OPINION_CENTS.get(m, SECOND_OPINION_DEFAULT_CENTS) for m in modalities),
                    default=SECOND_OPINION_DEFAULT_CENTS)
        if priority != "routine":  # expedited (24 h instead of 48 h): half as much again
            cents = cents * SECOND_OPINION_EXPEDITED_PERCENT // 100
        return Quote(cents, currency, band=band)
    contract = applicable_contract(center=center, group=group, radiologist=radiologist,
                                   on=at.astimezone(ZoneInfo(center.time_zone)).date())
    sources = []
    if contract is not None and contract.currency == currency:
        sources.append(list(contract.rates.all()))
    price_list = PriceList.objects.filter(currency=currency).first()
    sources.append(list(Price.objects.filter(price_list__currency=currency)) or default_prices())
    mods = modalities or [ANY_MODALITY]
    for prices in sources:
        found = [c for m in mods if (c := _cell(prices, m.upper(), priority, band)) is not None]
        if found:
            cents = max(found)
            break
    else:
        cents = FALLBACK_CENTS
    if kind == "peer_review":  # a review rate: the contract's share of its rate, else the price list's
        if contract is not None and contract.currency == currency:
            percent = contract.review_percent
        else:
            percent = price_list.review_percent if price_list is not None else DEFAULT_REVIEW_PERCENT
        cents = cents * percent // 100
    if contract is not None and contract.currency == currency:
        return Quote(cents, currency, contract.fee_basis_points, band, contract.pk)
    return Quote(cents, currency, DEFAULT_FEE_BASIS_POINTS, band)
