"""The quote: price list by modality × priority × band in the center's zone; a contract's rate card first."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from billing import price_defaults
from billing.models import Band, Contract, Price, PriceList
from billing.services import pricing
from tests.factories import MembershipFactory
from tests.marketplace.helpers import make_radiologist

pytestmark = pytest.mark.django_db
CHICAGO = ZoneInfo("America/Chicago")


def at(*args):
    return datetime(*args, tzinfo=CHICAGO)


@pytest.mark.parametrize(("moment", "band"), [
    (at(2026, 12, 2, 10, 0), Band.DAY),  # a Wednesday morning
    (at(2026, 12, 2, 6, 59), Band.NIGHT),
    (at(2026, 12, 2, 19, 0), Band.NIGHT),
    (at(2026, 12, 2, 18, 59), Band.DAY),
    (at(2026, 12, 5, 12, 0), Band.WEEKEND),  # Saturday
    (at(2026, 11, 26, 12, 0), Band.HOLIDAY),  # Thanksgiving
    (at(2026, 12, 25, 3, 0), Band.HOLIDAY),  # Christmas night: the holiday is dearer than the night
    (at(2026, 3, 2, 12, 0), Band.HOLIDAY),  # Texas Independence Day: a state holiday in TX only
])
def test_the_band_is_decided_in_the_centers_zone_and_calendar(cast, moment, band):
    assert cast.center.region == "TX"
    assert pricing.band_at(moment, cast.center) == band


def test_utc_midnight_is_still_evening_in_texas(cast):
    utc_midnight = datetime(2026, 12, 3, 0, 30, tzinfo=ZoneInfo("UTC"))  # 18:30 in Chicago, a weekday
    assert pricing.band_at(utc_midnight, cast.center) == Band.DAY


def test_the_seeded_price_list_follows_domain_prices():
    price_defaults.seed(PriceList, Price)  # what migration 0003 ran (a flushed test database has lost it)
    usd = PriceList.objects.get(currency="USD")
    assert Price.objects.get(price_list=usd, modality="CT", priority="routine", band="day").cents == 3500
    assert Price.objects.get(price_list=usd, modality="CT", priority="stat", band="day").cents == 3700
    assert Price.objects.get(price_list=usd, modality="DX", priority="routine", band="night").cents == 1200
    assert Price.objects.count() == 4 * len(list(price_defaults.rows()))


def test_a_quote_takes_the_dearest_modality_the_band_and_the_priority(cast):
    quote = pricing.quote(center=cast.center, modalities=["CT", "DX"], priority="stat", kind="primary",
                          at=at(2026, 12, 5, 12, 0))
    assert (quote.cents, quote.currency, quote.band) == (price_defaults.cell_cents("CT", "stat", "weekend"), "USD",
                                                         Band.WEEKEND)
    assert quote.fee_basis_points == 1500
    assert quote.fee_cents + quote.earning_cents == quote.cents
    unknown = pricing.quote(center=cast.center, modalities=["ZZ"], priority="routine", kind="primary",
                            at=at(2026, 12, 2, 10, 0))
    assert unknown.cents == price_defaults.ROUTINE_DAY_CENTS["*"]


def test_a_second_opinion_is_priced_as_a_product(cast):
    for modality, cents in (("MR", 25000), ("US", 15000)):
        assert pricing.quote(center=cast.center, modalities=[modality], priority="routine",
                             kind="second_opinion").cents == cents


def _contract(cast, status=Contract.Status.ACTIVE, **fields):
    contract = Contract.objects.create(center=cast.center, group=cast.group, name="Nights", currency="USD",
                                       starts_on=date(2026, 1, 1), status=status, fee_basis_points=1000, **fields)
    Price.objects.create(contract=contract, modality="CT", priority="routine", band="day", cents=3000)
    return contract


def test_a_directed_read_uses_the_active_contracts_rate_card_and_fee(cast):
    contract = _contract(cast)
    quote = pricing.quote(center=cast.center, modalities=["CT"], priority="routine", kind="primary",
                          at=at(2026, 12, 2, 10, 0), group=cast.group)
    assert (quote.cents, quote.fee_basis_points, quote.contract_id) == (3000, 1000, contract.pk)
    # A night read: the card has no night cell for CT, so its day cell applies.
    night = pricing.quote(center=cast.center, modalities=["CT"], priority="routine", kind="primary",
                          at=at(2026, 12, 2, 23, 0), group=cast.group)
    assert night.cents == 3000
    # Not directed to the group: the platform's list.
    open_market = pricing.quote(center=cast.center, modalities=["CT"], priority="routine", kind="primary",
                                at=at(2026, 12, 2, 10, 0))
    assert (open_market.cents, open_market.contract_id) == (3500, None)


@pytest.mark.parametrize("fields", [{"status": Contract.Status.PROPOSED}, {"ends_on": date(2026, 6, 30)}])
def test_a_contract_not_in_force_does_not_price(cast, fields):
    _contract(cast, **fields)
    quote = pricing.quote(center=cast.center, modalities=["CT"], priority="routine", kind="primary",
                          at=at(2026, 12, 2, 10, 0), group=cast.group)
    assert quote.contract_id is None
    assert quote.cents == 3500


def test_a_contract_with_a_radiologist(cast):
    reader = make_radiologist(user=MembershipFactory(user__email="solo@example.test", organization=cast.group,
                                                     roles=["radiologist"]).user)
    contract = Contract.objects.create(center=cast.center, radiologist=reader, name="Solo", currency="USD",
                                       starts_on=date(2026, 1, 1), status=Contract.Status.ACTIVE)
    quote = pricing.quote(center=cast.center, modalities=["CT"], priority="routine", kind="primary",
                          at=at(2026, 12, 2, 10, 0), radiologist=reader)
    assert quote.contract_id == contract.pk


def test_without_a_price_list_the_defaults_price(cast):
    """A database emptied after the migrations ran (a flushed test database) still quotes the defaults."""
    PriceList.objects.all().delete()
    quote = pricing.quote(center=cast.center, modalities=["CT"], priority="stat", kind="primary",
                          at=at(2026, 12, 2, 10, 0))
    assert quote.cents == price_defaults.cell_cents("CT", "stat", "day") == 3700
