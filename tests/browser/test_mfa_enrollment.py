"""Headless Chromium (Debian's, driven by Playwright): a demo admin signs in, enrolls TOTP with a
code computed from the secret shown on the page, and reaches the dashboard, with no console
error, page error or failed request on the way (a Content-Security-Policy violation is a console
error, so this also proves that no page needs inline script or style)."""

from __future__ import annotations

import io

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command

from tests.browser.conftest import DEMO_PASSWORD, chromium_page

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/readroom-dashboard.png"  # noqa: S108 - a fixed place to look at the result


def test_demo_admin_enrolls_totp_at_first_sign_in_and_reaches_the_dashboard(transactional_db, live_server,
                                                                            chromium_path):
    call_command("load_demo", stdout=io.StringIO())
    with chromium_page(chromium_path) as (page, problems):
        _enroll_and_reach_the_dashboard(page, live_server.url)
    assert problems == []
    assert Authenticator.objects.filter(user__email="admin@lakeside.demo", type=Authenticator.Type.TOTP).exists()


def _sign_in_and_enroll_totp(page, base_url: str, email: str) -> None:
    """Sign in as a demo user who sees patient data: enrollment comes first, then the recovery codes."""
    page.goto(f"{base_url}/accounts/login/")
    assert page.title().startswith("Sign in")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")

    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    assert page.locator("img.qr").is_visible()
    secret = page.inner_text("#totp-secret").strip()
    assert len(secret) >= 16
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")

    # allauth then shows the freshly generated recovery codes once.
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    assert page.locator("#recovery-codes li").count() == 10
    page.click("text=I have saved them — continue")
    page.wait_for_url(f"{base_url}/")


def _enroll_and_reach_the_dashboard(page, base_url: str) -> None:
    _sign_in_and_enroll_totp(page, base_url, "admin@lakeside.demo")
    assert page.locator("h1").inner_text() == "Dashboard"
    organization_facts = page.locator("section.card", has_text="Legal name")
    assert "Lakeside Imaging" in organization_facts.inner_text()
    assert "US-TX" in organization_facts.inner_text()
    assert "Two-factor on" in page.inner_text("main")
    assert "America/Chicago" in page.inner_text("footer")
    page.screenshot(path=SCREENSHOT, full_page=True)

    # The user menu opens (details element, no script needed) and signs out with a POST.
    page.click(".user-menu summary")
    page.click(".user-menu button:has-text('Sign out')")
    page.wait_for_url("**/accounts/login/**")


def test_platform_staff_check_the_audit_chain_in_place_with_htmx(transactional_db, live_server, chromium_path):
    """htmx (served from django-htmx's static files) swaps the chain status into the page under the CSP."""
    call_command("load_demo", stdout=io.StringIO())
    with chromium_page(chromium_path) as (page, problems):
        _sign_in_and_enroll_totp(page, live_server.url, "ops@readroom.demo")
        page.click("nav.mainnav >> text=Audit log")
        page.wait_for_url("**/ops/audit/")
        assert page.locator("table.table tbody tr").count() > 0
        page.click("#chain-status button:has-text('Verify chain')")
        page.wait_for_selector("#chain-result")
        assert page.inner_text("#chain-result") == "Chain intact"
        assert page.url == f"{live_server.url}/ops/audit/"  # swapped in place, not a new page
    assert problems == []
