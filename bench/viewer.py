"""Time to first image in the OHIF Viewer on ReadRoom's DICOMweb, as a radiologist sees it.

Sets up a throw-away PostgreSQL database with the demo organizations (no demo studies) and one
300-slice 512×512 CT at Lakeside, serves ReadRoom with gunicorn (DEBUG off, local-folder storage),
signs in as the center's admin in headless Chromium (Debian's, driven by Playwright) and opens the
study in the viewer: once with a fresh browser (the viewer's scripts compiled for the first time),
then --runs more times in the same browser (its cache warm, as all day long). Prints, per opening,
the milliseconds from opening the viewer's address to the first image on screen, the DICOMweb
requests made before it and their server times; then the medians, and the time to scroll through
all 300 slices.

    uv run python bench/viewer.py [--runs 5] [--workers 4] [--slices 300]

Needs PostgreSQL on 127.0.0.1, Debian's chromium and the OHIF Viewer installed (bin/dev up does it).
Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402 - the same Chromium as the browser tests
from tests.browser.viewer_probes import FIRST_IMAGE, overlay_shows  # noqa: E402

WORK = Path(os.environ.get("READROOM_BENCH_DIR", "/tmp/readroom-bench-viewer"))
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench_viewer")
PG = os.environ.get("READROOM_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PORT = 18090
DICOMWEB_BEFORE = """(until) => performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/dicomweb/') && e.startTime < until)
  .map(e => [e.name.split('/dicomweb/')[1].split('?')[0].replace(/[0-9.]{20,}/g, '…'), e.startTime, e.responseEnd])"""


def server_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_ALLOW")}
    env.update({"DATABASE_URL": f"{PG}/{DB}", "READROOM_VAR_DIR": str(WORK / "var"), "DEBUG": "false",
                "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "LOG_LEVEL": "WARNING", "DEMO_STUDIES": "none",
                "VIEWER_DIR": os.environ.get("VIEWER_DIR", str(ROOT / "var" / "viewer"))})
    return env


def manage(env, *args, capture=True) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True, check=True,
                          capture_output=capture)
    return done.stdout or ""


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
    for statement in (f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)', f'CREATE DATABASE "{DB}"'):
        subprocess.run(["psql", f"{PG}/postgres", "-q", "-c", statement], check=True)
    shutil.rmtree(WORK, ignore_errors=True)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    manage(env, "install_viewer")
    manage(env, "load_demo")
    out = manage(env, "shell", "-c", SETUP.replace("SLICES", str(slices)))
    secret, study_uid = out.strip().splitlines()[-1].split()
    return secret, study_uid


def serve(env, workers: int) -> subprocess.Popen:
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{PORT}",
                            "-w", str(workers), "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
            return web
        except OSError:
            time.sleep(0.2)
    web.terminate()
    raise SystemExit("gunicorn did not answer /healthz")


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


def open_once(context, url: str) -> dict:
    tab = context.new_page()
    tab.goto(url)
    first = tab.wait_for_function(FIRST_IMAGE, polling=20, timeout=120_000).json_value()
    requests = tab.evaluate(DICOMWEB_BEFORE, first)
    boot = tab.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    return {"tab": tab, "first_ms": first, "boot_ms": boot, "requests": requests}


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
    parser.add_argument("--runs", type=int, default=5, help="warm openings after the cold one")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="keep the database and study of the previous run")
    parser.add_argument("--timeline", action="store_true", help="print each DICOMweb request before the first image")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = server_env()
    saved = WORK / "bench-study.txt"
    if args.reuse and saved.exists():
        secret, study_uid = saved.read_text().split()
    else:
        print(f"setting up {DB} with a {args.slices}-slice 512x512 CT …", flush=True)
        secret, study_uid = setup(env, args.slices)
        saved.write_text(f"{secret} {study_uid}")
    web = serve(env, args.workers)
    base = f"http://127.0.0.1:{PORT}"
    url = f"{base}/viewer/viewer?StudyInstanceUIDs={study_uid}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            sign_in(context.new_page(), base, secret)
            results = []
            for run in range(args.runs + 1):
                result = open_once(context, url)
                label = "cold" if run == 0 else f"warm {run}"
                server = [round(end - start) for _, start, end in result["requests"]]
                print(f"{label:>7}: first image {result['first_ms']:6.0f} ms (scripts ready "
                      f"{result['boot_ms']:5.0f} ms; {len(server)} DICOMweb requests before it, "
                      f"{statistics.median(server):.0f} ms median each)", flush=True)
                if args.timeline:
                    for path, start, end in result["requests"]:
                        print(f"           {start:6.0f} → {end:6.0f} ms  {path}")
                if run == args.runs:
                    seconds = scroll_through(result["tab"], args.slices)
                result["tab"].close()
                results.append(result)
            browser.close()
    finally:
        web.terminate()
        web.wait(timeout=30)
    warm = [r["first_ms"] for r in results[1:]]
    print(f"\nfirst image, {args.slices}-slice CT: cold {results[0]['first_ms']:.0f} ms; warm median "
          f"{statistics.median(warm):.0f} ms (min {min(warm):.0f}, max {max(warm):.0f}) over {len(warm)} openings")
    print(f"scrolling through all {args.slices} slices with the mouse wheel: {seconds:.1f} s "
          f"({(args.slices - 1) / seconds:.0f} slices/s)")
    print(f"machine load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
