"""Payouts with Stripe off: the CSV of what is owed per payee (equal to the ledger), and finance marking a bank
transfer paid with its reference — the same ledger shape as through Stripe, with cash for clearing."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone

from accounts.credentials.models import RadiologistProfile
from accounts.models import AuditEvent
from accounts.policy import actor_for_user
from billing.models import JournalTransaction, LedgerAccount, Transfer
from billing.services import connect, ledger, transfers
from billing.services.payouts import payout_mark_paid, payouts_owed_csv
from core.errors import ApplicationError, NotFound
from tests.billing.fake_stripe import earning
from tests.factories import MembershipFactory, UserFactory

Purpose = LedgerAccount.Purpose
pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(cast):
    return actor_for_user(MembershipFactory(organization=cast.platform, roles=["finance"]).user)


@pytest.fixture
def readers(cast):
    return (RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago"),
            RadiologistProfile.objects.create(user=UserFactory(full_name="Dana Reader"), home_time_zone="UTC"))


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _owed(payee_account) -> int:
    return -ledger.balance(payee_account)


def test_the_export_lists_what_is_owed_per_payee_and_equals_the_ledger(cast, readers, finance, stripe_off):
    first, second = readers
    for cents in (10_000, 2_001):
        earning(cast.center, first, cents)
    earning(cast.center, second, 4_000)
    earning(cast.center, first, 6_000, group=cast.group)
    rows = {(r["payee_type"], r["payee"]): r for r in _rows(payouts_owed_csv(actor=finance, as_of=timezone.now()))}
    assert set(rows) == {("radiologist", first.name), ("radiologist", "Dana Reader"), ("group", cast.group.name)}
    mine = rows[("radiologist", first.name)]
    assert (mine["earnings"], mine["amount_cents"], mine["amount"], mine["currency"]) == ("2", "10201", "102.01", "USD")
    assert int(mine["amount_cents"]) == _owed(ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=first))
    assert int(rows[("group", cast.group.name)]["amount_cents"]) == _owed(
        ledger.account(Purpose.READER_PAYABLE, "USD", organization=cast.group))


def test_marking_a_payout_paid_posts_cash_once_per_earning_and_clears_the_payable(cast, readers, finance, stripe_off):
    first, _ = readers
    reads = [earning(cast.center, first, cents) for cents in (10_000, 2_001)]
    as_of = timezone.now()
    late = earning(cast.center, first, 3_000)  # after the export: waits for the next payout
    payout = payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD",
                              amount_cents=10_201, reference="BANK-2026-12-001", as_of=as_of)
    for read in reads:
        posted = JournalTransaction.objects.get(natural_key=f"transfer:{read.natural_key}")
        assert posted.kind == JournalTransaction.Kind.PAYOUT
        legs = {p.account.purpose: p.amount for p in posted.postings.select_related("account")}
        assert set(legs) == {Purpose.READER_PAYABLE, Purpose.CASH}
        assert legs[Purpose.READER_PAYABLE] == -legs[Purpose.CASH] > 0
    assert set(payout.transfers.values_list("status", flat=True)) == {Transfer.Status.PAID_MANUALLY}
    assert _owed(ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=first)) == 2_550  # the late one
    assert Transfer.objects.get(earning=late).status == Transfer.Status.PENDING
    assert AuditEvent.objects.filter(action="payout.paid_manually", object_id=str(payout.public_id)).exists()
    # Nothing is left owed up to the export's time: a second marking is refused, not posted twice.
    with pytest.raises(ApplicationError) as refused:
        payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD", amount_cents=10_201,
                         reference="BANK-2026-12-001", as_of=as_of)
    assert "payee" in refused.value.fields


def test_an_earning_paid_by_hand_is_never_sent_through_stripe_later(cast, readers, finance, stripe_off, settings,
                                                                      fake_stripe_server):
    first, _ = readers
    read = earning(cast.center, first, 10_000)
    payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD", amount_cents=8_500,
                     reference="BANK-1", as_of=timezone.now())
    fake_stripe_server.reset()
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "sk_test_readroom_fake", fake_stripe_server.url
    assert transfers.transfers_run() == {"discovered": 0}
    assert fake_stripe_server.transfers == {}
    assert JournalTransaction.objects.filter(natural_key=f"transfer:{read.natural_key}").count() == 1


@pytest.mark.parametrize(("amount", "reference", "field"), [
    (8_499, "BANK-1", "amount_cents"),  # not what is owed
    (-8_500, "BANK-1", "amount_cents"),
    (85.0, "BANK-1", "amount_cents"),  # fractional / not whole minor units
    (8_500, "  ", "reference"),
])
def test_a_wrong_amount_or_missing_reference_is_refused_naming_the_field(cast, readers, finance, stripe_off, amount,
                                                                          reference, field):
    read = earning(cast.center, readers[0], 10_000)
    with pytest.raises(ApplicationError) as refused:
        payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=readers[0]), currency="USD",
                         amount_cents=amount, reference=reference, as_of=timezone.now())
    assert field in refused.value.fields
    assert not JournalTransaction.objects.filter(natural_key=f"transfer:{read.natural_key}").exists()


@pytest.mark.parametrize("who", ["center_finance", "radiologist", "platform_staff"])
def test_only_platform_finance_exports_and_marks_payouts(cast, readers, stripe_off, who):
    earning(cast.center, readers[0], 10_000)
    someone = actor_for_user(getattr(cast, who))
    with pytest.raises(NotFound):
        payouts_owed_csv(actor=someone, as_of=timezone.now())
    with pytest.raises(NotFound):
        payout_mark_paid(actor=someone, payee=connect.Payee(radiologist=readers[0]), currency="USD",
                         amount_cents=8_500, reference="BANK-1", as_of=timezone.now())
    assert not JournalTransaction.objects.filter(kind=JournalTransaction.Kind.PAYOUT).exists()


def test_an_earning_reversed_before_it_was_paid_is_no_longer_owed_nor_paid(cast, readers, finance, stripe_off):
    """Found by the ledger's state machine: a payout by hand paid an earning reversed after the export listed it."""
    first, _ = readers
    kept, reversed_ = earning(cast.center, first, 10_000), earning(cast.center, first, 2_001)
    as_of = timezone.now()
    assert int(_rows(payouts_owed_csv(actor=finance, as_of=as_of))[0]["amount_cents"]) == 10_201  # rows made
    ledger.reverse(entry=reversed_, reason="read withdrawn", actor_user=finance.user)
    assert not Transfer.objects.filter(earning=reversed_).exists()
    assert int(_rows(payouts_owed_csv(actor=finance, as_of=as_of))[0]["amount_cents"]) == 8_500
    with pytest.raises(ApplicationError):
        payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD", amount_cents=10_201,
                         reference="BANK-1", as_of=as_of)
    payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD", amount_cents=8_500,
                     reference="BANK-1", as_of=as_of)
    assert Transfer.objects.get(earning=kept).status == Transfer.Status.PAID_MANUALLY
    assert _owed(ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=first)) == 0


def test_a_payee_who_owes_back_a_reversed_paid_read_is_owed_only_what_later_earnings_cover(
        cast, readers, finance, stripe_off):
    first, _ = readers
    paid = earning(cast.center, first, 10_000)
    payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD", amount_cents=8_500,
                     reference="BANK-1", as_of=timezone.now())
    ledger.reverse(entry=paid, reason="Read cancelled after signing")  # owes 8,500 back
    for cents in (6_000, 20_000):  # 5,100 and 17,000 earned
        earning(cast.center, first, cents)
    as_of = timezone.now()
    [row] = _rows(payouts_owed_csv(actor=finance, as_of=as_of))
    assert (row["earnings"], row["amount_cents"]) == ("1", "5100")  # 13,600 owed covers the older one only
    with pytest.raises(ApplicationError) as refused:
        payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD",
                         amount_cents=22_100, reference="BANK-2", as_of=as_of)
    assert "amount_cents" in refused.value.fields
    payout_mark_paid(actor=finance, payee=connect.Payee(radiologist=first), currency="USD", amount_cents=5_100,
                     reference="BANK-2", as_of=as_of)
    payable = ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=first)
    assert _owed(payable) == 8_500  # the later earning less the debt, still owed
