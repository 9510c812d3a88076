"""A patient's CD upload from the browser, beside STOW-RS, and the order flow's page weights (issue 17).

Sets up a throw-away PostgreSQL database (migrated) with one patient living in New Mexico (details given,
so their private space exists), two chest readers licensed there (so that an order can be placed), and an
imaging center with a technologist API key. Writes --instances small real CT slices (256×256, one series)
as a CD export folder (DICOM/IMnnnn files) in a temporary folder. Serves ReadRoom with gunicorn (DEBUG off,
config/gunicorn.py). In headless Chromium (Debian's, driven by Playwright):

- signs in as the patient and gives the uploader (``#file-input``) the folder's files; times from choosing
  the files to ``#upload-progress[data-state=done]`` and checks every file answered "stored";
- sends the same files by STOW-RS in one request (``requests``, the center's API key: a patient may not
  use STOW-RS) and times it;
- walks the order flow (my images, the order form, an order placed with the terms accepted) and then
  opens each of its pages in a fresh context (cold cache, same session): bytes transferred per page
  (performance resource timing ``transferSize``, headers included, compressed as served) for HTML + JS +
  CSS beside the 500 KB target, and everything else (images, fonts) beside it.

    uv run python bench/patient_flow.py [--instances 500] [--size 256] [--workers 2]

Needs PostgreSQL on 127.0.0.1 and Debian's chromium. READROOM_BENCH_DB (readroom_bench_patients),
READROOM_BENCH_DIR and READROOM_BENCH_PORT (18094) choose the database, the working folder and the port.
The database and the working folder are removed at the end. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import _harness

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402 - the same Chromium as the browser tests

WORK = Path(os.environ.get("READROOM_BENCH_DIR", "/tmp/readroom-bench-patients"))
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench_patients")
PORT = int(os.environ.get("READROOM_BENCH_PORT", "18094"))
EMAIL = "cd.patient@bench.test"
PAGE_TARGET_BYTES = 500 * 1024

SETUP = """
import json
from datetime import date
from accounts import services
from accounts.models import Organization, User
from accounts.patients import patient_details_save
from accounts.policy import actor_for_user
from tests.factories import TEST_PASSWORD, UserFactory
from tests.marketplace.helpers import make_radiologist

patient = UserFactory(email="EMAIL", full_name="Cd Patient", kind=User.Kind.PATIENT)
patient_details_save(actor=actor_for_user(patient), date_of_birth=date(1979, 4, 2), country="US", region="NM")
for _ in range(2):
    make_radiologist(regions=("NM",), subspecialties=("chest",))
center = Organization.objects.create(name="Bench Imaging", legal_name="Bench Imaging LLC", slug="bench",
                                     kind="imaging_center", country="US", region="NM", time_zone="America/Denver")
_, secret = services.api_key_create(actor=None, organization=center, name="bench", roles=["technologist"])
print(json.dumps({"password": TEST_PASSWORD, "key": secret}))
"""

COUNT = """
from accounts.models import Organization
from studies.models import Instance
space = Organization.objects.get(patient_profile__user__email="EMAIL")
print(Instance.objects.filter(organization=space).count(), Instance.objects.filter(organization__slug="bench").count())
"""

# Bytes over the wire for the page itself and what it loaded, by kind (a cold cache: transferSize is real).
WEIGHTS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const sums = {html: nav.transferSize, js: 0, css: 0, other: 0, requests: 1};
  for (const e of performance.getEntriesByType('resource')) {
    const path = new URL(e.name).pathname;
    const kind = path.endsWith('.js') ? 'js' : path.endsWith('.css') ? 'css' : 'other';
    sums[kind] += e.transferSize;
    sums.requests += 1;
  }
  return sums;
}"""


def setup(env) -> dict:
    _harness.fresh_database(DB, capture=False)
    shutil.rmtree(WORK, ignore_errors=True)
    _harness.manage(env, "migrate", "--noinput")
    _harness.manage(env, "collectstatic", "--noinput")
    out = _harness.manage(env, "shell", "-c", SETUP.replace("EMAIL", EMAIL))
    return json.loads(out.strip().splitlines()[-1])


def cd_export(folder: Path, instances: int, size: int) -> list[Path]:
    """One CT series written as a CD export does it: DICOM/IMnnnn, no extension."""
    from studies import synthetic

    spec = synthetic.StudySpec(patient=synthetic.demo_patient(4), accession="CD0001", description="CT CHEST",
                               study_date=date(2026, 9, 1))
    (folder / "DICOM").mkdir(parents=True)
    paths = []
    for n, ds in enumerate(synthetic.ct_series(spec, slices=instances, size=size), 1):
        path = folder / "DICOM" / f"IM{n:04d}"
        path.write_bytes(synthetic.to_bytes(ds))
        paths.append(path)
    return paths


