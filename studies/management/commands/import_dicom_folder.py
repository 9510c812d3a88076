"""Import a folder of DICOM files (a CD/DVD export, a PACS dump) into an organization.

    python manage.py import_dicom_folder /media/cdrom --organization lakeside [--jurisdiction US-TX] [--strict]

Walks the folder (subfolders included; symbolic links to folders are not followed) and sends every
file through the one ingest service (source ``import``): DICOM files are stored byte for byte,
deduplicated by SOPInstanceUID; ``.zip`` archives found on the way are checked as a whole and their
entries ingested the same way (as on the upload page); DICOMDIR files (the index of a disc) and
files that are not DICOM (a viewer, a README) are skipped. A progress bar shows files and MB/s; the
summary counts stored / already present / conflicts / rejected / skipped, with the first reasons.
One audit row is written per study touched. The exit status is 0 unless ``--strict`` is given and
something was rejected or conflicted.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts import selectors as account_selectors
from accounts.credentials.vocab import REGION_REQUIRED
from core.errors import NotFound
from studies.archive import HEAD_BYTES, SKIPPED, ingest_archive, is_dicomdir, is_part10, is_zip
from studies.ingest import IngestOutcome, Source, Status, audit_ingest, ingest_stream

_JURISDICTION_RE = re.compile(r"^(?P<country>[A-Z]{2})(?:-(?P<region>[A-Z0-9]{1,3}))?$")
_WORDS = {Status.STORED: "stored", Status.DUPLICATE: "already present", Status.CONFLICT: "conflicts",
          Status.REJECTED: "rejected", SKIPPED: "skipped"}
_MB = 1024 * 1024


def parse_jurisdiction(value: str) -> tuple[str, str]:
    """'US-TX' → ('US', 'TX'); 'DE' → ('DE', ''). Countries licensing per state need the region."""
    match = _JURISDICTION_RE.match(value.strip().upper())
    if not match:
        raise CommandError(f"--jurisdiction must look like US-TX or DE (country code, then an optional "
                           f"state/province code), not {value!r}")
    country, region = match["country"], match["region"] or ""
    if not region and country in REGION_REQUIRED:
        example = {"US": "TX", "CA": "ON", "AU": "NSW"}.get(country, "XX")
        raise CommandError(f"--jurisdiction: licenses in {country} are issued per state or province; "
                           f"give it, e.g. {country}-{example}")
    return country, region


def walk(root: Path):
    """Every regular file under ``root`` (or ``root`` itself), in a stable order."""
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_file():
                yield path


class Command(BaseCommand):
    help = "Import every DICOM file under a folder (zips included) into an organization, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("path", help="A folder (walked recursively) or a single file.")
        parser.add_argument("--organization", required=True, metavar="SLUG", help="The organization's slug.")
        parser.add_argument("--jurisdiction", metavar="CC-RR",
                            help="Where the patients were imaged, e.g. US-TX (default: the organization's).")
        parser.add_argument("--strict", action="store_true",
                            help="Exit with status 1 when any file was rejected or conflicted.")
        parser.add_argument("--show", type=int, default=10, metavar="N",
                            help="How many rejection/conflict reasons to print (default: %(default)s).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw the progress bar.")

    def handle(self, *args, **options):
        root = Path(options["path"]).expanduser()
        if not root.exists():
            raise CommandError(f"{root} does not exist")
        try:
            organization = account_selectors.organization_get_for_console(slug=options["organization"])
        except NotFound as exc:
            raise CommandError(f'No organization has the slug "{options["organization"]}".') from exc
        jurisdiction = parse_jurisdiction(options["jurisdiction"]) if options["jurisdiction"] else None

        paths = list(walk(root))
        total_bytes = sum(self._size(p) for p in paths)
        counts: Counter = Counter()
        problems: list[tuple[str, str, str]] = []  # (status, file, reason)
        outcomes: list[IngestOutcome] = []
        started = time.monotonic()
        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                   desc=f"0/{len(paths)} files", disable=True if options["no_progress"] else None,
                   dynamic_ncols=True)
        try:
            for number, path in enumerate(paths, 1):
                label = str(path.relative_to(root)) if path != root else path.name
                for status, name, reason, outcome in self._import_one(path, label, organization, jurisdiction):
                    counts[status] += 1
                    if status in (Status.REJECTED, Status.CONFLICT):
                        problems.append((status, name, reason))
                    if outcome is not None:
                        outcome.instance = None  # the audit needs UIDs and statuses only
                        outcomes.append(outcome)
                bar.update(self._size(path))
                bar.set_description(f"{number}/{len(paths)} files")
        finally:
            bar.close()
            if outcomes:
                audit_ingest(outcomes, organization=organization, source=Source.IMPORT)
        self._report(root, organization, counts, problems, total_bytes, time.monotonic() - started, options)
        if options["strict"] and (counts[Status.REJECTED] or counts[Status.CONFLICT]):
            raise CommandError(f"{counts[Status.REJECTED]} rejected and {counts[Status.CONFLICT]} conflicting "
                               "file(s) (--strict)")

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    def _import_one(self, path: Path, label: str, organization, jurisdiction):
        """Yield (status, name, reason, outcome) for the file, or for each entry of a zip."""
        try:
            with path.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
                fh.seek(0)
                if is_zip(head):
                    yield from self._import_zip(fh, path, label, organization, jurisdiction)
                    return
                if path.name.upper() == "DICOMDIR" or is_dicomdir(head):
                    yield SKIPPED, label, "DICOMDIR (the index of a disc, not an image)", None
                    return
                if not is_part10(head):
                    yield SKIPPED, label, "not a DICOM file", None
                    return
                outcome = ingest_stream(organization=organization, stream=fh, filename=label, source=Source.IMPORT,
                                        jurisdiction=jurisdiction)
        except OSError as exc:
            yield Status.REJECTED, label, f"could not read the file ({exc.strerror or exc})", None
            return
        yield outcome.status, label, outcome.reason, outcome

    def _import_zip(self, fh, path: Path, label: str, organization, jurisdiction):
        result, outcomes = ingest_archive(organization=organization, fileobj=fh, filename=label,
                                          size=self._size(path), source=Source.IMPORT, jurisdiction=jurisdiction)
        if result.status == Status.REJECTED and result.code != "zip_no_dicom":
            # Refused as a whole (unreadable, zip bomb, unsafe entry, empty): nothing of it was stored.
            yield Status.REJECTED, label, result.reason, None
            return
        by_entry = {outcome.filename: outcome for outcome in outcomes}
        for entry in result.entries or ():
            yield entry.status, f"{label}!{entry.file}", entry.reason, by_entry.get(entry.file)

    def _report(self, root, organization, counts: Counter, problems, total_bytes: int, seconds: float,
                options) -> None:
        summary = ", ".join(f"{counts[key]} {word}" for key, word in _WORDS.items()) or "no files"
        rate = total_bytes / _MB / seconds if seconds > 0 else 0.0
        self.stdout.write(f"Imported {root} into {organization.name} ({organization.slug}): {summary}; "
                          f"{total_bytes / _MB:,.1f} MB in {seconds:,.1f} s ({rate:,.1f} MB/s)")
        for status, name, reason in problems[:options["show"]]:
            self.stdout.write(f"  {_WORDS[status]}: {name}: {reason}")
        if len(problems) > options["show"]:
            self.stdout.write(f"  … and {len(problems) - options['show']} more")
        if counts[Status.REJECTED] or counts[Status.CONFLICT]:
            self.stdout.write(self.style.WARNING("Some files were not stored (see above)."))
        elif counts[Status.STORED] or counts[Status.DUPLICATE]:
            self.stdout.write(self.style.SUCCESS("Done."))
