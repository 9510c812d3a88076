"""The doctor's side of a share in headless Chromium on a phone-sized screen (issue 17, item 5): the code opens
the report; the viewer's series buttons, slider and arrows step through server-rendered slices under the page's
Content Security Policy, with no console error and no failed request."""

from __future__ import annotations

from io import BytesIO

import pytest

from reporting import shares
from studies import synthetic
from studies.ingest import Source, ingest_stream
from tests.browser.conftest import chromium_page
from tests.marketplace.helpers import actor
from tests.reporting.patient_helpers import SUMMARY, signed_order

pytestmark = pytest.mark.browser


def _add_slices(study, count: int) -> None:
    """A second series of ``count`` real CT slices in the order's study."""
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(1), accession="SH00001", description="CT HEAD",
                               study_date=study.study_date, study_uid=study.study_instance_uid)
    for ds in synthetic.ct_series(spec, slices=count, size=32, series_number=3, description="CORONAL"):
        outcome = ingest_stream(organization=study.organization, stream=BytesIO(synthetic.to_bytes(ds)),
                                filename="s.dcm", source=Source.IMPORT,
                                jurisdiction=(study.jurisdiction_country, study.jurisdiction_region))
        assert outcome.status == "stored", outcome.reason


def _loaded_width(page) -> int:
    """The shown image's width once loaded (polled: the page's CSP refuses wait_for_function's eval)."""
    for _ in range(600):  # the first render starts the decoder pool: seconds on a busy machine
        if page.evaluate("document.getElementById('share-image').complete"):
            break
        page.wait_for_timeout(50)
    return page.evaluate("document.getElementById('share-image').naturalWidth")


def test_a_doctor_opens_the_link_with_the_code_and_steps_through_the_slices(
        transactional_db, live_server, chromium_path, cast, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop shares this thread with the ORM
    order = signed_order(cast)
    _add_slices(order.study, 3)
    new = shares.doctor_share_create(actor=actor(order.patient), order=order, label="Dr Rivera")
    path = "/shared/" + new.url.rstrip("/").rsplit("/", 1)[-1] + "/"
    with chromium_page(chromium_path) as (page, problems):
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(live_server.url + path)
        page.fill("#share-code", new.code)
        page.click("#share-code-form button[type=submit]")
        page.wait_for_selector("#shared-report")
        assert SUMMARY in page.inner_text("#shared-summary")
        assert _loaded_width(page) == 32  # each step waits for its image: a skipped one is aborted, not failed
        page.click(".share-series a:has-text('CORONAL')")
        page.wait_for_selector("#share-position:has-text('1 / 3')")
        assert _loaded_width(page) == 32
        first = page.get_attribute("#share-image", "src")
        page.click("#share-next")
        page.wait_for_selector("#share-position:has-text('2 / 3')")
        second = page.get_attribute("#share-image", "src")
        assert second != first
        assert second.endswith(".jpg")
        assert _loaded_width(page) == 32
        page.fill("#share-slider", "3")
        page.wait_for_selector("#share-position:has-text('3 / 3')")
        assert _loaded_width(page) == 32
        page.click("#share-prev")
        page.wait_for_selector("#share-position:has-text('2 / 3')")
        assert page.get_attribute("#share-image", "src") == second
        assert _loaded_width(page) == 32
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    assert problems == []
