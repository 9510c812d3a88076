"""Fixtures of the marketplace tests: a Texas CT at the cast's center, and the cast's radiologist made eligible."""

from __future__ import annotations

import pytest

from tests.marketplace.helpers import ingest_study, load_demo, make_radiologist


@pytest.fixture
def ct_study(cast):
    return ingest_study(cast.center, modality="CT")


@pytest.fixture
def reader(cast):
    """The cast's radiologist (group Night Hawk Readers), licensed in TX, on shift around the clock."""
    return make_radiologist(user=cast.radiologist)


@pytest.fixture
def flat_prices(db):
    """Every band of the platform's price list at the day price, so that a page's quote does not depend on
    when the test runs (nights, weekends and holidays are dearer: tests/billing/test_pricing.py)."""
    from billing import price_defaults
    from billing.models import Price, PriceList

    price_defaults.seed(PriceList, Price)  # a transactional test before this one may have emptied the tables
    day = {(p.price_list_id, p.modality, p.priority): p.cents
           for p in Price.objects.filter(price_list__isnull=False, band="day")}
    for price in Price.objects.filter(price_list__isnull=False).exclude(band="day"):
        price.cents = day[(price.price_list_id, price.modality, price.priority)]
        price.save(update_fields=["cents"])


@pytest.fixture
def demo_output(db, settings, tmp_path) -> str:
    """``load_demo`` with its studies stored in this test's own folder (as tests/accounts/test_demo.py does)."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}
    return load_demo()
