"""Time to first image in the OHIF Viewer on ReadRoom's DICOMweb, as a radiologist sees it.

Sets up a throw-away PostgreSQL database with the demo organizations (no demo studies) and one
300-slice 512×512 CT at Lakeside, serves ReadRoom with gunicorn (DEBUG off, local-folder storage),
signs in as the center's admin in headless Chromium (Debian's, driven by Playwright) and opens the
study in the viewer 1 + --runs times in the same browser profile. Each opening is labelled by what the
browser already has, as Chromium's caches work:

- cold: the first opening, nothing cached (every script downloaded and compiled);
- warm: the second, the HTTP cache full (scripts compiled again; V8 writes its code cache now);
- hot: the third and later, scripts from the HTTP cache *and* their compiled code from V8's code cache
  (what a radiologist's browser, a persistent profile used all day, does from the third opening on).

By default the profile is a persistent one (a temporary user-data-dir, like a real browser's);
``--incognito`` uses an off-the-record context instead, as the browser tests' plain fixture does,
where Chromium keeps no code cache: every later opening is then "warm", never "hot".

Prints, per opening, the milliseconds from opening the viewer's address to the first image on screen
(tests/browser/viewer_probes.py FIRST_IMAGE), when OHIF's scripts were ready (DOMContentLoaded), the
first DICOMweb query and the first frame request; with --timeline each DICOMweb request before the
first image; then the medians per label, and the time to scroll through all 300 slices.

    uv run python bench/viewer.py [--runs 5] [--workers 4] [--slices 300] [--incognito] [--timeline]

Needs PostgreSQL on 127.0.0.1, Debian's chromium and the OHIF Viewer installed (bin/dev up does it).
The machine's load average is printed with each opening: the figures are CPU-bound (2 cores).
READROOM_BENCH_DB, READROOM_BENCH_DIR and READROOM_BENCH_PORT (18090) choose the database, the
working folder and the port.
Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _harness

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402 - the same Chromium as the browser tests
from tests.browser.viewer_probes import FIRST_IMAGE, overlay_shows  # noqa: E402

WORK = Path(os.environ.get("READROOM_BENCH_DIR", "/tmp/readroom-bench-viewer"))
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench_viewer")
PORT = int(os.environ.get("READROOM_BENCH_PORT", "18090"))
DICOMWEB_BEFORE = """(until) => performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/dicomweb/') && e.startTime < until)
  .map(e => [e.name.split('/dicomweb/')[1].split('?')[0].replace(/[0-9.]{20,}/g, '…'), e.startTime, e.responseEnd])"""


SETUP = """
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
import pyotp
from accounts.models import Organization, User
from tests.browser.test_viewer import ct_study
admin = User.objects.get(email="admin@lakeside.demo")
Authenticator.objects.filter(user=admin).delete()
secret = pyotp.random_base32()
TOTP.activate(admin, secret)
study = ct_study(Organization.objects.get(slug="lakeside"), slices=SLICES, size=512, seed=11)
print(secret, study.study_instance_uid)
"""


def setup(env, slices: int) -> tuple[str, str]:
    _harness.fresh_database(DB, capture=False)
    shutil.rmtree(WORK, ignore_errors=True)
    _harness.manage(env, "migrate", "--noinput")
    _harness.manage(env, "collectstatic", "--noinput")
    _harness.manage(env, "install_viewer")
    _harness.manage(env, "load_demo")
    out = _harness.manage(env, "shell", "-c", SETUP.replace("SLICES", str(slices)))
    secret, study_uid = out.strip().splitlines()[-1].split()
    return secret, study_uid


def sign_in(page, base: str, secret: str) -> None:
    import pyotp

    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", "admin@lakeside.demo")
    page.fill("input[name=password]", os.environ.get("DEMO_PASSWORD", "readroom-demo-2026"))
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/**")
    totp = pyotp.TOTP(secret)
    if totp.interval - time.time() % totp.interval < 4:
        time.sleep(4.2)
    page.fill("input[name=code]", totp.now())
    page.click("main button[type=submit]:has-text('Sign in')")
    page.wait_for_url(f"{base}/")


FIRST_FRAME_REQUEST = """() => (performance.getEntriesByType('resource')
  .find(e => e.name.includes('/frames/')) || {startTime: NaN}).startTime"""


def open_once(context, url: str) -> dict:
    tab = context.new_page()
    tab.goto(url)
    first = tab.wait_for_function(FIRST_IMAGE, polling=20, timeout=120_000).json_value()
    requests = tab.evaluate(DICOMWEB_BEFORE, first)
    boot = tab.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    return {"tab": tab, "first_ms": first, "boot_ms": boot, "requests": requests,
            "qido_ms": min((start for _, start, _ in requests), default=float("nan")),
            "frame_ms": tab.evaluate(FIRST_FRAME_REQUEST), "load": os.getloadavg()[0]}


def label_of(run: int, incognito: bool) -> str:
    """What the browser has cached at this opening (see the module's docstring)."""
    if run == 0:
        return "cold"
    return "warm" if incognito or run == 1 else "hot"


def browser_context(playwright, incognito: bool, profile_dir: str):
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    viewport = {"width": 1280, "height": 900}
    if incognito:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        return browser.new_context(viewport=viewport)
    return playwright.chromium.launch_persistent_context(profile_dir, executable_path=executable,
                                                         args=CHROMIUM_ARGS, viewport=viewport)


def scroll_through(tab, slices: int) -> float:
    """Wheel one slice at a time, each time waiting until the viewer's overlay shows it (as a reader scrolls)."""
    canvas = tab.locator(".cornerstone-canvas").bounding_box()
    tab.mouse.move(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
    started = time.perf_counter()
    for number in range(2, slices + 1):
        tab.mouse.wheel(0, 120)
        tab.wait_for_function(overlay_shows("bottom-right", f"({number}/{slices})"), timeout=30_000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="openings after the cold one (warm, then hot)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="keep the database and study of the previous run")
    parser.add_argument("--timeline", action="store_true", help="print each DICOMweb request before the first image")
    parser.add_argument("--incognito", action="store_true",
                        help="an off-the-record context (no V8 code cache: no opening is ever hot)")
    parser.add_argument("--no-scroll", action="store_true", help="skip scrolling through the slices at the end")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = _harness.server_env(db=DB, var_dir=WORK / "var", LOG_LEVEL="WARNING", DEMO_STUDIES="none",
                              VIEWER_DIR=os.environ.get("VIEWER_DIR", str(ROOT / "var" / "viewer")))
    saved = WORK / "bench-study.txt"
    if args.reuse and saved.exists():
        secret, study_uid = saved.read_text().split()
    else:
        print(f"setting up {DB} with a {args.slices}-slice 512x512 CT …", flush=True)
        secret, study_uid = setup(env, args.slices)
        saved.write_text(f"{secret} {study_uid}")
    web = _harness.serve_gunicorn(env, PORT, args.workers)
    base = f"http://127.0.0.1:{PORT}"
    url = f"{base}/viewer/viewer?StudyInstanceUIDs={study_uid}"
    profile = tempfile.TemporaryDirectory(prefix="readroom-bench-viewer-profile-")
    try:
        with sync_playwright() as playwright:
            context = browser_context(playwright, args.incognito, profile.name)
            sign_in(context.new_page(), base, secret)
            results = []
            for run in range(args.runs + 1):
                result = open_once(context, url)
                result["label"] = label = label_of(run, args.incognito)
                server = [round(end - start) for _, start, end in result["requests"]]
                print(f"{label:>5} {run + 1}: first image {result['first_ms']:6.0f} ms (scripts ready "
                      f"{result['boot_ms']:5.0f}, first query {result['qido_ms']:5.0f}, first frame request "
                      f"{result['frame_ms']:5.0f} ms; {len(server)} DICOMweb requests before it, "
                      f"{statistics.median(server):.0f} ms median each; load {result['load']:.1f})", flush=True)
                if args.timeline:
                    for path, start, end in result["requests"]:
                        print(f"           {start:6.0f} → {end:6.0f} ms  {path}")
                if run == args.runs and not args.no_scroll:
                    seconds = scroll_through(result["tab"], args.slices)
                result["tab"].close()
                results.append(result)
            context.close()
    finally:
        web.terminate()
        web.wait(timeout=30)
        profile.cleanup()
    profile_kind = "off-the-record context" if args.incognito else "persistent profile"
    print(f"\nfirst image, {args.slices}-slice CT ({profile_kind}; medians, ms):")
    for label in ("cold", "warm", "hot"):
        rows = [r for r in results if r["label"] == label]
        if rows:
            figures = [r["first_ms"] for r in rows]
            print(f"  {label:>4}: {statistics.median(figures):6.0f} (min {min(figures):.0f}, max {max(figures):.0f}, "
                  f"{len(rows)} opening{'s' * (len(rows) > 1)}; scripts ready "
                  f"{statistics.median(r['boot_ms'] for r in rows):.0f}, first query "
                  f"{statistics.median(r['qido_ms'] for r in rows):.0f}, first frame request "
                  f"{statistics.median(r['frame_ms'] for r in rows):.0f})")
    if not args.no_scroll:
        print(f"scrolling through all {args.slices} slices with the mouse wheel: {seconds:.1f} s "
              f"({(args.slices - 1) / seconds:.0f} slices/s)")
    print(f"machine load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
