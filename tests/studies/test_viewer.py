"""The OHIF Viewer as ReadRoom serves it: the pinned install (all or nothing, checked), the shell under
/viewer/ (who opens which study, audited), the configuration OHIF runs with, and the links to it.

The install tests use small tarballs shaped like ``@ohif/app``'s; the real release is installed by
``bin/dev test`` and exercised end to end by tests/browser/test_viewer.py.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from studies import synthetic, viewer
from studies.models import StudyAccessGrant
from studies.services import study_access_grant_create, study_access_grant_revoke
from tests.conftest import require_or_skip
from tests.studies.test_pages import CANARY, spec
from tests.studies.test_pages import ingest as ingest_study

SHELL = (b'<!doctype html><html><head><script>console.time("scriptToView"),window.PUBLIC_URL="/"</script>'
         b'<script defer="defer" src="/app.bundle.0123456789abcdef.js"></script></head><body></body></html>')


def make_tarball(path, files: dict[str, bytes], *, symlink: str | None = None):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return path


def release_files() -> dict[str, bytes]:
    return {
        "package/package.json": b'{"name": "@ohif/app", "version": "0.0.0-test"}',
        "package/dist/index.html": SHELL,
        "package/dist/app.bundle.0123456789abcdef.js": b"console.log('viewer');" * 200,
        "package/dist/0ddf166f7a343eda.wasm": b"\0asm\1\0\0\0" + b"\0" * 2000,
        "package/dist/assets/favicon.ico": b"icon",
        "package/dist/app-config.js": b"window.config = {dataSources: [{qidoRoot: 'https://public.example'}]};",
        "package/dist/ort/ort-wasm-simd.wasm": b"\0asm" + b"\0" * 100,
        "package/dist/_redirects": b"/* /index.html 200",
        "package/dist/serve.json": b"{}",
        "package/dist/1673.bundle.76779c7722e8c6c0.js": b"console.log('chunk');" * 100,
        "package/dist/google.js": b"console.log('not content-hashed');",
        "package/dist/sw.js": b"importScripts('https://storage.googleapis.com/workbox-cdn/workbox-sw.js');",
        "package/dist/init-service-worker.js": b"navigator.serviceWorker.getRegistrations().then(r => r.unregister());",
    }


@pytest.fixture
def ct_study(cast):
    return ingest_study(cast.center, synthetic.ct_series(spec(0), slices=3, size=32))


@pytest.fixture
def canary_study(cast):
    """A study whose every PHI attribute (nested and private too) carries the canary string."""
    return ingest_study(cast.center, [synthetic.with_private_and_nested_phi(ds, CANARY)
                                      for ds in synthetic.ct_series(spec(3), slices=2, size=32)])


@pytest.fixture
def viewer_settings(settings, tmp_path):
    settings.VIEWER_DIR = tmp_path / "viewer"
    settings.VIEWER_ROOT = settings.VIEWER_DIR / "ohif-test"
    return settings


@pytest.fixture
def release(viewer_settings, tmp_path):
    tarball = make_tarball(tmp_path / "ohif-app-test.tgz", release_files())
    viewer_settings.VIEWER_OHIF_INTEGRITY = viewer.integrity_of(tarball)
    return tarball


@pytest.fixture
def installed(release):
    viewer.install(tarball=release)
    return release


# --- install ------------------------------------------------------------------------------------------

def test_install_puts_the_shell_aside_serves_the_rest_compressed_and_drops_their_config_and_ai_runtimes(
        release, viewer_settings):
    result = viewer.install(tarball=release)
    root = viewer_settings.VIEWER_ROOT
    assert result.root == root
    assert not result.already_installed
    assert (root / "index.html").read_bytes() == SHELL  # not under public/: never served as a file
    public = root / "public"
    # OHIF's service worker and the script that unregisters every other one are left out too.
    assert sorted(p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file()) == [
        "0ddf166f7a343eda.wasm", "0ddf166f7a343eda.wasm.gz", "1673.bundle.76779c7722e8c6c0.js",
        "1673.bundle.76779c7722e8c6c0.js.gz", "app.bundle.0123456789abcdef.js", "app.bundle.0123456789abcdef.js.gz",
        "assets/favicon.ico", "google.js"]
    assert result.files == 6
    assert json.loads((root / viewer.STAMP).read_text())["integrity"] == viewer_settings.VIEWER_OHIF_INTEGRITY
    assert viewer.is_installed()


def test_install_is_idempotent_and_replaces_other_versions(release, viewer_settings):
    old = viewer_settings.VIEWER_DIR / "ohif-0.9.0"
    (old / "public").mkdir(parents=True)
    viewer.install(tarball=release)
    marker = viewer_settings.VIEWER_ROOT / "public" / "assets" / "favicon.ico"
    mtime = marker.stat().st_mtime_ns
    again = viewer.install(tarball=release)
    assert again.already_installed
    assert marker.stat().st_mtime_ns == mtime
    assert not old.exists()
    assert viewer.install(tarball=release, force=True).already_installed is False


def test_a_tarball_that_is_not_the_pinned_release_is_refused_and_nothing_is_installed(release, viewer_settings,
                                                                                         tmp_path):
    other = make_tarball(tmp_path / "other.tgz", {**release_files(), "package/dist/evil.js": b"steal()"})
    with pytest.raises(viewer.ViewerInstallError, match="does not match the pinned @ohif/app"):
        viewer.install(tarball=other)
    assert not viewer_settings.VIEWER_ROOT.exists()
    assert not viewer.is_installed()


@pytest.mark.parametrize(("files", "symlink", "words"), [
    ({"package/dist/index.html": SHELL, "package/dist/../../escape.js": b"x"}, None, "unsafe path"),
    ({"package/dist/index.html": SHELL}, "package/dist/passwd", "link or special file"),
    ({"package/dist/app.js": b"x"}, None, "has no dist/index.html"),
], ids=["dot-dot", "symlink", "no-shell"])
def test_unsafe_or_foreign_tarballs_are_refused_before_anything_is_served(viewer_settings, tmp_path, files, symlink,
                                                                          words):
    tarball = make_tarball(tmp_path / "bad.tgz", files, symlink=symlink)
    viewer_settings.VIEWER_OHIF_INTEGRITY = viewer.integrity_of(tarball)
    with pytest.raises(viewer.ViewerInstallError, match=words):
        viewer.install(tarball=tarball)
    assert not viewer_settings.VIEWER_ROOT.exists()
    assert not (tmp_path / "escape.js").exists()
    assert list(viewer_settings.VIEWER_DIR.iterdir()) == []  # the staging folder is gone too


def test_a_file_that_is_not_a_tarball_is_named_in_the_error(viewer_settings, tmp_path):
    junk = tmp_path / "ohif.tgz"
    junk.write_bytes(b"<html>proxy error</html>")
    viewer_settings.VIEWER_OHIF_INTEGRITY = viewer.integrity_of(junk)
    with pytest.raises(viewer.ViewerInstallError, match="ohif.tgz is not a gzip tarball"):
        viewer.install(tarball=junk)


def served_cache_control(settings, public, url: str) -> str:
    """The Cache-Control WhiteNoise sends for a file of the viewer, configured as the site configures it."""
    from whitenoise.middleware import WhiteNoiseMiddleware

    settings.WHITENOISE_ROOT = str(public)
    middleware = WhiteNoiseMiddleware(lambda request: None)
    static = middleware.files.get(url) or middleware.find_file(url)
    assert static is not None, f"WhiteNoise does not serve {url}"
    return dict(static.get_response("GET", {}).headers)["Cache-Control"]


def test_content_hashed_files_are_cached_for_good_so_the_browser_keeps_their_compiled_code(
        installed, viewer_settings):
    # Chromium keeps V8's compiled code of a script with its HTTP cache entry: served for good, the
    # script is neither fetched nor revalidated again, and its compiled code is reused from the third
    # opening on (docs/decisions/0004).
    public = viewer_settings.VIEWER_ROOT / "public"
    for url in ("/app.bundle.0123456789abcdef.js", "/0ddf166f7a343eda.wasm"):
        assert served_cache_control(viewer_settings, public, url) == "max-age=315360000, public, immutable", url
    assert "immutable" not in served_cache_control(viewer_settings, public, "/assets/favicon.ico")


def test_every_script_of_the_installed_release_is_content_hashed_and_cached_for_good(settings):
    require_or_skip(viewer.is_installed(), "the OHIF Viewer is not installed: run `manage.py install_viewer`")
    public = settings.VIEWER_ROOT / "public"
    shell = viewer.index_html().html.decode()
    started = re.findall(r'<script[^>]* src="(/[^"]+\.bundle\.[^"]+\.js)"', shell)
    assert started, "the shell starts no bundle"
    chunks = sorted(f"/{p.name}" for p in public.glob("*.bundle.*.js"))  # webpack's chunks and workers
    assert len(chunks) > 50
    for url in started + chunks:
        assert served_cache_control(settings, public, url) == "max-age=315360000, public, immutable", url


def test_install_command_installs_reports_and_names_what_is_wrong(release, viewer_settings, tmp_path):
    out = io.StringIO()
    call_command("install_viewer", tarball=release, stdout=out, stderr=io.StringIO())
    assert "installed in" in out.getvalue()
    assert "6 files" in out.getvalue()
    out = io.StringIO()
    call_command("install_viewer", tarball=release, stdout=out)
    assert "already installed" in out.getvalue()
    with pytest.raises(CommandError, match="--tarball: no file at"):
        call_command("install_viewer", tarball=tmp_path / "missing.tgz", force=True)
    viewer_settings.VIEWER_OHIF_INTEGRITY = "sha512-" + "A" * 86 + "=="
    with pytest.raises(CommandError, match="does not match the pinned"):
        call_command("install_viewer", tarball=release, force=True, stderr=io.StringIO())


def test_the_npm_registry_failing_is_a_clear_error(viewer_settings, tmp_path):
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'npm error code E404' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    with pytest.raises(viewer.ViewerInstallError, match="npm pack @ohif/app@.* failed: npm error code E404"):
        viewer.install(npm=str(fake_npm))
    with pytest.raises(viewer.ViewerInstallError, match="npm is not installed"):
        viewer.install(npm=str(tmp_path / "no-such-npm"))


# --- the shell: who opens which study ----------------------------------------------------------------

def open_viewer(client, *uids, key="StudyInstanceUIDs", route="viewer"):
    query = f"?{key}={','.join(uids)}" if uids else ""
    return client.get(reverse("viewer_app_route", args=[route]) + query)


def viewer_sessions(**extra):
    return AuditEvent.objects.filter(action="study.viewer_opened", **extra)


def test_center_admin_gets_the_shell_with_a_csp_allowing_its_inline_script_by_hash(installed, cast, login, ct_study):
    response = open_viewer(login(cast.center_admin), ct_study.study_instance_uid)
    assert response.status_code == 200
    assert response.content == SHELL
    assert response["Cache-Control"] == "no-store"
    csp = response["Content-Security-Policy"]
    script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'sha256-" in script_src
    assert "'wasm-unsafe-eval'" in script_src
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    [event] = viewer_sessions()
    assert event.actor == cast.center_admin
    assert event.object_id == ct_study.study_instance_uid
    assert event.organization == cast.center
    assert event.extra["level"] == "full"
    assert event.extra["mode"] == "viewer"


def test_the_parameter_is_read_as_ohif_reads_it_and_each_study_of_a_session_is_audited(installed, cast, login):
    first = ingest_study(cast.center, synthetic.ct_series(spec(7), slices=1, size=16))
    second = ingest_study(cast.center, synthetic.ct_series(spec(8), slices=1, size=16))
    client = login(cast.technologist)
    response = open_viewer(client, first.study_instance_uid, second.study_instance_uid, key="studyInstanceUIDs")
    assert response.status_code == 200
    assert set(viewer_sessions().values_list("object_id", flat=True)) == {first.study_instance_uid,
                                                                          second.study_instance_uid}


@pytest.mark.parametrize("principal", ["center_finance", "other_admin", "platform_staff", "patient", "radiologist"])
def test_whoever_may_not_see_the_study_gets_404_and_nothing_is_audited(installed, cast, login, ct_study, principal):
    response = open_viewer(login(cast.users[principal]), ct_study.study_instance_uid)
    assert response.status_code == 404
    assert not viewer_sessions().exists()


@pytest.mark.parametrize("uid", ["2.25.1234567890", "1.2.3.abc", "1..2", "9" * 70, "../../etc/passwd"])
def test_a_missing_or_malformed_study_uid_is_404(installed, cast, login, uid):
    assert open_viewer(login(cast.center_admin), uid).status_code == 404


def test_another_centers_study_is_404_even_next_to_an_own_one(installed, cast, login, ct_study):
    theirs = ingest_study(cast.other_center, synthetic.ct_series(spec(9), slices=1, size=16))
    client = login(cast.center_admin)
    assert open_viewer(client, theirs.study_instance_uid).status_code == 404
    assert open_viewer(client, ct_study.study_instance_uid, theirs.study_instance_uid).status_code == 404
    assert not viewer_sessions().exists()


def test_anonymous_is_sent_to_sign_in_and_a_url_without_a_study_goes_to_the_study_list(installed, cast, login,
                                                                                      ct_study):
    response = open_viewer(login(None), ct_study.study_instance_uid)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    response = open_viewer(login(cast.center_admin))
    assert response.status_code == 302
    assert response["Location"] == reverse("study_list")


def grant(cast, study, level, *, user=None):
    return study_access_grant_create(actor=None, study=study, user=user or cast.radiologist, level=level,
                                     reason="read assigned", expires_at=timezone.now() + timedelta(hours=4))


def test_a_radiologist_opens_a_study_with_a_full_grant_and_is_refused_once_it_is_revoked_or_expired(
        installed, cast, login, ct_study):
    client = login(cast.radiologist)
    access = grant(cast, ct_study, "full")
    assert open_viewer(client, ct_study.study_instance_uid).status_code == 200
    assert viewer_sessions(actor=cast.radiologist, extra__level="full").count() == 1
    study_access_grant_revoke(actor=None, grant=access)
    assert open_viewer(client, ct_study.study_instance_uid).status_code == 404
    StudyAccessGrant.objects.filter(pk=grant(cast, ct_study, "full").pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    assert open_viewer(client, ct_study.study_instance_uid).status_code == 404


def test_a_preview_grant_gets_an_explanation_without_patient_data_and_no_viewer(installed, cast, login,
                                                                                 canary_study):
    grant(cast, canary_study, "preview")
    response = open_viewer(login(cast.radiologist), canary_study.study_instance_uid)
    assert response.status_code == 403
    page = response.content.decode()
    assert "preview" in page
    assert "assigned to you" in page
    assert CANARY not in page
    assert canary_study.study_instance_uid not in page
    assert SHELL.decode() not in page
    assert not viewer_sessions().exists()


def test_without_the_viewer_installed_the_page_says_how_to_install_it(viewer_settings, cast, login, ct_study):
    response = open_viewer(login(cast.center_admin), ct_study.study_instance_uid)
    assert response.status_code == 503
    assert "manage.py install_viewer" in response.content.decode()
    assert not viewer_sessions().exists()


# --- configuration -------------------------------------------------------------------------------------

def evaluate_config(source: str) -> dict:
    """Run our app-config.js in Node as the browser would, and return what OHIF reads from it."""
    node = shutil.which("node")
    require_or_skip(node is not None, "node (Node.js) is needed to evaluate app-config.js")
    script = (
        "const window = {};\n" + source + "\n"
        "const logo = window.config.whiteLabeling.createLogoComponentFn("
        "{createElement: (type, props, text) => ({type, props, text})});\n"
        "process.stdout.write(JSON.stringify({config: window.config, logo}));\n"
    )
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_app_config_points_ohif_at_our_dicomweb_with_the_requests_we_answer_and_no_tour(client):
    response = client.get("/app-config.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    evaluated = evaluate_config(response.content.decode())
    config = evaluated["config"]
    assert config["routerBasename"] == "/viewer"
    assert config["showStudyList"] is False
    assert config["investigationalUseDialog"] == {"option": "never"}
    assert config["customizationService"] == [{"ohif.tours": {"$set": []}}]
    [source] = config["dataSources"]
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    assert config["defaultDataSourceName"] == source["sourceName"]
    options = source["configuration"]
    assert options["qidoRoot"] == options["wadoRoot"] == "/dicomweb"
    assert options["imageRendering"] == "wadors"
    assert options["thumbnailRendering"] == "thumbnailDirect"  # <img src=…/thumbnail>: rendered by our server
    assert options["supportsFuzzyMatching"] is False
    assert options["supportsWildcard"] is True
    assert options["omitQuotationForMultipartRequest"] is True
    assert options["dicomUploadEnabled"] is False
    assert options["qidoSupportsIncludeField"] is True
    assert evaluated["logo"]["text"] == "ReadRoom"
    assert evaluated["logo"]["props"]["href"] == reverse("study_list")
    assert client.get(config["dataSources"][0]["configuration"]["qidoRoot"] + "/studies").status_code == 401


# --- the viewer's service worker -----------------------------------------------------------------------

def run_in_node(script: str) -> dict:
    node = shutil.which("node")
    require_or_skip(node is not None, "node (Node.js) is needed to run the viewer's scripts")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


SERVICE_WORKER_HARNESS = """
const handlers = {}, puts = [], deleted = [], waits = [];
const self = {location: new URL('http://readroom.test/viewer-sw.js'), addEventListener: (n, f) => { handlers[n] = f; },
              skipWaiting: () => Promise.resolve(), clients: {claim: () => Promise.resolve()}};
