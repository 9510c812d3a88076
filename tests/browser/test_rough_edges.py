"""Headless Chromium at a laptop's 1366 × 900 (issue 21): every demo role signs in and opens its dashboard and
the pages of its menu that had rough edges. Nothing in the top bar overlaps (the menu's links, the organization
pill, the account menu), the study list's last column (the viewer button) is inside the window, and each
dashboard shows that role's work. Screenshots go to $READROOM_SCREENSHOTS (default /tmp/readroom-screens) to
look at; CI keeps them as artifacts, they are never committed."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.browser.conftest import DEMO_PASSWORD, chromium_page, sign_in_with_totp
from tests.conftest import enroll_totp

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1366, "height": 900}
SCREENSHOTS = Path(os.environ.get("READROOM_SCREENSHOTS", "/tmp/readroom-screens"))  # noqa: S108 - not committed

# role → (demo email, pages to open after the dashboard: (name, path))
ROLES = {
    "center-admin": ("admin@lakeside.demo", [("studies", "/studies/"), ("radiologists", "/radiologists/")]),
    "technologist": ("tech@lakeside.demo", [("studies", "/studies/")]),
    "finance": ("finance@lakeside.demo", []),
    "radiologist": ("dr.okafor@radiologists.demo", []),
    "platform-ops": ("ops@readroom.demo", [("verification", "/ops/credentials/"), ("audit-log", "/ops/audit/")]),
}


def overlapping(boxes: list[tuple[str, dict]]) -> list[str]:
    """Pairs of named boxes whose areas intersect (touching edges do not count)."""
    found = []
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["width"] - 0.5 and b["x"] < a["x"] + a["width"] - 0.5
                    and a["y"] < b["y"] + b["height"] - 0.5 and b["y"] < a["y"] + a["height"] - 0.5):
                found.append(f"{name_a!r} overlaps {name_b!r}")
    return found


def topbar_boxes(page) -> list[tuple[str, dict]]:
    boxes = []
    for selector in (".topbar .brand", "nav.mainnav a", ".topbar .org-name", ".topbar .org-switcher",
                     ".topbar .user-menu > summary"):
        for item in page.locator(selector).all():
            if item.is_visible():
                boxes.append((item.inner_text().strip() or selector, item.bounding_box()))
    return boxes


def assert_view_column_fully_shown(page, role: str) -> None:
    """The last column (the View button) is inside the window and not clipped by the table's scroll box."""
    wrap = page.locator("table.study-table").locator("xpath=..")
    wrap_box = wrap.bounding_box()
    last_header = page.locator("table.study-table thead th").last
    for cell in (last_header, page.locator("table.study-table a.open-viewer").first):
        box = cell.bounding_box()
        assert box["x"] + box["width"] <= VIEWPORT["width"], role
        assert box["x"] + box["width"] <= wrap_box["x"] + wrap_box["width"], role
    assert wrap.evaluate("element => element.scrollWidth <= element.clientWidth"), role


def shoot(page, role: str, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{role}-{name}.png"), full_page=True)


def test_every_demo_role_at_1366_sees_its_work_and_nothing_overlaps(transactional_db, live_server, chromium_path):
    call_command("load_demo", stdout=io.StringIO())
    secrets = {role: enroll_totp(User.objects.get(email=email)) for role, (email, _) in ROLES.items()}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    with chromium_page(chromium_path) as (page, problems):
        for role, (email, pages) in ROLES.items():
            page.context.clear_cookies()
            page.set_viewport_size(VIEWPORT)
            sign_in_with_totp(page, live_server.url, email, DEMO_PASSWORD, secrets[role])
            shoot(page, role, "dashboard")
            seen[role] = page.inner_text("main")
            boxes = topbar_boxes(page)
            assert any(name == "Dashboard" for name, _ in boxes), role
            assert overlapping(boxes) == [], role
            assert all(box["x"] + box["width"] <= VIEWPORT["width"] for _, box in boxes), role
            for name, path in pages:
                page.goto(f"{live_server.url}{path}")
                shoot(page, role, name)
                assert overlapping(topbar_boxes(page)) == [], (role, name)
                scrolled = page.eval_on_selector_all(
                    ".table-wrap", "wraps => wraps.filter(w => w.scrollWidth > w.clientWidth).length")
                widths = page.eval_on_selector_all(
                    ".table-wrap th", "ths => ths.map(t => t.innerText + ': ' + Math.round(t.offsetWidth))")
                assert scrolled == 0, f"{role} {name}: a table is wider than its card: {widths}"
                if name == "studies":
                    assert_view_column_fully_shown(page, role)
    assert problems == []

    assert "Recent studies" in seen["technologist"]
    assert "complete" in seen["technologist"] or "receiving" in seen["technologist"]
    assert "What you will find here" in seen["finance"]
