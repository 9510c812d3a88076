"""Headless Chromium through the quality demo (issue 16), on the live server and the demo world.

Lakeside's admin opens the reported CT chest and sees its chain of overreads with the overread's verdict
(significant difference, addendum signed); the original reader, dr.nakamura, goes from "My quality" to
"Overreads and reviews of my reports" and answers the second level of the two-level read; Lakeside's QA
radiologist, dr.kowalski, goes from "My quality" to "Arbitration" and changes the demo's pending 2b to 2a with a
comment. Screenshots in /tmp/readroom-quality-<name>.png. No console error, page error, failed request or
HTTP error on the way.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import User
from marketplace.models import ReadRequest
from reporting.demo_quality import ARBITRATED, OVERREAD_ORIGINAL, TWO_LEVEL
from reporting.quality_models import OverreadReply, PeerReview
from tests.browser.conftest import DEMO_PASSWORD, chromium_page, sign_in_with_totp
from tests.browser.test_viewer import real_problems
from tests.conftest import enroll_totp

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1366, "height": 900}
SCREENSHOT = "/tmp/readroom-quality-{name}.png"  # noqa: S108 - a fixed place to look at the result
ADMIN, READER, QA = "admin@lakeside.demo", "dr.nakamura@radiologists.demo", "dr.kowalski@radiologists.demo"
ANSWER = "Thank you: agreed, the line tip is at the cavoatrial junction."
ARBITRATION_COMMENT = "The collection is 2 mm and stable on the follow-up: unlikely to be significant."


def shoot(page, name: str) -> None:
    page.screenshot(path=SCREENSHOT.format(name=name), full_page=True)


def sign_in_as(page, live_server, email: str, secret: str) -> None:
    page.context.clear_cookies()
    page.set_viewport_size(VIEWPORT)
    sign_in_with_totp(page, live_server.url, email, DEMO_PASSWORD, secret)


def test_a_center_sees_the_chain_the_reader_answers_and_the_qa_radiologist_arbitrates(
        transactional_db, live_server, chromium_path):
    call_command("load_demo", stdout=io.StringIO())
    secrets = {email: enroll_totp(User.objects.get(email=email)) for email in (ADMIN, READER, QA)}
    overread_original = ReadRequest.objects.get(idempotency_key=f"demo:{OVERREAD_ORIGINAL.key}")
    second_level = OverreadReply.objects.get(original_report__read_request__idempotency_key=f"demo:{TWO_LEVEL.key}")
    pending = PeerReview.objects.get(original_report__read_request__idempotency_key=f"demo:{ARBITRATED.key}")

    with chromium_page(chromium_path) as (page, problems):
        sign_in_as(page, live_server, ADMIN, secrets[ADMIN])
        page.goto(f"{live_server.url}/reads/{overread_original.public_id}/")
        page.wait_for_selector("#chain-steps")
        steps = page.locator("#chain-steps li.rq-chain-step")
        assert steps.count() == 2
        assert "Level 2" in steps.nth(1).inner_text()
        assert "Significant difference" in steps.nth(1).inner_text()
        assert "addendum signed" in steps.nth(1).inner_text()
        shoot(page, "center-chain")
        steps.nth(1).locator("a .badge").click()
        page.wait_for_selector("#overread-verdict")
        assert page.inner_text("#overread-agreement") == "Significant difference"
        assert "spiculated nodule" in page.inner_text("#overread-verdict")
        assert "signed an addendum" in page.inner_text("#overread-addendum")
        assert "missed the nodule" in page.inner_text("#overread-answer")
        shoot(page, "center-verdict")

        sign_in_as(page, live_server, READER, secrets[READER])
        page.click("nav a:has-text('My quality')")
        page.click("#link-received")
        page.wait_for_selector("#received-overreads")
        unanswered = page.locator("#received-overreads tbody tr", has_text="—")
        assert unanswered.count() == 1
        assert "Agree" in unanswered.inner_text()
        shoot(page, "reader-received")
        unanswered.locator("a").click()
        page.fill("#answer", ANSWER)
        page.click("#overread-answer-form button[type=submit]")
        page.wait_for_selector("text=Your answer was sent")
        assert ANSWER in page.inner_text("#overread-answer")
        shoot(page, "reader-answered")

        sign_in_as(page, live_server, QA, secrets[QA])
        page.click("nav a:has-text('My quality')")
        page.click("#link-arbitration")
        queue = page.locator("#arbitration-queue tbody tr")
        assert queue.count() == 1
        assert "2b" in queue.inner_text()
        queue.locator("a").click()
        page.wait_for_selector("#arbitration-form")
        assert "Blinded" in page.inner_text("main")
        assert "Nakamura" not in page.inner_text("main")
        assert "Whitfield" not in page.inner_text("main")
        shoot(page, "qa-arbitration")
        page.select_option("#score", "2a")
        page.fill("#comment", ARBITRATION_COMMENT)
        page.click("#arbitration-form button[type=submit]")
        page.wait_for_selector("text=The score is final: RADPEER 2a")
        assert "Nothing to arbitrate" in page.inner_text("#arbitration-queue")
        shoot(page, "qa-done")

    second_level.refresh_from_db()
    assert (second_level.answer, second_level.answered_by.email) == (ANSWER, READER)
    pending.refresh_from_db()
    assert (pending.status, pending.score, pending.final_score, pending.arbiter.user.email) == ("final", "2b", "2a", QA)
    assert real_problems(problems) == []
