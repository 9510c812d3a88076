"""The demo world's money (issue 15, item 7): contracts through both sides' acceptance, every signed demo
read posted to the ledger, this month's invoices (one issued, one paid); a second load changes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Sum

from billing.models import Contract, Invoice, JournalTransaction, ManualPayout, Posting, Transfer
from marketplace.models import ReadRequest, Status


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", studies="small", stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks) -> str:
    with django_capture_on_commit_callbacks(execute=True):
        return load_demo()


def test_contracts_invoices_and_the_ledger_of_the_demo(demo):
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
    before = (Contract.objects.count(), Invoice.objects.count(), JournalTransaction.objects.count())
    load_demo()
    assert (Contract.objects.count(), Invoice.objects.count(), JournalTransaction.objects.count()) == before
