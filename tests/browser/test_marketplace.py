"""Headless Chromium through the marketplace's user journeys, on the live server and the real services.

- A technologist posts a STAT read from the study page; the cast's radiologist sees the de-identified
  offer (price, countdown, no patient name), claims it, opens it in the OHIF viewer and the first image
  appears; the center's list then shows the reader and "In progress" without a reload (htmx polling).
- Platform operations find an unclaimed STAT flagged at posting and a read the clock moved to at risk
  under "Reads at risk", and read the reasons why nobody took it on its explain page.
- A radiologist enters an overnight reading window and gets it back.
Each page is also saved as a 1366×900 screenshot in /tmp/readroom-marketplace-<name>.png to look at.
No console error, page error, failed request or HTTP error on the way.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from marketplace import pricing
from marketplace.models import Assignment, ReadingHours, ReadRequest, Status
from marketplace.services.clock import sla_tick
from studies import viewer
from studies.models import StudyAccessGrant
from tests.browser.conftest import chromium_page, sign_in_with_totp, watch
from tests.browser.test_viewer import ct_study, real_problems
from tests.browser.viewer_probes import FIRST_IMAGE
from tests.conftest import require_or_skip
from tests.factories import TEST_PASSWORD
from tests.marketplace.helpers import ingest_study, make_radiologist, post
from tests.reporting.conftest import make_template

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/readroom-marketplace-{name}.png"  # noqa: S108 - a fixed place to look at the result
VIEWPORT = {"width": 1366, "height": 900}
HISTORY = "Fall from standing height, GCS 14. Rule out intracranial bleed."
POLL_TIMEOUT = 30_000  # the lists refresh every 15 s


@pytest.fixture
def viewer_installed():
    require_or_skip(viewer.is_installed(), "the OHIF Viewer is not installed: run `manage.py install_viewer`")


def shoot(page, name: str) -> None:
    page.set_viewport_size(VIEWPORT)
    page.screenshot(path=SCREENSHOT.format(name=name), full_page=True)


def second_page(page, problems: list[str]):
    """Another person's browser: a fresh context (own cookies) of the same Chromium, watched the same way."""
    context = page.context.browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    context.on("page", lambda new_page: watch(new_page, problems))
    return context.new_page()


def sign_in(page, live_server, cast, name: str) -> None:
    sign_in_with_totp(page, live_server.url, getattr(cast, name).email, TEST_PASSWORD, cast.totp_secrets[name])


def row_of(page, table: str, text: str):
    return page.locator(f"{table} tbody tr", has_text=text)


def test_center_posts_a_read_a_radiologist_claims_it_and_opens_the_images(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast):
    live_server = one_request_at_a_time_on_sqlite
    make_template(name="CT (browser test)", body_parts=())  # the workspace opens a draft from a template
    study = ct_study(cast.center, slices=6, size=256, seed=11)
    make_radiologist(user=cast.radiologist)
    patient_names = [part for part in re.split(r"[\^ ]+", study.patient_name) if part] + [study.patient_id]
    assert len(patient_names) >= 3
    quote = pricing.quote_for(center=cast.center, modalities=["CT"], priority="stat", kind="primary")
    price = pricing.format_money(quote.cents, quote.currency)

    with chromium_page(chromium_path) as (center_page, problems):
        center_page.set_viewport_size(VIEWPORT)
        sign_in(center_page, live_server, cast, "technologist")
        center_page.goto(f"{live_server.url}/studies/{study.public_id}/")
        center_page.click("main a:has-text('Request a read')")
        center_page.wait_for_url("**/reads/new/?study=*")
        center_page.select_option("select[name=priority]", "stat")
        center_page.fill("textarea[name=clinical_history]", HISTORY)
        center_page.click("main button[type=submit]:has-text('Post read request')")
        center_page.wait_for_url(re.compile(r".*/reads/[0-9a-f-]{36}/$"))
        assert HISTORY in center_page.inner_text("main")
        assert "Open" in center_page.inner_text(".page-header")
        shoot(center_page, "request-detail")
        center_page.click("nav a:has-text('Read requests')")
        center_page.wait_for_url("**/reads/")
        row = row_of(center_page, "#read-requests", "CT CHEST")
        assert row.count() == 1
        text = row.inner_text()
        assert "Open" in text
        assert "STAT" in text
        assert price in text
        assert re.search(r"\d+ (h \d+ )?min left", text), text
        shoot(center_page, "center-list")

        reader = second_page(center_page, problems)
        sign_in(reader, live_server, cast, "radiologist")
        reader.click("nav a:has-text('Worklist')")
        reader.wait_for_url("**/worklist/")
        offer = row_of(reader, "#offers", "CT")
        assert offer.count() == 1
        offer_text = offer.inner_text()
        assert price in offer_text
        assert "STAT" in offer_text
        assert "Lakeside Imaging" in offer_text
        assert re.search(r"\d+ (h \d+ )?min left", offer_text), offer_text
        page_text = reader.inner_text("body")
        assert not [name for name in patient_names if name in page_text], "the offer shows who the patient is"
        assert HISTORY not in page_text  # the clinical history comes with the claim, not the offer
        shoot(reader, "worklist")

        offer.locator("button:has-text('Claim')").click()
        reader.wait_for_selector("#my-reads tbody tr:has-text('CT CHEST')")
        assert row_of(reader, "#offers", "CT").count() == 0
        assert "The read is yours" in reader.inner_text("main")
        shoot(reader, "worklist-claimed")
        reader.locator("#my-reads tr:has-text('CT CHEST') button:has-text('Open in viewer')").click()
        reader.wait_for_url(re.compile(r".*/worklist/reads/[0-9a-f-]{36}/$"))  # the reading workspace
        reader.frame(name="viewer").wait_for_function(FIRST_IMAGE, polling=50, timeout=60_000)

        # The technologist's list catches up on its own (htmx polling, no reload).
        assignee = cast.radiologist.full_name or cast.radiologist.email
        row_of(center_page, "#read-requests", "In progress").filter(has_text=assignee).wait_for(timeout=POLL_TIMEOUT)
        reader.close()
        assert real_problems(problems) == []

    read_request = ReadRequest.objects.get(study=study)
    assert read_request.status == Status.IN_PROGRESS
    assert read_request.priority == "stat"
    assert read_request.clinical_history == HISTORY
    assert read_request.quoted_cents == quote.cents
    active = Assignment.objects.filter(read_request=read_request, status=Assignment.Status.ACTIVE)
    assert active.count() == 1
    assert active.get().radiologist.user == cast.radiologist
    assert StudyAccessGrant.objects.filter(user=cast.radiologist, study=study, level="full", revoked_at__isnull=True,
                                           expires_at__gt=timezone.now()).count() == 1
    assert AuditEvent.objects.filter(action="study.viewer_opened", actor=cast.radiologist,
                                     object_id=study.study_instance_uid, extra__level="full").count() == 1
    assert AuditEvent.objects.filter(action="study.accessed", actor=cast.radiologist,
                                     object_id__startswith=study.study_instance_uid).exists()