def stow(base: str, key: str, paths: list[Path]) -> tuple[float, int, int]:
    """All files in one multipart/related request; seconds, status and the request's size."""
    import requests

    boundary = "readroom-bench-patients"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes()
                    + b"\r\n" for path in paths) + b"--" + boundary.encode() + b"--\r\n"
    started = time.perf_counter()
    answer = requests.post(f"{base}/dicomweb/studies", data=body, timeout=600, headers={
        "Authorization": f"Bearer {key}", "Accept": "application/dicom+json",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    seconds = time.perf_counter() - started
    if answer.status_code != 200:
        print(f"STOW-RS answered {answer.status_code}: {answer.text[:500]}")
    return seconds, answer.status_code, len(body)


def upload_and_order(context, base: str, password: str, paths: list[Path]) -> tuple[float, str, list[str]]:
    """Sign in, upload the folder's files, place an order; the seconds of the upload, its result, the pages."""
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", EMAIL)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    upload_url = f"{base}/my/images/upload/"
    page.goto(upload_url)
    started = time.perf_counter()
    page.set_input_files("#file-input", [str(path) for path in paths])
    page.wait_for_selector("#upload-progress[data-state=done]", timeout=1_800_000)
    seconds = time.perf_counter() - started
    stored = page.inner_text("[data-count=stored]")
    images_url = f"{base}/my/images/"
    page.goto(images_url)
    page.click(".patient-study-title")
    page.click("text=Order a second opinion")
    page.wait_for_url("**/my/opinions/new/**")
    form_url = page.url
    page.check("input[name=accept_terms]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/my/opinions/*/")
    order_url = page.url
    page.close()
    return seconds, stored, [upload_url, images_url, form_url, order_url]


def weigh(browser, state: dict, url: str) -> dict:
    """The page opened in a fresh context with the session's cookies: nothing cached."""
    context = browser.new_context(storage_state=state, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("networkidle")
    sums = page.evaluate(WEIGHTS)
    context.close()
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = _harness.server_env(db=DB, var_dir=WORK / "var", LOG_LEVEL="WARNING", DEMO_STUDIES="none",
                              CELERY_TASK_ALWAYS_EAGER="true")
    print(f"setting up {DB}: a patient, two readers, a center; a {args.instances}-file CD export …", flush=True)
    data = setup(env)
    folder = Path(tempfile.mkdtemp(prefix="readroom-bench-cd-"))
    web = None
    try:
        paths = cd_export(folder, args.instances, args.size)
        megabytes = sum(path.stat().st_size for path in paths) / 1e6
        web = _harness.serve_gunicorn(env, PORT, args.workers, quiet=True)
        base = f"http://127.0.0.1:{PORT}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            upload_s, stored, pages = upload_and_order(context, base, data["password"], paths)
            print(f"browser upload: {upload_s:.2f} s, '{stored}' (load {os.getloadavg()[0]:.1f})", flush=True)
            state = context.storage_state()
            weights = [(url.removeprefix(base), weigh(browser, state, url)) for url in pages]
            browser.close()
        stow_s, status, body_bytes = stow(base, data["key"], paths)
        print(f"STOW-RS: {stow_s:.2f} s, HTTP {status} (load {os.getloadavg()[0]:.1f})", flush=True)
        counted = _harness.manage(env, "shell", "-c", COUNT.replace("EMAIL", EMAIL)).strip().splitlines()[-1]
        in_space, in_center = (int(n) for n in counted.split())
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)
        _harness.drop_database(DB, capture=False)

    n = args.instances
    print(f"\nfigures ({n} CT files of {args.size}x{args.size}, {megabytes:.1f} MB; 2 cores shared with the browser "
          "and PostgreSQL):")
    print(f"  {'browser upload (3 files at a time), choose → done':<52} {upload_s:7.1f} s  "
          f"{n / upload_s:6.1f} files/s  stored {in_space}/{n}")
    print(f"  {f'STOW-RS, one request of {body_bytes / 1e6:.1f} MB':<52} {stow_s:7.1f} s  "
          f"{n / stow_s:6.1f} files/s  stored {in_center}/{n}")
    print(f"  browser / STOW-RS: {upload_s / stow_s:.2f}×")
    print("page weights, cold cache (bytes transferred, compressed as served; target HTML+JS+CSS < 500 KB):")
    for path, w in weights:
        core = w["html"] + w["js"] + w["css"]
        verdict = "meets" if core < PAGE_TARGET_BYTES else "MISSES"
        path = re.sub(r"[0-9a-f-]{36}", "<uuid>", path)
        print(f"  {path:<30} HTML {w['html'] / 1024:5.1f} + JS {w['js'] / 1024:5.1f} + CSS {w['css'] / 1024:5.1f}"
              f" = {core / 1024:6.1f} KB  {verdict}   (other {w['other'] / 1024:.1f} KB, {w['requests']} requests)")
    print(f"machine load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")
    if in_space != n or in_center != n:
        raise SystemExit(f"expected {n} stored in each: patient {in_space}, center {in_center}")


if __name__ == "__main__":
    main()
