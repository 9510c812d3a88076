"""Month-end for one busy center: drafting its invoice from 20,000 signed reads (issue 15's figure:
under 10 s with a constant number of queries), then its CSV and PDF.

The month's reads are written to the ledger in bulk (one transaction of three postings each, as
``post_read_signed`` writes them), inside one database transaction that is rolled back at the end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readroom_bench uv run python bench/billing_month_end.py \
        [--reads 20000] [--pdf]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if "DJANGO_SETTINGS_MODULE" not in os.environ:  # run as a script (the smoke test imports it with Django set up)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("READROOM_VAR_DIR", tempfile.mkdtemp(prefix="readroom-bench-"))

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from billing.invoice_documents import invoice_csv, invoice_pdf  # noqa: E402
from billing.models import JournalTransaction, LedgerAccount, Posting  # noqa: E402
from billing.services import invoices, ledger  # noqa: E402
from tests.factories import OrganizationFactory  # noqa: E402
from tests.marketplace.helpers import make_radiologist  # noqa: E402

TARGET_SECONDS = 10.0
Purpose = LedgerAccount.Purpose


class Rollback(Exception):
    pass


def _month_of_reads(center, reader, reads: int, start: datetime) -> None:
    receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=center)
    payable = ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=reader)
    revenue = ledger.account(Purpose.PLATFORM_REVENUE, "USD")
    step = timedelta(days=28) / reads
    entries = JournalTransaction.objects.bulk_create([
        JournalTransaction(natural_key=f"bench:{center.pk}:{i}", kind=JournalTransaction.Kind.READ_SIGNED,
                           currency="USD", reference=f"bench-{i}", created_at=start + i * step,
                           details={"accession": f"B{i:07d}", "modality": "CT", "priority": "routine",
                                    "reader": reader.name, "study": "CT HEAD WO", "gross": 3500, "fee": 525})
        for i in range(reads)], batch_size=5000)
    Posting.objects.bulk_create([posting for entry in entries for posting in (
        Posting(transaction=entry, account=receivable, amount=3500, currency="USD"),
        Posting(transaction=entry, account=payable, amount=-2975, currency="USD"),
        Posting(transaction=entry, account=revenue, amount=-525, currency="USD"))], batch_size=15000)


def _timed(label: str, call, out, *, target: float | None = None):
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = call()
        took = time.perf_counter() - started
    aim = f"target < {target:.0f} s, queries constant" if target else ""
    out(f"{label:<52} {took:>8.2f} s {len(queries):>6} queries   {aim}")
    return result


def run(*, reads: int = 20_000, pdf: bool = False, out=print) -> None:
    out(f"month-end for one center with {reads:,} signed reads ({connection.vendor})")
    try:
        with transaction.atomic():
            center = OrganizationFactory(name="Bench Imaging", slug=f"bench-imaging-{time.time_ns()}", region="TX",
                                         time_zone="America/Chicago")
            reader = make_radiologist(name="Bench Reader")
            zone = ZoneInfo(center.time_zone)
            start = datetime(2026, 11, 1, 1, 0, tzinfo=zone)
            _timed("writing the month's reads to the ledger (bulk)", lambda: _month_of_reads(
                center, reader, reads, start), out)
            invoice = _timed("drafting the invoice", lambda: invoices.invoice_generate(
                center=center, year=2026, month=11), out, target=TARGET_SECONDS)
            _timed("drafting it again (rebuilt)", lambda: invoices.invoice_generate(
                center=center, year=2026, month=11), out, target=TARGET_SECONDS)
            lines = list(invoice.lines.order_by("posted_at", "id"))
            assert len(lines) == reads, (len(lines), reads)
            assert invoice.total_cents == 3500 * reads
            _timed("its CSV", lambda: invoice_csv(invoice, lines), out)
            if pdf:
                _timed("its PDF", lambda: invoice_pdf(invoice, lines), out)
            raise Rollback
    except Rollback:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--pdf", action="store_true", help="also time the PDF (hundreds of pages)")
    args = parser.parse_args()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(reads=args.reads, pdf=args.pdf)


if __name__ == "__main__":
    main()
