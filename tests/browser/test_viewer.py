"""Headless Chromium: the OHIF Viewer that `bin/dev test` installs, on our own DICOMweb, opened from
ReadRoom's pages.

- A center admin opens a 300-slice 512×512 CT from its study page, in a browser with a persistent
  profile as a radiologist's is: the first image appears, the viewer's own overlay shows slice 1/300
  and W 400 / L 40, the mouse wheel moves to slice 2/300, a drag changes the window, and the
  screenshots are neither blank nor alike. The time from opening the viewer to the first image is
  printed (never asserted) for three openings: cold (nothing cached), warm (the scripts from ReadRoom's
  service worker, which kept them, compiled, after the first opening; it keeps nothing else) and hot (as
  from the third opening on all day; an off-the-record context never gets there).
- A JPEG 2000 study is sent to the viewer as stored (the frames' part type names JPEG 2000) and
  decoded by the viewer's own codec; its series thumbnail is a JPEG our server renders.
- A radiologist with a full grant opens the study from their study list; once the grant is revoked,
  the next DICOMweb request and the next opening are refused (404).
- Another center's admin gets our 404 page and nothing from DICOMweb.
No console error, page error, failed request or HTTP error on the way, except where the test
provokes it.
"""

from __future__ import annotations

import io
import re
import threading
from datetime import date, timedelta

import pytest
from django.db import connections
from django.utils import timezone
from PIL import Image, ImageChops, ImageStat
from pydicom.uid import JPEG2000Lossless

from accounts.models import AuditEvent
from studies import synthetic, viewer
from studies.ingest import Source, ingest_files
from studies.models import Study
from studies.services import study_access_grant_create, study_access_grant_revoke
from tests.browser.conftest import chromium_page, sign_in_with_totp
from tests.browser.viewer_probes import FIRST_IMAGE, overlay_shows
from tests.conftest import require_or_skip
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/readroom-viewer-{name}.png"  # noqa: S108 - a fixed place to look at the result
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"

# Not the viewer's problems: our probe reads the canvas back (Chromium suggests a flag for that), and
# closing a tab cancels the prefetch of the remaining slices (the browser aborts those requests).
CONSOLE_404 = "console error: Failed to load resource: the server responded with a status of 404 (Not Found)"
NOT_PROBLEMS = ("willReadFrequently", "net::ERR_ABORTED")


@pytest.fixture
def viewer_installed():
    require_or_skip(viewer.is_installed(), "the OHIF Viewer is not installed: run `manage.py install_viewer` "
                                           "(bin/dev test does)")


def ingest_study(organization, datasets) -> Study:
    """Store the data sets through the one ingest service, 50 at a time (a 300-slice CT is ~160 MB)."""
    for start in range(0, len(datasets), 50):
        files = [(f"IM{start + i:05d}", io.BytesIO(synthetic.to_bytes(ds)))
                 for i, ds in enumerate(datasets[start:start + 50])]
        outcomes = ingest_files(organization=organization, files=files, source=Source.UPLOAD)
        assert all(o.ok for o in outcomes), [o.reason for o in outcomes if not o.ok]
    return Study.objects.get(organization=organization, study_instance_uid=datasets[0].StudyInstanceUID)


def ct_study(organization, *, slices: int, size: int, seed: int = 0, compress: str | None = None) -> Study:
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(seed), accession=f"LKS2611{seed:05d}",
                               description="CT CHEST WITH CONTRAST", study_date=date(2026, 11, 20))
    datasets = synthetic.ct_series(spec, slices=slices, size=size)
    if compress:
        for ds in datasets:
            ds.compress(compress)  # pylibjpeg-openjpeg encodes, as it decodes for our renderer
    return ingest_study(organization, datasets)


def in_another_thread(work) -> None:
    """Run ORM work beside Playwright's event loop, on a connection of its own that is closed after."""
    def run():
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def open_viewer_tab(page, link_selector: str):
    """Click a "View" link (it opens a new tab); wait for the first image. Returns (tab, ms to first image)."""
    with page.context.expect_page() as opened:
        page.click(link_selector)
    tab = opened.value
    first_image_ms = tab.wait_for_function(FIRST_IMAGE, polling=50, timeout=60_000).json_value()
    return tab, first_image_ms


SERVER_THUMBNAIL = """() => [...document.querySelectorAll('img')].some(img =>
  new URL(img.src, location.href).pathname.endsWith('/thumbnail') && img.complete && img.naturalWidth > 0)"""


