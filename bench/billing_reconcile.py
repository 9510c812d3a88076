"""Reconciling one connected account's payout of N transfers (issue 15's figure: 5,000 transfers with a
constant number of queries and under 10 s), at 1,000 and N.

The world is built in bulk inside one database transaction that is rolled back at the end: the signed reads'
earnings as ``post_read_signed`` writes them, their Transfer rows by ``transfers_discover``, each transfer
registered in the fake Stripe (billing/fake_stripe/) by its own code without an HTTP call, and
posted (payable debit, Stripe clearing credit) as ``transfer_send`` posts it. One payout sweeps them all;
``payout_reconcile`` then reads its balance transactions from the fake over HTTP through the official SDK,
100 a page, as it would from Stripe.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readroom_bench_reconcile uv run python \
        bench/billing_reconcile.py [--transfers 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if "DJANGO_SETTINGS_MODULE" not in os.environ:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("READROOM_VAR_DIR", tempfile.mkdtemp(prefix="readroom-bench-"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.policy import actor_for_user  # noqa: E402
from billing import fake_stripe as fake_module  # noqa: E402
from billing.models import JournalTransaction, LedgerAccount, Posting, Transfer  # noqa: E402
from billing.services import connect, ledger, transfers  # noqa: E402
from billing.services.reconcile import payout_reconcile  # noqa: E402
from billing.services.webhooks import payout_refresh  # noqa: E402
from tests.factories import OrganizationFactory  # noqa: E402
from tests.marketplace.helpers import make_radiologist  # noqa: E402

TARGET_SECONDS = 10.0
GROSS, FEE = 3500, 525
Kind = JournalTransaction.Kind
Purpose = LedgerAccount.Purpose


class Rollback(Exception):
    pass


def _reader_with_account(fake, label: str):
    reader = make_radiologist(name=f"Bench Payee {label}")
    account = connect.connected_account_create(actor=actor_for_user(reader.user),
                                               payee=connect.Payee(radiologist=reader))
    fake.set_account(account.stripe_account_id)
    return reader, connect.connected_account_sync(stripe_account_id=account.stripe_account_id)


def _earnings(center, reader, n: int, tag: str) -> None:
    """N signed reads on the ledger, as post_read_signed writes them (one transaction of three postings each)."""
    receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=center)
    payable = ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=reader)
    revenue = ledger.account(Purpose.PLATFORM_REVENUE, "USD")
    now = timezone.now()
    entries = JournalTransaction.objects.bulk_create([
        JournalTransaction(natural_key=f"read_signed:bench-{tag}-{i}", kind=Kind.READ_SIGNED, currency="USD",
                           reference=f"bench-{tag}-{i}", created_at=now,
                           details={"read_request": f"bench-{tag}-{i}", "gross": GROSS, "fee": FEE})
        for i in range(n)], batch_size=5000)
    Posting.objects.bulk_create([posting for entry in entries for posting in (
        Posting(transaction=entry, account=receivable, amount=GROSS, currency="USD"),
        Posting(transaction=entry, account=payable, amount=-(GROSS - FEE), currency="USD"),
        Posting(transaction=entry, account=revenue, amount=-FEE, currency="USD"))], batch_size=15000)


def _send_in_bulk(fake, reader, account) -> int:
    """What transfer_send does per transfer, in bulk: Stripe makes it, we post it and mark it sent."""
    pending = list(Transfer.objects.filter(radiologist=reader, status=Transfer.Status.PENDING)
                   .select_related("earning").order_by("id"))
    payable = ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=reader)
    clearing = ledger.account(Purpose.STRIPE_CLEARING, "USD")
    with fake.lock:  # the fake's own transfer code, without the HTTP round trip
        remotes = [fake._create_transfer({"amount": str(t.amount_cents), "currency": "usd",
                                          "destination": account.stripe_account_id,
                                          "transfer_group": t.reference}) for t in pending]
        fake.events.clear()
    now = timezone.now()
    posted = JournalTransaction.objects.bulk_create([
        JournalTransaction(natural_key=t.idempotency_key, kind=Kind.PAYOUT, currency="USD", reference=t.reference,
                           created_at=now, memo=f"Transfer {r['id']} to {account.stripe_account_id}",
                           details={"earning": t.earning.natural_key, "read_request": t.reference,
                                    "transfer": r["id"], "destination": account.stripe_account_id})
        for t, r in zip(pending, remotes, strict=True)], batch_size=5000)
    Posting.objects.bulk_create([posting for t, entry in zip(pending, posted, strict=True) for posting in (
        Posting(transaction=entry, account=payable, amount=t.amount_cents, currency="USD"),
        Posting(transaction=entry, account=clearing, amount=-t.amount_cents, currency="USD"))], batch_size=15000)
    for t, r, entry in zip(pending, remotes, posted, strict=True):
        t.stripe_transfer_id, t.status, t.connected_account, t.posted = r["id"], Transfer.Status.SENT, account, entry
        t.sent_at, t.attempts, t.last_attempt_at = datetime.fromtimestamp(r["created"], tz=UTC), 1, now
    Transfer.objects.bulk_update(pending, ["stripe_transfer_id", "status", "connected_account", "posted",
                                           "sent_at", "attempts", "last_attempt_at"], batch_size=2000)
    return len(pending)


def _one(fake, center, n: int, out) -> dict:
    started = time.perf_counter()
    reader, account = _reader_with_account(fake, str(n))
    _earnings(center, reader, n, f"{n}-{time.time_ns()}")
    transfers.transfers_discover()
    assert _send_in_bulk(fake, reader, account) == n
    with connection.cursor() as cursor:  # the ledger's deferred balance check, run now (the work is rolled back)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    remote = fake.create_payout(account.stripe_account_id)
    payout = payout_refresh(stripe_payout_id=remote["id"], stripe_account_id=account.stripe_account_id)
    out(f"  built {n:,} earnings, transfers and one payout in {time.perf_counter() - started:.1f} s")

    pages_before = sum(1 for _, path, _ in fake.requests if path == "/v1/balance_transactions")
    with CaptureQueriesContext(connection) as queries:
        wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        report = payout_reconcile(payout=payout)
        wall, cpu, own = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - own
    pages = sum(1 for _, path, _ in fake.requests if path == "/v1/balance_transactions") - pages_before
    sql = sum(float(q["time"]) for q in queries.captured_queries)

    expected = n * (GROSS - FEE)
    ok = (report.issues == [] and len(report.matched) == n and report.matched_cents == expected
          == payout.amount_cents and Transfer.objects.filter(stripe_payout=payout).count() == n)
    # The fake serves from threads of this process: process CPU includes it, the calling thread's CPU does not.
    out(f"  reconcile {n:>5,} transfers: wall {wall:6.2f} s, CPU {own:6.2f} s ({cpu:.2f} s with the fake's), "
        f"{len(queries):>3} queries "
        f"({sql:.2f} s in SQL), {pages} pages of balance transactions   target < {TARGET_SECONDS:.0f} s, "
        f"queries constant")
    out(f"  matched {len(report.matched):,} lines, {report.matched_cents:,} of {payout.amount_cents:,} cents, "
        f"{len(report.issues)} issues: {'OK' if ok else 'WRONG'}")
    for q in queries.captured_queries:
        out(f"    {float(q['time']):6.3f} s  {q['sql'][:110]}")
    return {"wall": wall, "cpu": own, "queries": len(queries), "pages": pages, "ok": ok}


def _page_cost(fake, payout_id: str, account_id: str, out) -> None:
    """The HTTP share: the same listing through the SDK, no database."""
    from billing import stripe_client

    started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    listing = stripe_client.client().v1.balance_transactions.list(
        {"payout": payout_id, "limit": 100, "expand": ["data.source"]}, {"stripe_account": account_id})
    rows = sum(1 for _ in listing.auto_paging_iter())
    out(f"  listing alone ({rows:,} balance transactions through the SDK): wall "
        f"{time.perf_counter() - started:.2f} s, client CPU {time.thread_time() - own:.2f} s "
        f"({time.process_time() - cpu:.2f} s with the fake's)")


def run(*, sizes=(1_000, 5_000), out=print) -> dict:
    fake = fake_module.FakeStripe().start()
    settings.STRIPE_SECRET_KEY = fake_module.API_KEY
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_WEBHOOK_SECRET = fake_module.WEBHOOK_SECRET
    settings.STRIPE_TIMEOUT_SECONDS = 30
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    out(f"reconciling one payout ({connection.vendor}, fake Stripe at {fake.url})")
    results = {}
    try:
        with transaction.atomic():
            center = OrganizationFactory(name="Bench Imaging", slug=f"bench-imaging-{time.time_ns()}", region="TX")
            for n in sizes:
                results[n] = _one(fake, center, n, out)
                payout = max(fake.payouts.values(), key=lambda p: p["created"])
                _page_cost(fake, payout["id"], payout["_account"], out)
            raise Rollback
    except Rollback:
        pass
    finally:
        fake.stop()
    counts = {r["queries"] for r in results.values()}
    out(f"queries constant across {', '.join(f'{n:,}' for n in results)}: {'yes' if len(counts) == 1 else 'NO'}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transfers", type=int, default=5_000)
    args = parser.parse_args()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(sizes=(1_000, args.transfers))


if __name__ == "__main__":
    main()
