"""Install the pinned OHIF Viewer from the npm registry (``bin/dev up`` and ``bin/dev test`` run it).

    python manage.py install_viewer [--tarball PATH] [--force]

Fetches ``@ohif/app`` at ``settings.VIEWER_OHIF_VERSION`` with ``npm pack``, checks it against
``settings.VIEWER_OHIF_INTEGRITY``, and unpacks what the viewer serves into ``settings.VIEWER_ROOT``
with a progress bar (``studies.viewer``). Does nothing when that version is already installed.
``--tarball`` installs from a file instead (an offline mirror); it must match the same integrity.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from studies import viewer


class Command(BaseCommand):
    help = "Install the pinned OHIF Viewer release from the npm registry."

    def add_arguments(self, parser):
        parser.add_argument("--tarball", type=Path, help="install from this .tgz instead of the npm registry")
        parser.add_argument("--force", action="store_true", help="reinstall even if this version is installed")

    def handle(self, *args, tarball: Path | None = None, force: bool = False, **options):
        quiet = options.get("verbosity", 1) == 0
        name = f"{viewer.NPM_PACKAGE}@{settings.VIEWER_OHIF_VERSION}"
        if tarball is not None and not tarball.is_file():
            raise CommandError(f"--tarball: no file at {tarball}")
        if not force and viewer.is_installed():
            if not quiet:
                self.stdout.write(f"OHIF Viewer {name} already installed in {settings.VIEWER_ROOT}")
            return
        with tqdm(total=0, desc="OHIF Viewer", unit="B", unit_scale=True, file=sys.stderr, disable=quiet) as bar:
            def set_total(total: int) -> None:
                bar.total = total
                bar.refresh()

            def say(message: str) -> None:
                if not quiet:
                    bar.write(f"  {message}", file=sys.stderr)

            try:
                result = viewer.install(tarball=tarball, force=force, progress=bar.update, on_total=set_total, say=say)
            except viewer.ViewerInstallError as exc:
                raise CommandError(str(exc)) from exc
        if not quiet:
            self.stdout.write(self.style.SUCCESS(
                f"OHIF Viewer {name} installed in {result.root}: {result.files} files, {result.bytes / 1e6:.1f} MB"))
