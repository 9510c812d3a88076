"""Headless Chromium on a phone-sized screen (390×844): a patient signs up (email verified by its link), is
sent to give their details before uploading, fills them in, uploads a small zip of DICOM files with the
uploader's progress bar, and sees their study with its thumbnail on "My images" and its series on the study
page; nothing on the way is wider than the screen, and no console error, failed request or HTTP error."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.core import mail

from accounts.models import User
from studies import synthetic
from studies.models import Study
from tests.browser.conftest import CHROMIUM_ARGS, watch
from tests.studies.test_archive import zip_of

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PASSWORD = "a-long-patient-pass-7"
EMAIL = "maria.lopez@example.test"


def _zip(tmp_path):
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(4), accession="PT260901", description="CT ABDOMEN",
                               study_date=date(2026, 9, 1))
    data = zip_of({f"DICOM/IM{i:04d}": synthetic.to_bytes(ds)
                   for i, ds in enumerate(synthetic.ct_series(spec, slices=3, size=64), 1)})
    path = tmp_path / "my-scan.zip"
    path.write_bytes(data)
    return path


def sign_in(page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def sign_up_and_in(page, base: str, email: str, password: str) -> None:
    """Sign up as a patient; the email is verified by the link it receives; then sign in."""
    page.goto(f"{base}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    link = re.search(r"http://\S+/accounts/confirm-email/\S+", mail.outbox[-1].body).group(0)
    page.goto(base + link[link.index("/accounts/"):])
    page.click("main button[type=submit]")
    sign_in(page, base, email, password)


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a {PHONE['width']}px screen"


def test_a_patient_signs_up_gives_details_uploads_a_zip_and_sees_thumbnails_on_a_phone(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    live_server = one_request_at_a_time_on_sqlite
    base = live_server.url
    archive = _zip(tmp_path)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        context.set_default_timeout(20_000)
        page = context.new_page()
        watch(page, problems)
        try:
            sign_up_and_in(page, base, EMAIL, PASSWORD)
            _no_sideways_scroll(page)

            # Upload first: sent to give details, told why.
            page.click("main >> text=Upload images")
            page.wait_for_url("**/my/details/**")
            assert "residence decides which licenses" in page.inner_text("main")
            page.fill("input[name=date_of_birth]", "1979-04-02")
            page.fill("input[name=country]", "US")
            page.click("main button[type=submit]")
            assert "Licenses in US are issued per state or province" in page.inner_text("main")  # on its field
            page.fill("input[name=region]", "NM")
            page.click("main button[type=submit]")
            page.wait_for_url("**/my/images/upload/")
            _no_sideways_scroll(page)

            # The uploader with its progress bar, on the phone.
            page.set_input_files("#file-input", str(archive))
            page.wait_for_selector("#upload-progress[data-state=done]")
            assert page.eval_on_selector("#overall-progress", "el => el.value") == 100
            assert page.inner_text("[data-count=stored]") == "3 stored"
            _no_sideways_scroll(page)
            page.screenshot(path="/tmp/readroom-patient-upload.png", full_page=True)  # noqa: S108

            # My images: the study with its thumbnail, and its page with the series and the viewer button.
            page.goto(f"{base}/my/images/")
            page.wait_for_load_state("networkidle")
            assert "CT ABDOMEN" in page.inner_text("main")
            assert page.eval_on_selector(".patient-study img.thumb", "img => img.naturalWidth") > 0
            assert page.locator(".patient-study .thumb-placeholder").is_hidden()
            _no_sideways_scroll(page)
            page.screenshot(path="/tmp/readroom-patient-images.png", full_page=True)  # noqa: S108
            page.click(".patient-study-title")
            page.wait_for_load_state("networkidle")
            assert page.eval_on_selector(".patient-series img.thumb", "img => img.naturalWidth") > 0
            assert page.locator(".patient-series .thumb-placeholder").is_hidden()
            assert page.locator("a.open-viewer").is_visible()
            _no_sideways_scroll(page)
            page.screenshot(path="/tmp/readroom-patient-study.png", full_page=True)  # noqa: S108
        finally:
            browser.close()

    # The one expected error: the details posted without a state answer 400 with the form and its message.
    expected = [f"HTTP 400: {base}/my/details/?next=/my/images/upload/",
                "console error: Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    assert problems == expected
    user = User.objects.get(email=EMAIL)
    study = Study.objects.get()
    assert (user.kind, study.organization, study.jurisdiction) == (User.Kind.PATIENT, user.patient_profile.space,
                                                                    "US-NM")
    assert study.number_of_instances == 3
