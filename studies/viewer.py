"""The OHIF Viewer: installing the pinned release from the npm registry, and what its pages need.

Layout (docs/decisions/0004-viewer-layout.md): the prebuilt ``dist/`` of ``@ohif/app`` goes to
``settings.VIEWER_ROOT`` as

- ``public/``: every file the bundle fetches by an absolute ``/…`` URL, served at the site root by
  WhiteNoise (``settings.WHITENOISE_ROOT``), gzip-compressed beside the original;
- ``index.html``: the app's shell, served by Django at ``/viewer/…`` after the login, policy and audit
  checks (``studies.views_viewer``), never as a public file;

minus the shipped ``app-config.js`` (ours is rendered from settings), the AI runtimes under ``ort/``
(the basic viewer does not load them), the hosting files of OHIF's own deploys and OHIF's service worker
with the script that registers it (``sw.js`` loads Workbox from Google's CDN; ``init-service-worker.js``
unregisters every service worker of the origin, ours included: studies.viewer_views serves an empty one).
Nothing is edited inside OHIF's files, so an upgrade is a version and integrity change in settings.

ReadRoom's own service worker (``viewer_views.viewer_service_worker``) keeps the content-hashed scripts
``precached_scripts`` lists, so that the viewer's next opening neither fetches nor compiles them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from django.conf import settings

NPM_PACKAGE = "@ohif/app"
ROUTER_BASENAME = "/viewer"
DIST_PREFIX = "package/dist/"
SKIPPED_TOP_LEVEL = frozenset({"ort", "app-config.js", "_headers", "_redirects", "serve.json", "netlify.toml",
                               "sw.js", "init-service-worker.js"})
LAYOUT = 2  # what `install` leaves in the folder; an install of an older layout is done again (2: no OHIF SW)
COMPRESSED_SUFFIXES = (".js", ".css", ".wasm", ".json", ".svg", ".html", ".map", ".txt", ".xml")
MAX_ENTRY_BYTES = 200 * 1024 * 1024  # the largest file of 3.13 is ~12 MB; a bigger one is not OHIF's
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
STAMP = ".installed.json"


class ViewerInstallError(Exception):
    """The viewer could not be installed; the message says what to do."""


@dataclass(frozen=True)
class InstallResult:
    root: Path
    files: int
    bytes: int
    already_installed: bool


def installed_stamp(root: Path | None = None) -> dict | None:
    """What ``install`` recorded in the installed folder, or None when no complete install is there."""
    path = (root or settings.VIEWER_ROOT) / STAMP
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_installed() -> bool:
    stamp = installed_stamp()
    return bool(stamp) and stamp.get("integrity") == settings.VIEWER_OHIF_INTEGRITY and stamp.get("layout") == LAYOUT


def integrity_of(path: Path) -> str:
    """npm's Subresource-Integrity string (``sha512-<base64>``) of a file."""
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch_tarball(workdir: Path, *, version: str, npm: str = "npm") -> Path:
    """``npm pack`` the pinned version into ``workdir`` (npm checks the registry's integrity itself)."""
    if shutil.which(npm) is None:
        raise ViewerInstallError("npm is not installed: install Node.js and npm (Debian: apt-get install npm) "
                                 "and run `manage.py install_viewer` again.")
    command = [npm, "pack", f"{NPM_PACKAGE}@{version}", "--json", "--silent", "--pack-destination", str(workdir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ViewerInstallError(f"`npm pack {NPM_PACKAGE}@{version}` failed: {message[0]}")
    try:
        filename = json.loads(done.stdout)[0]["filename"]
    except (ValueError, KeyError, IndexError) as exc:
        raise ViewerInstallError(f"`npm pack` answered something unexpected: {done.stdout[:200]!r}") from exc
    # npm ≥ 9 names scoped tarballs "ohif-app-3.13.2.tgz"; take the file whatever it is called.
    path = workdir / Path(filename).name
    if not path.is_file():
        matches = sorted(workdir.glob("*.tgz"))
        if not matches:
            raise ViewerInstallError("`npm pack` reported success but wrote no tarball.")
        path = matches[0]
    return path


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The path inside ``dist/`` of a tarball member, or None for a member outside ``dist/``.

    Refuses (with the member's name) absolute paths and ``..``: a tarball that tries to write outside
    its folder is not a release of OHIF.
    """
    if not name.startswith(DIST_PREFIX):
        return None
    relative = PurePosixPath(name[len(DIST_PREFIX):])
    if relative.is_absolute() or ".." in relative.parts:
        raise ViewerInstallError(f"The viewer tarball holds an unsafe path: {name!r}")
    return relative if relative.parts else None


def unpack(tarball: Path, destination: Path, *, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Unpack the served files of ``dist/`` into ``destination``; returns (files, bytes).

    Only regular files and folders are taken (a link or device member is refused), each checked for
    its path and size before a byte is written.
    """
    files = total = 0
    public = destination / "public"
    public.mkdir(parents=True)
    try:
        archive = tarfile.open(tarball, "r:gz")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError) as exc:
        raise ViewerInstallError(f"{tarball.name} is not a gzip tarball: {exc}") from exc
    with archive:
        for member in archive:
            relative = _safe_member_path(member.name)
            if relative is None or relative.parts[0] in SKIPPED_TOP_LEVEL:
                continue
            if member.isdir():
                continue
            if not member.isfile():
                raise ViewerInstallError(f"The viewer tarball holds a link or special file: {member.name!r}")
            if member.size > MAX_ENTRY_BYTES or total + member.size > MAX_TOTAL_BYTES:
                raise ViewerInstallError(f"The viewer tarball's {member.name!r} is larger than any OHIF file.")
            target = destination / "index.html" if relative == PurePosixPath("index.html") else public / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            with target.open("wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
            files += 1
            total += member.size
            if progress:
                progress(member.size)
    if not (destination / "index.html").is_file():
        raise ViewerInstallError(f"{tarball.name} has no dist/index.html: it is not a build of the OHIF Viewer.")
    return files, total


def compress_public_files(public: Path) -> int:
    """Write ``.gz`` beside each text-like file so WhiteNoise sends it compressed (returns how many)."""
    from whitenoise.compress import Compressor

    compressor = Compressor(use_brotli=False, quiet=True)
    written = 0
    for path in public.rglob("*"):
        if path.is_file() and path.suffix in COMPRESSED_SUFFIXES:
            written += len(list(compressor.compress(str(path))))
    return written


def install(*, tarball: Path | None = None, force: bool = False, npm: str = "npm",
            progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None,
            say: Callable[[str], None] = lambda _message: None) -> InstallResult:
    """Install the pinned OHIF release into ``settings.VIEWER_ROOT`` (idempotent, all or nothing).

    The tarball comes from the npm registry (or ``tarball``, e.g. an offline mirror) and must match
    ``settings.VIEWER_OHIF_INTEGRITY``; it is unpacked into a temporary folder beside the final one and
    moved into place only when complete, so a failed install never leaves a half-served viewer.
    """
    root: Path = settings.VIEWER_ROOT
    version, expected = settings.VIEWER_OHIF_VERSION, settings.VIEWER_OHIF_INTEGRITY
    if not force and is_installed():
        stamp = installed_stamp()
        return InstallResult(root=root, files=stamp["files"], bytes=stamp["bytes"], already_installed=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".install-") as work:
        workdir = Path(work)
        if tarball is None:
            say(f"fetching {NPM_PACKAGE}@{version} from the npm registry")
            tarball = fetch_tarball(workdir, version=version, npm=npm)
        actual = integrity_of(tarball)
        if actual != expected:
            raise ViewerInstallError(f"{tarball.name} does not match the pinned {NPM_PACKAGE}@{version} "
                                     f"(integrity {actual[:24]}…, expected {expected[:24]}…): refusing to install it.")
        if on_total:
            on_total(_served_size(tarball))
        staging = workdir / "staging"
        files, size = unpack(tarball, staging, progress=progress)
        say("compressing the viewer's scripts and styles")
        compress_public_files(staging / "public")
        (staging / STAMP).write_text(json.dumps({"package": NPM_PACKAGE, "version": version, "integrity": expected,
                                                 "files": files, "bytes": size, "layout": LAYOUT}))
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    _remove_other_versions(root)
    _read_shell.cache_clear()
    _list_precached.cache_clear()
    return InstallResult(root=root, files=files, bytes=size, already_installed=False)


def _served_size(tarball: Path) -> int:
    with tarfile.open(tarball, "r:gz") as archive:
        return sum(m.size for m in archive if m.isfile() and (rel := _safe_member_path(m.name)) is not None
                   and rel.parts[0] not in SKIPPED_TOP_LEVEL)


def _remove_other_versions(keep: Path) -> None:
    for other in keep.parent.glob("ohif-*"):
        if other != keep and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


# --- serving -------------------------------------------------------------------------------------

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True)
class Shell:
    """OHIF's index.html and the hashes of its inline scripts (allowed by the page's CSP one by one)."""

    html: bytes
    script_hashes: tuple[str, ...]


def index_html() -> Shell | None:
    """The installed shell, or None when the viewer is not installed."""
    return _read_shell(settings.VIEWER_ROOT)


@lru_cache(maxsize=4)
def _read_shell(root: Path) -> Shell | None:
    path = root / "index.html"
    try:
        html = path.read_bytes()
    except OSError:
        return None
    hashes = tuple(f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
                   for body in _INLINE_SCRIPT.findall(html))
    return Shell(html=html, script_hashes=hashes)


def content_security_policy(shell: Shell) -> str:
    """The viewer's CSP: everything from our own origin; its few inline scripts by hash; WebAssembly
    codecs compiled in the page; React's inline styles; workers and images from blob: URLs."""
    scripts = " ".join(("'self'", "'wasm-unsafe-eval'", *shell.script_hashes))
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self' blob: data:; worker-src 'self' blob:; "
        "font-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'self'"  # the reading workspace frames it (same origin only)
    )


def precached_scripts() -> tuple[str, ...]:
    """The URLs of the installed viewer's content-hashed scripts at the top of ``public/`` (the app bundle,
    webpack's chunks and workers): public, immutable and the same for everyone, which ReadRoom's service
    worker keeps. Empty when the viewer is not installed."""
    return _list_precached(settings.VIEWER_ROOT)


@lru_cache(maxsize=4)
def _list_precached(root: Path) -> tuple[str, ...]:
    public = root / "public"
    if not public.is_dir():
        return ()
    hashed = re.compile(settings.WHITENOISE_IMMUTABLE_FILE_TEST)  # what WhiteNoise serves as immutable
    return tuple(sorted(f"/{path.name}" for path in public.glob("*.js") if path.is_file() and hashed.match(path.name)))
