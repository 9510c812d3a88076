"""The demo world's money (issue 15, item 7): contracts through both sides' acceptance, every signed demo
read posted to the ledger, this month's invoices (one issued, one paid), a payment by hand, and through the
fake Stripe one reader paid out (his payout reconciled with one difference) and one whose transfers are held;
a second load changes nothing and starts no fake Stripe."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing import stripe_client
from billing.demo_stripe import ONBOARDING_UNFINISHED, PAYOUTS_ENABLED
from billing.fake_stripe import FakeStripe
from billing.models import (
    ConnectedAccount,
    Contract,
    Invoice,
    JournalTransaction,
    ManualPayout,
    Posting,
    StripePayout,
    Transfer,
)
from marketplace.models import ReadRequest, Status
from tests.conftest import enroll_totp


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", studies="small", stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        return load_demo()


def test_contracts_invoices_and_the_ledger_of_the_demo(demo, monkeypatch):
    active = Contract.objects.filter(status=Contract.Status.ACTIVE)
    assert {(c.center.slug, c.group.slug) for c in active} == {("lakeside", "nighthawk"), ("bayview", "atlantic")}
    assert active.get(center__slug="lakeside").service_levels.get(priority="stat").credit_cents == 500
    assert Contract.objects.get(center__slug="summit").status == Contract.Status.PROPOSED
    # The quality demo's synthetic history (reporting.demo_quality_history) is bulk-made for the charts, not billed.
    reported = ReadRequest.objects.filter(status__in=(Status.REPORTED, Status.CLOSED)).exclude(
        idempotency_key__startswith="demo-history:")
    assert reported.exists()
    for read_request in reported:
        entry = JournalTransaction.objects.get(kind="read_signed", reference=str(read_request.public_id))
        assert entry.details["gross"] == read_request.quoted_cents
    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0
    # Patients prepay their second opinions by card: only imaging centers are invoiced.
    centers_with_reads = set(reported.filter(center__kind="imaging_center").values_list("center__slug", flat=True))
    assert len(centers_with_reads) >= 2
    assert set(Invoice.objects.values_list("center__slug", flat=True)) == centers_with_reads
    assert Invoice.objects.filter(status="issued").count() == 1
    assert Invoice.objects.filter(status="paid").count() == 1
    paid = ManualPayout.objects.get(reference="DEMO-PAYOUT-0001")
    assert paid.amount_cents > 0
    assert Transfer.objects.filter(manual_payout=paid).exists()
    assert Transfer.objects.exclude(manual_payout=paid).filter(status__in=("pending", "held")).exists()  # still owed
    before = _money_rows()

    def no_fake_on_a_second_load(fake):
        raise AssertionError("the demo's money is complete: no fake Stripe should start")

    monkeypatch.setattr(FakeStripe, "start", no_fake_on_a_second_load)
    load_demo()
    assert _money_rows() == before


def _money_rows() -> tuple:
    return (Contract.objects.count(), Invoice.objects.count(), JournalTransaction.objects.count(),
            ConnectedAccount.objects.count(), StripePayout.objects.count(),
            sorted(Transfer.objects.values_list("pk", "status", "stripe_transfer_id", "stripe_payout")))


def _signed_in(login, email: str):
    user = User.objects.get(email=email)
    enroll_totp(user)  # demo users enroll at first sign-in
    return login(user)


def _this_month(entry: JournalTransaction, user: User) -> str:
    return f"{timezone.localtime(entry.created_at, ZoneInfo(user.time_zone)):%Y-%m}"


def test_one_reader_is_paid_out_through_the_fake_stripe_and_one_reconciliation_difference_is_shown(demo, login):
    assert not stripe_client.enabled()  # the fake served the load only
    paid = ConnectedAccount.objects.get(radiologist__user__email=PAYOUTS_ENABLED)
    assert paid.payouts_enabled
    payout = StripePayout.objects.get()
    assert (payout.connected_account, payout.status) == (paid, "paid")
    carried = Transfer.objects.filter(radiologist=paid.radiologist)
    assert carried.count() >= 2
    for transfer in carried:  # every earning of his sent through the fake, and all in the one payout
        assert transfer.status == Transfer.Status.SENT
        assert transfer.stripe_transfer_id.startswith("tr_")
        assert transfer.stripe_payout == payout
        assert transfer.posted.natural_key == f"transfer:{transfer.earning.natural_key}"
    assert payout.amount_cents == sum(t.amount_cents for t in carried) - 1  # Stripe's side is a cent short
    [difference] = payout.reconciliation["issues"]
    assert difference["reason"] == "amount_differs"
    assert "off by one cent" in difference["message"]
    assert len(payout.reconciliation["matched"]) == carried.count() - 1

    waiting = ConnectedAccount.objects.get(radiologist__user__email=ONBOARDING_UNFINISHED)
    assert not waiting.payouts_enabled
    held = Transfer.objects.filter(radiologist=waiting.radiologist)
    assert held.exists()
    assert {(t.status, t.held_reason) for t in held} == {
        (Transfer.Status.HELD, "Payouts are not enabled on the payee's Stripe account yet.")}

    # Platform finance traces every read behind the payout, on the page and in the CSV; Stripe is off now.
    finance = _signed_in(login, "finance@readroom.demo")
    listing = finance.get(reverse("payout_list")).content.decode()
    assert "1 difference" in listing
    assert "Held: Payouts are not enabled on the payee&#x27;s Stripe account yet." in listing
    assert finance.get(reverse("finance_dashboard")).status_code == 200
    url = reverse("payout_detail", args=[payout.public_id])
    page = finance.get(url).content.decode()
    assert "off by one cent" in page
    assert "Stripe is off" in page
    assert "Reconcile again" not in page
    for transfer in carried:
        assert transfer.stripe_transfer_id in page
    rows = list(csv.DictReader(io.StringIO(finance.get(url, {"format": "csv"}).content.decode())))
    assert {r["read_request"] for r in rows} == {t.reference for t in carried}
    assert [r["issue"].split(":")[0] for r in rows if r["issue"]] == ["amount_differs"]
    answer = finance.post(url)  # reconciling again needs Stripe: refused with a message, not a 500
    assert answer.status_code == 302
    payout.refresh_from_db()
    assert len(payout.reconciliation["issues"]) == 1

    # Each reader's statement: his transfers and payout; her held transfers with the reason.
    for email, account in ((PAYOUTS_ENABLED, paid), (ONBOARDING_UNFINISHED, waiting)):
        user = User.objects.get(email=email)
        month = _this_month(Transfer.objects.filter(radiologist=account.radiologist).first().earning, user)
        client = _signed_in(login, email)
        page = client.get(reverse("earnings"), {"month": month})
        assert page.status_code == 200
        text = page.content.decode()
        assert account.stripe_account_id in text
        if account.payouts_enabled:
            assert payout.stripe_payout_id in text
        else:
            assert "Payouts are not enabled on the payee&#x27;s Stripe account yet." in text
            assert "Stripe is off on this server" in text
