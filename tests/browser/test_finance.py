"""Headless Chromium through platform finance's journey, on the live server and the real services.

Signed reads are on the ledger; finance opens the Finance dashboard (weekly charts), drafts this month's
invoices, issues the center's, records its payment, then pays the reader by hand from the Payouts page
and follows that payment to the reads behind it. A patient's study stays closed to finance (404).
Each page is saved as a 1366×900 screenshot in /tmp/readroom-finance-<name>.png to look at. No console
error, page error, failed request or HTTP error on the way other than the expected 404.
"""

from __future__ import annotations

import uuid

import pytest

from billing.models import Invoice, ManualPayout
from billing.services import ledger
from tests.browser.conftest import chromium_page, sign_in_with_totp
from tests.browser.test_viewer import only_the_provoked_404s
from tests.conftest import enroll_totp
from tests.factories import TEST_PASSWORD, MembershipFactory
from tests.marketplace.helpers import ingest_study, make_radiologist

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/readroom-finance-{name}.png"  # noqa: S108 - a fixed place to look at the result


def test_finance_invoices_a_center_pays_a_reader_and_traces_the_payment(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, cast):
    live_server = one_request_at_a_time_on_sqlite
    finance = MembershipFactory(user__email="money@example.test", organization=cast.platform,
                                roles=["finance"]).user
    secret = enroll_totp(finance)
    reader = make_radiologist(name="Ana María Núñez")
    references = [str(uuid.uuid4()) for _ in range(3)]
    for index, reference in enumerate(references):
        ledger.post_read_signed(reference=reference, center=cast.center, radiologist=reader, group=None,
                                gross_cents=3700, fee_basis_points=1500, currency="USD",
                                details={"accession": f"FIN{index}", "modality": "CT", "priority": "stat",
                                         "study": "CT HEAD WO", "reader": reader.name})
    study = ingest_study(cast.center)

    with chromium_page(chromium_path) as (page, problems):
        page.set_viewport_size({"width": 1366, "height": 900})
        sign_in_with_totp(page, live_server.url, finance.email, TEST_PASSWORD, secret)
        page.click("nav.mainnav >> text=Finance")
        assert page.locator("svg.chart").count() == 5
        assert page.locator("#weeks").inner_text().count("$111.00") >= 1  # three reads of $37.00 billed
        page.screenshot(path=SCREENSHOT.format(name="dashboard"), full_page=True)

        page.click("text=Invoices")
        month = page.evaluate("() => new Date().toISOString().slice(0, 7)")
        page.fill("input[name=month]", month)
        page.click("button:has-text('Draft invoices')")
        page.click("#invoices >> text=Draft")
        page.click("button:has-text('Issue')")
        page.wait_for_selector("text=Issued")
        page.fill("#paid-ref", "WIRE-2026-12-0042")
        page.click("button:has-text('Record payment')")
        page.wait_for_selector("text=reference WIRE-2026-12-0042")
        page.screenshot(path=SCREENSHOT.format(name="invoice"), full_page=True)

        page.goto(f"{live_server.url}/billing/payouts/")
        row = page.locator("#owed tbody tr", has_text="Ana María Núñez")
        assert "$94.35" in row.inner_text()  # 3 × ($37.00 less the 15 % fee)
        row.locator("input[name=reference]").fill("BANK-77")
        row.locator("button:has-text('Paid')").click()
        page.wait_for_selector("#manual-payouts >> text=BANK-77")
        page.click("#manual-payouts a")
        traced = page.locator("#paid-earnings").inner_text()
        assert all(reference[:10] in traced for reference in references)
        page.screenshot(path=SCREENSHOT.format(name="payout"), full_page=True)

        closed = page.goto(f"{live_server.url}/studies/{study.public_id}/")
        assert closed.status == 404  # finance never sees a patient's study

    invoice = Invoice.objects.get(center=cast.center)
    assert (invoice.status, invoice.paid_reference) == ("paid", "WIRE-2026-12-0042")
    assert ManualPayout.objects.get().amount_cents == 3 * 3145
    only_the_provoked_404s(problems, [f"{live_server.url}/studies/{study.public_id}/"])
