"""Headless Chromium through the reading workspace, on the live server and the real services.

The radiologist opens the assigned read from the worklist, sees the rendered image in the viewer beside the
editor, types findings and an impression (with a macro), waits for "Saved", signs — confirming a TOTP code on
the re-authentication page because the login's second factor is no longer fresh — and sees the final report.
The center admin then opens the read request and sees it reported (and the impression, once the center's
report panel exists). Screenshots in /tmp/readroom-reporting-<name>.png. No console error, page error, failed
request or HTTP error on the way.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from django.urls import get_resolver

from marketplace.models import Status
from reporting.models import Macro, Report
from tests.browser.conftest import chromium_page
from tests.browser.test_marketplace import VIEWPORT, second_page, sign_in, viewer_installed  # noqa: F401
from tests.browser.test_viewer import ct_study, real_problems
from tests.browser.viewer_probes import FIRST_IMAGE
from tests.reporting.conftest import assigned_read, make_template

pytestmark = pytest.mark.browser

HISTORY = "Shortness of breath after a long flight."
FINDINGS = "Filling defect in the right lower lobe pulmonary artery. <b>not bold</b>"
IMPRESSION_TYPED = "Acute pulmonary embolism. .pe "
IMPRESSION = "Acute pulmonary embolism. No right heart strain. "
SCREENSHOT = "/tmp/readroom-reporting-{name}.png"  # noqa: S108 - a fixed place to look at the result
FRESH_FOR = 20  # seconds a second factor counts as fresh in this test (5 minutes in production)


def shoot(page, name: str) -> None:
    page.set_viewport_size(VIEWPORT)
    page.screenshot(path=SCREENSHOT.format(name=name), full_page=True)


def _wait_for_a_new_totp_window(secret: str, used_at: float) -> str:
    """A code from a later 30 s window than the one used at sign-in (a used code is not accepted twice)."""
    totp = pyotp.TOTP(secret)
    while totp.timecode(time.time()) == totp.timecode(used_at) or totp.interval - time.time() % totp.interval < 4:
        time.sleep(0.5)
    return totp.now()


def test_radiologist_writes_beside_the_image_signs_with_a_totp_code_and_the_center_sees_it_reported(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast,  # noqa: F811
        settings):
    live_server = one_request_at_a_time_on_sqlite
    make_template(name="CT chest (workspace test)", body_parts=("CHEST",))
    study = ct_study(cast.center, slices=4, size=256, seed=21)
    read_request = assigned_read(cast, study=study, clinical_history=HISTORY, priority="urgent")
    Macro.objects.create(radiologist=read_request.assignee, name="pe", text="No right heart strain.")
    workspace_path = f"/worklist/reads/{read_request.public_id}/"

    with chromium_page(chromium_path) as (page, problems):
        page.set_viewport_size(VIEWPORT)
        sign_in(page, live_server, cast, "radiologist")
        signed_in_at = time.time()
        page.click("nav a:has-text('Worklist')")
        page.wait_for_url("**/worklist/")
        page.locator("#my-reads tr:has-text('CT CHEST') button:has-text('Open in viewer')").click()
        page.wait_for_url(f"**{workspace_path}")
        assert HISTORY in page.inner_text("#request-context")
        page.frame(name="viewer").wait_for_function(FIRST_IMAGE, polling=50, timeout=60_000)
        page.wait_for_selector("#report-editor[data-ready]")

        page.fill("#section-findings", FINDINGS)
        page.click("#section-impression")
        page.keyboard.press("Control+End")
        page.keyboard.type(IMPRESSION_TYPED)  # ".pe" and a space expand the reader's macro
        page.wait_for_function("() => document.querySelector('#save-status').textContent.startsWith('Saved')",
                               timeout=15_000)
        assert page.input_value("#section-impression").endswith(IMPRESSION)
        shoot(page, "workspace")

        # The login's second factor goes stale; signing sends the reader to confirm a code and back.
        settings.FRESH_MFA_SECONDS = FRESH_FOR
        time.sleep(max(0.0, signed_in_at + FRESH_FOR + 1 - time.time()))
        page.click("#sign-button")
        page.wait_for_url("**/reauthenticate/**")
        assert "Confirm it's you" in page.inner_text("main")
        assert "Signing needs a fresh second factor" in page.inner_text("body")
        page.fill("input[name=code]", _wait_for_a_new_totp_window(cast.totp_secrets["radiologist"], signed_in_at))
        page.click("main button[type=submit]")
        page.wait_for_url(f"**{workspace_path}")
        page.click("#sign-button")
        page.wait_for_selector("#final-report")
        final = page.inner_text("#final-report")
        assert "Filling defect in the right lower lobe" in final
        assert "<b>not bold</b>" in final  # shown as text, not markup
        assert IMPRESSION.strip() in final
        assert "Add addendum" in page.inner_text("#addenda")
        shoot(page, "signed")

        center = second_page(page, problems)
        sign_in(center, live_server, cast, "center_admin")
        center.goto(f"{live_server.url}/reads/{read_request.public_id}/")
        assert "Reported" in center.inner_text(".page-header")
        if "read_request_report" in get_resolver().reverse_dict:  # the center's report panel (htmx, on load)
            center.wait_for_function(f"() => document.querySelector('main').innerText.includes({IMPRESSION.strip()!r})",
                                     timeout=15_000)
        shoot(center, "center-reported")
        assert real_problems(problems) == []

    report = Report.objects.get(read_request=read_request)
    assert report.status == Report.Status.FINAL
    assert report.sections["findings"] == FINDINGS
    assert report.sections["impression"].strip() == IMPRESSION.strip()
    assert report.signed_by == cast.radiologist
    read_request.refresh_from_db()
    assert read_request.status == Status.REPORTED


def test_a_second_tab_saving_an_older_version_is_told_to_reload(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast):  # noqa: F811
    """Two tabs on one draft: the second one's save is refused, autosave stops and the page says to reload."""
    live_server = one_request_at_a_time_on_sqlite
    make_template(name="CT (two tabs)", body_parts=())
    read_request = assigned_read(cast, study=ct_study(cast.center, slices=1, size=64, seed=22))
    workspace = f"{live_server.url}/worklist/reads/{read_request.public_id}/"

    with chromium_page(chromium_path) as (first, problems):
        sign_in(first, live_server, cast, "radiologist")
        first.goto(workspace)
        second = first.context.new_page()
        second.goto(workspace)
        for tab in (first, second):
            tab.wait_for_selector("#report-editor[data-ready]")
        first.fill("#section-findings", "Written in the first tab.")
        first.wait_for_function("() => document.querySelector('#save-status').textContent.startsWith('Saved')")
        second.fill("#section-findings", "Written in the second tab.")
        second.wait_for_function("() => document.querySelector('#save-status').textContent.includes('reload')")
        status = second.inner_text("#save-status")
        assert "saved elsewhere" in status
        assert re.search(r"version \d", status)
        # The refused save is the one 409 on the way; nothing else went wrong.
        assert [p for p in real_problems(problems) if "409" not in p] == []

    assert Report.objects.get(read_request=read_request).sections["findings"] == "Written in the first tab."