const stored = new Map();
const caches = {
  open: async (name) => ({
    addAll: async (urls) => { puts.push([name, urls]); urls.forEach(u => stored.set(u, 'cached ' + u)); },
    match: async (url) => stored.get(url),
  }),
  keys: async () => ['readroom-viewer-old', 'someone-else', 'CURRENT'],
  delete: async (name) => { deleted.push(name); return true; },
};
const fetch = async (request) => 'network ' + request.url;
SOURCE
const current = CACHE;
caches.keys = async () => ['readroom-viewer-0123456789ab', 'someone-else', current];
async function fetchEvent(url, method) {
  let answered = null;
  handlers.fetch({request: {url, method}, respondWith: (p) => { answered = p; }});
  return answered ? await answered : null;
}
(async () => {
  const routes = [];
  let installing;
  handlers.install({waitUntil: (p) => { installing = p; }, addRoutes: async (r) => { routes.push(...r); }});
  await installing;
  let activating; handlers.activate({waitUntil: (p) => { activating = p; }}); await activating;
  const base = 'http://readroom.test';
  const answers = {
    script: await fetchEvent(base + '/app.bundle.0123456789abcdef.js', 'GET'),
    chunk: await fetchEvent(base + '/1673.bundle.76779c7722e8c6c0.js', 'GET'),
    unhashed: await fetchEvent(base + '/google.js', 'GET'),
    with_query: await fetchEvent(base + '/app.bundle.0123456789abcdef.js?x=1', 'GET'),
    other_origin: await fetchEvent('https://cdn.example/app.bundle.0123456789abcdef.js', 'GET'),
    dicomweb: await fetchEvent(base + '/dicomweb/studies/1.2.3/series', 'GET'),
    page: await fetchEvent(base + '/viewer/viewer?StudyInstanceUIDs=1.2.3', 'GET'),
    post: await fetchEvent(base + '/app.bundle.0123456789abcdef.js', 'POST'),
  };
  process.stdout.write(JSON.stringify({cache: current, puts, deleted, answers, routes}));
})();
"""


def test_the_service_worker_keeps_the_content_hashed_scripts_and_answers_nothing_else(installed, client):
    response = client.get(reverse("viewer_service_worker"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert response["Service-Worker-Allowed"] == "/viewer/"
    assert response["Cache-Control"] == "no-cache"  # the browser looks for a new version at each opening
    result = run_in_node(SERVICE_WORKER_HARNESS.replace("SOURCE", response.content.decode()))
    scripts = ["/1673.bundle.76779c7722e8c6c0.js", "/app.bundle.0123456789abcdef.js"]
    assert result["puts"] == [[result["cache"], scripts]]  # fetched while it installs: compiled then
    assert result["cache"].startswith("readroom-viewer-")
    assert result["deleted"] == ["readroom-viewer-0123456789ab"]  # an older viewer's; not another app's
    answers = result["answers"]
    assert answers["script"] == "cached /app.bundle.0123456789abcdef.js"
    assert answers["chunk"] == "cached /1673.bundle.76779c7722e8c6c0.js"
    for untouched in ("unhashed", "with_query", "other_origin", "dicomweb", "page", "post"):
        assert answers[untouched] is None, untouched  # left to the network (and the server's checks)
    # Where the browser routes before the worker runs, pages and DICOMweb do not even wake it.
    assert result["routes"] == [{"condition": {"requestMode": "navigate"}, "source": "network"},
                                {"condition": {"urlPattern": {"pathname": "/dicomweb/*"}}, "source": "network"}]


def test_a_new_viewer_version_gets_a_new_cache_and_no_viewer_an_empty_service_worker(installed, client,
                                                                                       viewer_settings):
    def cache_of(body: bytes) -> str:
        return re.search(rb'const CACHE = "([^"]+)"', body).group(1).decode()

    first = cache_of(client.get(reverse("viewer_service_worker")).content)
    chunk = viewer_settings.VIEWER_ROOT / "public" / "2493.bundle.c4af70e46357151f.js"
    chunk.write_text("console.log('another release');")
    viewer._list_precached.cache_clear()
    assert cache_of(client.get(reverse("viewer_service_worker")).content) != first
    viewer_settings.VIEWER_ROOT = viewer_settings.VIEWER_DIR / "ohif-missing"
    body = client.get(reverse("viewer_service_worker")).content.decode()
    assert "const SCRIPTS = new Set([]);" in body


def test_ohifs_own_service_worker_script_is_replaced_by_an_empty_one(installed, client):
    response = client.get("/init-service-worker.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert "unregister" not in response.content.decode()
    assert "serviceWorker" not in response.content.decode()


def test_an_install_of_the_earlier_layout_is_done_again(installed, viewer_settings):
    stamp = viewer_settings.VIEWER_ROOT / viewer.STAMP
    data = json.loads(stamp.read_text())
    assert data["layout"] == viewer.LAYOUT
    del data["layout"]  # as installs before OHIF's service worker was left out
    stamp.write_text(json.dumps(data))
    assert not viewer.is_installed()
    assert viewer.install(tarball=installed).already_installed is False
    assert not (viewer_settings.VIEWER_ROOT / "public" / "init-service-worker.js").exists()


def test_app_config_registers_the_service_worker_for_the_viewer_after_the_page_loaded(client):
    source = client.get("/app-config.js").content.decode()
    script = (
        "const registered = [], order = [];\n"
        "const window = {isSecureContext: SECURE, addEventListener: (n, f) => { order.push(n); f(); }};\n"
        "const navigator = {serviceWorker: {register: (url, options) => { registered.push([url, options]); "
        "return Promise.resolve(); }}};\n"
        "const setTimeout = (f, ms) => { order.push(ms); f(); };\n"
        + source + "\nprocess.stdout.write(JSON.stringify({registered, order}));\n"
    )
    secure = run_in_node(script.replace("SECURE", "true"))
    assert secure["registered"] == [["/viewer-sw.js", {"scope": "/viewer/"}]]
    assert secure["order"][0] == "load"
    assert secure["order"][1] >= 1000  # not while the first image is being drawn
    assert run_in_node(script.replace("SECURE", "false"))["registered"] == []  # plain http: no service workers


# --- links from the pages ------------------------------------------------------------------------------

def test_the_study_page_and_list_link_full_access_to_the_viewer_and_previews_not(cast, login, ct_study, canary_study):
    link = reverse("viewer_app_route", args=["viewer"]) + "?StudyInstanceUIDs="
    admin = login(cast.center_admin)
    page = admin.get(reverse("study_detail", args=[ct_study.public_id])).content.decode()
    assert f'href="{link}{ct_study.study_instance_uid}"' in page
    assert "Open in viewer" in page
    listing = admin.get(reverse("study_list")).content.decode()
    assert f"{link}{ct_study.study_instance_uid}" in listing
    assert f"{link}{canary_study.study_instance_uid}" in listing

    grant(cast, canary_study, "preview")
    radiologist = login(cast.radiologist)
    page = radiologist.get(reverse("study_detail", args=[canary_study.public_id])).content.decode()
    assert "Open in viewer" not in page
    assert link not in page
    assert link not in radiologist.get(reverse("study_list")).content.decode()
