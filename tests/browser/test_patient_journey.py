"""Headless Chromium on a phone (390×844) through a patient's whole second opinion (issue 17, "Tests must
show"): sign up, give details, upload a zip, order with the price and the number of specialists shown, pay
on the Stripe fake's hosted checkout page (its webhook settles the payment on the live server), a reader
claims and signs with a plain-language summary, and the patient reads the summary and downloads the PDF.

Two browser sessions around the reader's part, which runs through the services in the test body (the
reader's own pages have their browser tests): ORM work never runs under Playwright's event loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.models import User
from billing.models import Payment
from marketplace.models import Offer, Status
from marketplace.order_models import OrderStatus, SecondOpinionOrder
from reporting.services import reports
from tests.billing.fake_stripe import fake_stripe, fake_stripe_server  # noqa: F401 - fixtures
from tests.browser.conftest import CHROMIUM_ARGS, watch
from tests.browser.test_patient_images import _no_sideways_scroll, _zip, sign_in, sign_up_and_in
from tests.marketplace.helpers import actor, make_radiologist
from tests.reporting.templates_helpers import seed_platform_templates

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
EMAIL, PASSWORD = "li.wei@example.test", "a-long-patient-pass-8"
SUMMARY = "Your scan shows a healthy liver and kidneys. The small spot the first report mentioned is a cyst."
SHOTS = "/tmp/readroom-patient-journey-{name}.png"  # noqa: S108 - a fixed place to look at the result


def _phone(playwright, chromium_path, problems):
    browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    watch(page, problems)
    return browser, page


def test_a_patient_orders_pays_and_reads_a_second_opinion_on_a_phone(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, tmp_path, fake_stripe):  # noqa: F811
    from playwright.sync_api import sync_playwright

    base = one_request_at_a_time_on_sqlite.url
    fake_stripe.webhook_url = f"{base}/stripe/webhook/"
    seed_platform_templates()
    reader = make_radiologist(regions=("NM",), subspecialties=("chest",), name="Dr Ada Body")
    make_radiologist(regions=("NM",), subspecialties=("chest",))
    archive = _zip(tmp_path)
    problems: list[str] = []

    with sync_playwright() as playwright:
        browser, page = _phone(playwright, chromium_path, problems)
        try:
            sign_up_and_in(page, base, EMAIL, PASSWORD)

            page.goto(f"{base}/my/details/")
            page.fill("input[name=date_of_birth]", "1981-06-30")
            page.fill("input[name=country]", "US")
            page.fill("input[name=region]", "NM")
            page.click("main button[type=submit]")
            page.goto(f"{base}/my/images/upload/")
            page.set_input_files("#file-input", str(archive))
            page.wait_for_selector("#upload-progress[data-state=done]")

            page.goto(f"{base}/my/images/")
            page.click(".patient-study-title")
            page.click("text=Order a second opinion")
            page.wait_for_url("**/my/opinions/new/**")
            assert page.input_value("select[name=subspecialty]") == "chest"  # suggested from the series' body part
            assert "2 chest / thoracic specialists licensed where you live (US-NM)" in page.inner_text(
                "#eligible-readers")
            assert "Dr Ada Body" not in page.content()  # never names before payment
            assert "$250.00" in page.inner_text("#prices")
            _no_sideways_scroll(page)
            page.screenshot(path=SHOTS.format(name="order"), full_page=True)
            page.click("main button[type=submit]")  # without accepting the terms
            assert "accept the terms" in page.inner_text("main")
            page.check("input[name=accept_terms]")
            page.click("main button[type=submit]")
            page.wait_for_url("**/my/opinions/*/")
            assert "Waiting for payment" in page.inner_text("h1")

            page.click("button:has-text('Pay $250.00')")  # to the fake Stripe's hosted page
            page.wait_for_load_state("networkidle")
            assert page.url.startswith(f"{fake_stripe.url}/pay/"), page.url  # CSP form-action lets it go there
            page.click("button:has-text('Pay')")
            page.wait_for_url("**/my/opinions/*/?paid=1")
            assert "Paid: waiting for a specialist" in page.inner_text("h1")
            page.click("text=Receipt")
            assert "$250.00" in page.inner_text("#receipt")
            page.screenshot(path=SHOTS.format(name="receipt"), full_page=True)
        finally:
            browser.close()

    order = SecondOpinionOrder.objects.select_related("read_request").get(patient__email=EMAIL)
    assert order.status == OrderStatus.PAID
    assert Payment.objects.get(reference=order.reference).stripe_payment_intent_id  # a card payment, once
    assert fake_stripe.delivered == [("checkout.session.completed", 200), ("payment_intent.succeeded", 200)]
    offer = Offer.objects.get(read_request=order.read_request, radiologist=reader)
    from marketplace.services.offers import offer_claim

    offer_claim(actor=actor(reader.user), offer=offer)
    order.read_request.refresh_from_db()
    draft = reports.report_open(actor=actor(reader.user), read_request=order.read_request)
    draft = reports.report_save(actor=actor(reader.user), report=draft, version=draft.version, sections={
        **draft.sections, "findings": "Simple hepatic cyst, 9 mm.", "impression": "Benign hepatic cyst.",
        "patient_summary": SUMMARY}, fields={**draft.fields, "agreement": "partly_agrees"})
    reports.report_sign(actor=actor(reader.user), report=draft, version=draft.version, second_factor_age=0)
    order.read_request.refresh_from_db()
    assert order.read_request.status == Status.REPORTED
    assert User.objects.get(email=EMAIL).notifications.filter(title="Your second opinion is ready").exists()

    with sync_playwright() as playwright:
        browser, page = _phone(playwright, chromium_path, problems)
        try:
            sign_in(page, base, EMAIL, PASSWORD)
            page.goto(f"{base}/my/opinions/")
            page.click("#orders >> text=Report ready")
            page.wait_for_selector("#patient-summary")
            assert SUMMARY in page.inner_text("#patient-summary")
            assert page.get_attribute("#patient-agreement", "data-agreement") == "partly_agrees"
            _no_sideways_scroll(page)
            page.screenshot(path=SHOTS.format(name="report"), full_page=True)
            with page.expect_download() as download:
                page.click("#patient-report-pdf")
            pdf = Path(download.value.path()).read_bytes()
            assert pdf.startswith(b"%PDF")
            assert len(pdf) > 1000
        finally:
            browser.close()

    # The fake Stripe answers its hosted page's favicon request 401 (it serves only the API and that page).
    assert problems in ([], ["console error: Failed to load resource: the server responded with a status of 401 "
                         "(Unauthorized)"]), problems
