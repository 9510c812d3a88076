"""Fixtures of the marketplace tests: a Texas CT at the cast's center, and the cast's radiologist made eligible."""

from __future__ import annotations

import pytest

from tests.marketplace.helpers import ingest_study, make_radiologist


@pytest.fixture
def ct_study(cast):
    return ingest_study(cast.center, modality="CT")


@pytest.fixture
def reader(cast):
    """The cast's radiologist (group Night Hawk Readers), licensed in TX, on shift around the clock."""
    return make_radiologist(user=cast.radiologist)