def overlay(tab, corner: str) -> str:
    return " ".join(tab.locator(f'[data-cy="viewport-overlay-{corner}"]').inner_text().split())


def window_level(tab) -> tuple[float, float]:
    match = re.fullmatch(r"W: ?(-?[\d.]+) L: ?(-?[\d.]+)", overlay(tab, "bottom-left"))
    assert match, overlay(tab, "bottom-left")
    return float(match[1]), float(match[2])


def viewport_image(tab, name: str) -> Image.Image:
    path = SCREENSHOT.format(name=name)
    tab.locator(".cornerstone-canvas").screenshot(path=path)
    return Image.open(path).convert("L")


def assert_not_blank(image: Image.Image) -> None:
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 20, f"the viewport looks blank (mean {stat.mean[0]:.1f}, stddev {stat.stddev[0]:.1f})"
    lit = sum(image.histogram()[40:]) / (image.width * image.height)
    assert lit > 0.1, f"only {lit:.1%} of the viewport is lit"


def real_problems(problems: list[str]) -> list[str]:
    return [p for p in problems if not any(noise in p for noise in NOT_PROBLEMS)]


def only_the_provoked_404s(problems: list[str], urls: list[str]) -> None:
    """The problems are exactly the 404s the test provoked (each with the console's own line about it)."""
    provoked = [f"HTTP 404: {url}" for url in urls]
    assert sorted(p for p in real_problems(problems) if p != CONSOLE_404) == sorted(provoked)
    assert real_problems(problems).count(CONSOLE_404) <= len(provoked)


def frame_content_types(responses) -> set[str]:
    return {content_type for url, content_type in responses if "/frames/" in url}


def record_dicomweb(page) -> list[tuple[str, str]]:
    responses: list[tuple[str, str]] = []
    page.context.on("response", lambda r: responses.append((r.url, r.headers.get("content-type", "")))
                    if "/dicomweb/" in r.url else None)
    return responses


SERVICE_WORKER_ACTIVE = """async () => {
  for (let waited = 0; waited < 120000; waited += 250) {
    const registration = await navigator.serviceWorker.getRegistration('/viewer/');
    if (registration && registration.active && registration.active.state === 'activated') { return true; }
    await new Promise((ok) => setTimeout(ok, 250));
  }
  return false;
}"""
CACHED_PATHS = """async () => {
  const paths = [];
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) { paths.push(new URL(request.url).pathname); }
  }
  return paths;
}"""
DICOMWEB_ROUTES = """() => performance.getEntriesByType('resource')
  .filter((e) => new URL(e.name).pathname.startsWith('/dicomweb/')).map((e) => e.workerMatchedSourceType)"""
SCRIPTS_THROUGH_THE_WORKER = """() => performance.getEntriesByType('resource')
  .filter((e) => /\\.js$/.test(new URL(e.name).pathname) && e.workerStart > 0).length"""


