"""What the browser tests share: a headless Chromium page that records every console error, page
error, failed request and HTTP error, and the sign-in steps (password, then TOTP)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

import pyotp
import pytest

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "readroom-demo-2026")


@pytest.fixture(autouse=True)
def _allow_orm_under_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in the test body
    # (the demo command, the assertions) are still synchronous and safe. Scoped to these tests so
    # that the variable never leaks into other tests' subprocesses.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _private_media_and_small_demo_studies(settings, tmp_path):
    """Files go to this test's own folder; the demo world's studies are made with tiny images."""
    settings.DEMO_STUDIES = "small"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}


@contextmanager
def chromium_page(chromium_path: str, profile_dir=None):
    """A fresh headless page, and the list every console error, page error or failed request lands in.

    With ``profile_dir`` the browser keeps a persistent profile there, as a radiologist's browser does:
    unlike an off-the-record context, it keeps V8's code cache of the scripts it has run.
    Started inside the test, after its database work: Playwright's sync API switches greenlets, and
    ORM calls made under it would open a connection that nothing closes.
    """
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        options = {"executable_path": chromium_path, "args": CHROMIUM_ARGS}
        if profile_dir is None:
            browser = playwright.chromium.launch(**options)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
        else:
            context = browser = playwright.chromium.launch_persistent_context(
                str(profile_dir), viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(20_000)
        for opened in context.pages:  # a persistent context starts with a window
            watch(opened, problems)
        context.on("page", lambda new_page: watch(new_page, problems))  # tabs opened by links too
        page = context.pages[0] if context.pages else context.new_page()
        try:
            yield page, problems
        finally:
            browser.close()


# A request the browser itself cancels when the page moves on (a favicon or thumbnail still loading) is no fault
# of the server's: anything the server got wrong shows as an HTTP status, which is still recorded.
ABORTED_BY_NAVIGATION = "net::ERR_ABORTED"


def watch(page, problems: list[str]) -> None:
    """Record the page's console errors and warnings, page errors, failed requests and HTTP errors."""
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in {"error", "warning"} else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} {req.failure}")
            if req.failure != ABORTED_BY_NAVIGATION else None)
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400 else None)


def sign_in_with_totp(page, base_url: str, email: str, password: str, totp_secret: str) -> None:
    """Sign in through the pages as a user who already has TOTP: password, then a code from the secret."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    totp = pyotp.TOTP(totp_secret)
    remaining = totp.interval - time.time() % totp.interval
    if remaining < 4:  # a code about to expire may be checked in the next window: wait for a fresh one
        time.sleep(remaining + 0.2)
    page.fill("input[name=code]", totp.now())
    page.click("main button[type=submit]:has-text('Sign in')")
    page.wait_for_url(f"{base_url}/")


@pytest.fixture
def one_request_at_a_time_on_sqlite(live_server):
    """Serialise the live server's requests when the test database is SQLite in memory.

    Django's live server shares one SQLite connection between all its request threads, which is not
    safe for pages that send several requests at once (the upload page sends three). PostgreSQL (CI)
    gets real concurrent requests; on SQLite the browser still has three in flight, the server
    answers them one after the other.
    """
    import threading

    from django.db import connection

    if connection.vendor != "sqlite":
        yield live_server
        return
    server = live_server.thread.httpd
    app = server.get_app()
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    server.set_app(serialised)
    try:
        yield live_server
    finally:
        server.set_app(app)
