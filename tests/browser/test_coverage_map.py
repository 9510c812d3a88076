"""The coverage map in Chromium: a center admin opens it, sees the 7 × 24 heat map with its gaps marked, and
hovering an hour names the readers who cover it (a gap names nobody)."""

from __future__ import annotations

from datetime import time

import pytest

from marketplace.models import ReadingHours
from tests.browser.conftest import chromium_page, sign_in_with_totp
from tests.factories import TEST_PASSWORD
from tests.marketplace.helpers import make_radiologist

pytestmark = pytest.mark.browser


def test_the_heat_map_renders_and_hovering_an_hour_names_the_readers(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, cast):
    live_server = one_request_at_a_time_on_sqlite
    for name in ("Ada Quinn", "Bo Evans"):  # TX-licensed CT readers in Chicago, the center's zone: 08:00–20:00
        profile = make_radiologist(name=name, zone="America/Chicago", hours="none")
        ReadingHours.objects.bulk_create([ReadingHours(radiologist=profile, weekday=d, starts=time(8), ends=time(20))
                                          for d in range(7)])
    with chromium_page(chromium_path) as (page, problems):
        sign_in_with_totp(page, live_server.url, cast.center_admin.email, TEST_PASSWORD,
                          cast.totp_secrets["center_admin"])
        page.goto(f"{live_server.url}/org/coverage/?modality=CT")
        cells = page.locator("#coverage-map td.cov")
        assert cells.count() == 7 * 24
        assert page.locator("#coverage-map td.cov-gap").count() == 7 * 12
        ten = page.locator("#coverage-map tbody tr").nth(1).locator("td.cov").nth(10)
        assert ten.get_attribute("data-count") == "2"
        assert not ten.locator(".cov-who").is_visible()
        ten.hover()
        popover = ten.locator(".cov-who")
        popover.wait_for(state="visible")
        assert "Ada Quinn, Bo Evans" in popover.inner_text()
        night = page.locator("#coverage-map tbody tr").nth(1).locator("td.cov").nth(3)
        night.hover()
        assert "nobody" in night.locator(".cov-who").inner_text()
        assert "no CT reader licensed in US-TX" in page.locator("#coverage-gaps").inner_text()
        assert problems == []