def test_center_admin_opens_a_300_slice_ct_from_the_study_page_scrolls_and_windows_it(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast, capsys, tmp_path):
    live_server = one_request_at_a_time_on_sqlite
    study = ct_study(cast.center, slices=300, size=512)

    with chromium_page(chromium_path, profile_dir=tmp_path / "chromium-profile") as (page, problems):
        responses = record_dicomweb(page)
        sign_in_with_totp(page, live_server.url, cast.center_admin.email, TEST_PASSWORD,
                          cast.totp_secrets["center_admin"])
        page.goto(f"{live_server.url}/studies/{study.public_id}/")
        tab, cold_ms = open_viewer_tab(page, "a.open-viewer:has-text('Open in viewer')")

        assert tab.url.startswith(f"{live_server.url}/viewer/viewer?StudyInstanceUIDs={study.study_instance_uid}")
        tab.wait_for_function(overlay_shows("bottom-right", "/300"))
        assert overlay(tab, "bottom-right") == "I:1 (1/300)"
        assert window_level(tab) == (400, 40)
        assert "ReadRoom" in tab.locator('[data-cy="readroom-home"]').inner_text()
        first = viewport_image(tab, "ct-first")
        assert_not_blank(first)
        tab.wait_for_function(SERVER_THUMBNAIL)  # the series' thumbnail, as our server renders it

        canvas = tab.locator(".cornerstone-canvas").bounding_box()
        x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
        tab.mouse.move(x, y)
        tab.mouse.wheel(0, 120)
        tab.wait_for_function(overlay_shows("bottom-right", "(2/300)"))
        assert overlay(tab, "bottom-right") == "I:2 (2/300)"

        tab.mouse.down()  # the primary button windows by default
        tab.mouse.move(x + 150, y + 80, steps=10)
        tab.mouse.up()
        tab.wait_for_function("() => !document.querySelector('[data-cy=\"viewport-overlay-bottom-left\"]')"
                              "?.innerText.replace(/\\s+/g, ' ').includes('W: 400 L: 40')")
        width, level = window_level(tab)
        assert (width, level) != (400, 40)
        assert width > 0
        windowed = viewport_image(tab, "ct-windowed")
        assert ImageStat.Stat(ImageChops.difference(first, windowed)).mean[0] > 2, "the window change shows no change"

        # ReadRoom's service worker, registered a few seconds after the viewer loaded, keeps its scripts.
        assert tab.evaluate(SERVICE_WORKER_ACTIVE)
        kept = tab.evaluate(CACHED_PATHS)
        assert len(kept) > 50  # the release's content-hashed scripts (webpack's chunks and workers)
        assert all(re.fullmatch(r"/[\w.-]+\.[0-9a-f]{12,20}\.js", path) for path in kept), kept
        assert set(viewer.precached_scripts()) == set(kept)

        # Twice more, as a radiologist does all day: the viewer's scripts now come from the service worker's
        # cache, compiled when it kept them (warm), then as from the third opening on (hot).
        tab.close()
        tab, warm_ms = open_viewer_tab(page, "a.open-viewer:has-text('Open in viewer')")
        assert overlay(tab, "bottom-right") == "I:1 (1/300)"
        assert tab.evaluate("() => navigator.serviceWorker.controller !== null")
        assert tab.evaluate(SCRIPTS_THROUGH_THE_WORKER) > 30
        # DICOMweb goes straight to the network: the worker's static routes send it there without waking it.
        assert set(tab.evaluate(DICOMWEB_ROUTES)) == {"network"}
        tab.close()
        tab, hot_ms = open_viewer_tab(page, "a.open-viewer:has-text('Open in viewer')")
        assert overlay(tab, "bottom-right") == "I:1 (1/300)"
        tab.close()
        assert real_problems(problems) == []

    types = frame_content_types(responses)
    assert types
    assert all(t.startswith(f'multipart/related; type="application/octet-stream; transfer-syntax={EXPLICIT_VR_LE}"')
               for t in types), types
    sessions = AuditEvent.objects.filter(action="study.viewer_opened", actor=cast.center_admin,
                                         object_id=study.study_instance_uid)
    assert sessions.count() == 3
    assert AuditEvent.objects.filter(action="study.accessed", actor=cast.center_admin,
                                     object_id__startswith=study.study_instance_uid).count() >= 3
    with capsys.disabled():
        print(f"\n[viewer] 300-slice 512x512 CT, first image after opening the viewer (persistent profile): "
              f"{cold_ms:.0f} ms cold (nothing cached), {warm_ms:.0f} ms warm (scripts kept by the service worker, "
              f"compiled), {hot_ms:.0f} ms hot (from the third opening on)")


def test_a_jpeg_2000_study_goes_to_the_viewer_as_stored_and_is_decoded_there(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast):
    live_server = one_request_at_a_time_on_sqlite
    study = ct_study(cast.center, slices=24, size=256, seed=3, compress=JPEG2000Lossless)

    with chromium_page(chromium_path) as (page, problems):
        responses = record_dicomweb(page)
        sign_in_with_totp(page, live_server.url, cast.technologist.email, TEST_PASSWORD,
                          cast.totp_secrets["technologist"])
        page.goto(f"{live_server.url}/studies/")
        tab, _ = open_viewer_tab(page, f"tr:has(a[href*='{study.public_id}']) a.open-viewer")
        assert overlay(tab, "bottom-right") == "I:1 (1/24)"
        assert_not_blank(viewport_image(tab, "j2k"))
        tab.wait_for_function(SERVER_THUMBNAIL)  # decoded and rendered by our server
        tab.close()
        assert real_problems(problems) == []

    types = frame_content_types(responses)
    assert types
    assert all(t.startswith(f'multipart/related; type="application/octet-stream; transfer-syntax={JPEG2000Lossless}"')
               for t in types), types
    assert {content_type for url, content_type in responses if "/thumbnail" in url} == {"image/jpeg"}