def test_operations_see_an_unclaimed_stat_at_risk_and_its_explanation(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, cast):
    """The STAT is flagged at posting (nobody eligible on shift); the urgent read is at risk by the clock."""
    live_server = one_request_at_a_time_on_sqlite
    make_radiologist(name="Dr Lapsed", license_expires=timezone.now().date() - timedelta(days=3))
    make_radiologist(name="Dr Nohours", hours="none")
    make_radiologist(name="Dr Mronly", modalities=("MR",))
    urgent = post(cast.technologist, ingest_study(cast.center, description="CT ABDOMEN"), priority="urgent")
    urgent.refresh_from_db()
    sla_tick(at=urgent.published_at + 0.85 * (urgent.deadline - urgent.published_at))
    urgent.refresh_from_db()
    assert urgent.status == Status.OPEN
    assert urgent.at_risk_at is not None
    stat = post(cast.technologist, ingest_study(cast.center, description="CT HEAD"), priority="stat")
    assert stat.no_on_shift_reader

    with chromium_page(chromium_path) as (page, problems):
        page.set_viewport_size(VIEWPORT)
        sign_in(page, live_server, cast, "platform_staff")
        page.click("nav a:has-text('Reads at risk')")
        page.wait_for_url("**/ops/reads/")
        at_risk = page.locator("#ops-at_risk tbody tr")
        assert at_risk.count() == 1
        assert "Urgent" in at_risk.inner_text()
        flagged = page.locator("#ops-no_reader_on_shift tbody tr")
        assert flagged.count() == 1
        assert "STAT" in flagged.inner_text()
        assert page.locator("#ops-unclaimed_stat tbody tr").count() == 1
        shoot(page, "ops")

        flagged.locator("a:has-text('Who can read it?')").click()
        page.wait_for_url(f"**/reads/{stat.public_id}/candidates/")
        assert "Nobody may read it now." in page.inner_text("main")
        reasons = [" ".join(r.split()) for r in page.locator("#excluded .mk-reasons li").all_inner_texts()]
        assert len(reasons) >= 2, reasons
        assert any(r.startswith("license US-TX expired") for r in reasons), reasons
        assert "no reading hours entered" in reasons, reasons
        assert "does not read CT" in reasons, reasons
        shoot(page, "explain")
        assert real_problems(problems) == []


def test_a_radiologist_sets_reading_hours(transactional_db, one_request_at_a_time_on_sqlite, chromium_path, cast):
    live_server = one_request_at_a_time_on_sqlite
    profile = make_radiologist(user=cast.radiologist, hours="none")

    with chromium_page(chromium_path) as (page, problems):
        page.set_viewport_size(VIEWPORT)
        sign_in(page, live_server, cast, "radiologist")
        page.click("nav a:has-text('Worklist')")
        page.click("main a:has-text('Reading hours and rates')")
        page.wait_for_url("**/settings/reading-hours/")
        page.fill("input[name=d4_0_start]", "22:00")  # Friday night into Saturday
        page.fill("input[name=d4_0_end]", "06:00")
        page.click("#hours button:has-text('Save reading hours')")
        page.wait_for_selector("text=Reading hours saved.")
        assert page.input_value("input[name=d4_0_start]") == "22:00"
        assert page.input_value("input[name=d4_0_end]") == "06:00"
        assert page.input_value("input[name=d3_0_start]") == ""
        shoot(page, "settings")
        assert real_problems(problems) == []

    assert list(ReadingHours.objects.filter(radiologist=profile).values_list("weekday", "starts", "ends")) == [
        (4, time(22, 0), time(6, 0))]