def test_a_radiologist_reads_with_a_full_grant_and_is_cut_off_when_it_is_revoked(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast):
    live_server = one_request_at_a_time_on_sqlite
    study = ct_study(cast.center, slices=20, size=256, seed=5)
    series = study.series.get()
    grant = study_access_grant_create(actor=None, study=study, user=cast.radiologist, level="full",
                                      reason="read assigned", expires_at=timezone.now() + timedelta(hours=4))
    metadata_url = f"/dicomweb/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/metadata"
    fetch_status = (f"() => fetch('{metadata_url}', {{headers: {{Accept: 'application/dicom+json'}}}})"
                    ".then(r => r.status)")

    with chromium_page(chromium_path) as (page, problems):
        sign_in_with_totp(page, live_server.url, cast.radiologist.email, TEST_PASSWORD,
                          cast.totp_secrets["radiologist"])
        page.goto(f"{live_server.url}/studies/")
        tab, _ = open_viewer_tab(page, f"tr:has(a[href*='{study.public_id}']) a.open-viewer")
        assert overlay(tab, "bottom-right") == "I:1 (1/20)"
        assert_not_blank(viewport_image(tab, "radiologist"))
        assert tab.evaluate(fetch_status) == 200

        in_another_thread(lambda: study_access_grant_revoke(actor=None, grant=grant))
        assert tab.evaluate(fetch_status) == 404  # the viewer's next request is refused
        viewer_url = tab.url
        response = tab.reload()
        assert response.status == 404
        assert "Page not found" in tab.inner_text("main")
        tab.close()
        # Refused from the revocation on: our probe, the reload, and whatever the viewer was still
        # prefetching of that study; nothing else went wrong.
        refused = [p for p in real_problems(problems) if p.startswith("HTTP 404: ")]
        assert f"HTTP 404: {live_server.url}{metadata_url}" in refused
        assert f"HTTP 404: {viewer_url}" in refused
        study_prefix = f"HTTP 404: {live_server.url}/dicomweb/studies/{study.study_instance_uid}/"
        assert all(p.startswith(study_prefix) or p == f"HTTP 404: {viewer_url}" for p in refused)
        # A prefetch still in flight at the revocation is refused too, and the viewer logs that to its console
        # (under load, more of them are in flight): those lines name the study's own DICOMweb resources.
        study_path = f"/dicomweb/studies/{study.study_instance_uid}/"
        viewer_noise = [p for p in real_problems(problems) if p.startswith("console ")
                        and (study_path in p or "CORNERSTONE_IMAGE_LOAD_FAILED" in p)]
        assert set(real_problems(problems)) - set(refused) - set(viewer_noise) <= {CONSOLE_404}

    assert AuditEvent.objects.filter(action="study.viewer_opened", actor=cast.radiologist,
                                     object_id=study.study_instance_uid, extra__level="full").count() == 1


def test_an_outsider_gets_404_from_the_viewer_and_from_dicomweb(
        transactional_db, one_request_at_a_time_on_sqlite, chromium_path, viewer_installed, cast):
    live_server = one_request_at_a_time_on_sqlite
    study = ct_study(cast.center, slices=4, size=128, seed=7)
    viewer_path = f"/viewer/viewer?StudyInstanceUIDs={study.study_instance_uid}"

    with chromium_page(chromium_path) as (page, problems):
        sign_in_with_totp(page, live_server.url, cast.other_admin.email, TEST_PASSWORD,
                          cast.totp_secrets["other_admin"])
        response = page.goto(f"{live_server.url}{viewer_path}")
        assert response.status == 404
        assert "Page not found" in page.inner_text("main")
        assert page.locator(".cornerstone-canvas").count() == 0
        statuses = page.evaluate(f"""async () => [
            (await fetch('/dicomweb/studies/{study.study_instance_uid}/series')).status,
            await (await fetch('/dicomweb/studies?StudyInstanceUID={study.study_instance_uid}')).json(),
        ]""")
        assert statuses == [404, []]
        only_the_provoked_404s(problems, [f"{live_server.url}{viewer_path}",
                                          f"{live_server.url}/dicomweb/studies/{study.study_instance_uid}/series"])

    assert not AuditEvent.objects.filter(action="study.viewer_opened").exists()
