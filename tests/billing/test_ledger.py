"""The ledger: balanced, immutable, once per natural key — in Python and, at commit, in PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import AuditEvent
from billing.models import JournalTransaction, LedgerAccount, Posting
from billing.services import ledger
from core.errors import ApplicationError
from tests.marketplace.helpers import make_radiologist

Purpose = LedgerAccount.Purpose
pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(cast):
    return make_radiologist(user=cast.radiologist)



def _read(cast, reader, reference="rr-1", gross=3700, fee_bp=1500, group=None):
    return ledger.post_read_signed(reference=reference, center=cast.center, radiologist=reader, group=group,
                                   gross_cents=gross, fee_basis_points=fee_bp, currency="USD")


def test_a_signed_read_posts_receivable_earning_and_fee(cast, reader):
    entry = _read(cast, reader)
    legs = {p.account.purpose: p.amount for p in entry.postings.select_related("account")}
    assert legs == {Purpose.CENTER_RECEIVABLE: 3700, Purpose.READER_PAYABLE: -3145, Purpose.PLATFORM_REVENUE: -555}
    receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=cast.center)
    payable = ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=reader)
    assert ledger.balance(receivable) == 3700
    assert ledger.balance(payable) == -3145


def test_the_earning_goes_to_the_group_when_the_read_came_through_its_contract(cast, reader):
    entry = _read(cast, reader, group=cast.group)
    payee = entry.postings.get(account__purpose=Purpose.READER_PAYABLE).account
    assert payee.organization == cast.group
    assert payee.radiologist is None


def test_posting_twice_with_the_same_key_posts_once(cast, reader):
    first = _read(cast, reader)
    second = _read(cast, reader, gross=9999)  # a retried task, even with other figures, finds the first
    assert first.pk == second.pk
    assert JournalTransaction.objects.count() == 1
    assert Posting.objects.count() == 3


@pytest.mark.parametrize(("gross", "bp", "fee"), [(3700, 1500, 555), (1, 1500, 0), (10, 1500, 2), (3333, 1500, 500),
                                                 (1000, 0, 0), (1000, 10_000, 1000)])
def test_the_fee_rounds_half_up_to_the_minor_unit(gross, bp, fee):
    assert ledger.fee_cents(gross, bp) == fee


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=10_000))
def test_fee_and_earning_always_make_the_gross(gross, bp):
    fee = ledger.fee_cents(gross, bp)
    assert 0 <= fee <= gross
    assert abs(fee * 10_000 - gross * bp) <= 5_000  # within half a minor unit of the exact fee


def test_a_zero_or_full_fee_leaves_the_empty_side_out(cast, reader):
    free = _read(cast, reader, reference="free", fee_bp=0)
    assert sorted(p.account.purpose for p in free.postings.all()) == [Purpose.CENTER_RECEIVABLE,
                                                                      Purpose.READER_PAYABLE]
    full = _read(cast, reader, reference="full", fee_bp=10_000)
    assert sorted(p.account.purpose for p in full.postings.all()) == [Purpose.CENTER_RECEIVABLE,
                                                                      Purpose.PLATFORM_REVENUE]


@pytest.mark.parametrize(("amounts", "field"), [
    ([100], "postings"),
    ([100, -99], "postings"),
    ([100, 0, -100], "postings[1].amount"),
    ([100.0, -100.0], "postings[0].amount"),
    ([True, -1], "postings[0].amount"),
])
def test_python_refuses_what_postgresql_would(cast, amounts, field):
    accounts = [ledger.account(Purpose.CASH, "USD", organization=cast.center),
                ledger.account(Purpose.PLATFORM_REVENUE, "USD"), ledger.account(Purpose.STRIPE_CLEARING, "USD")]
    legs = [ledger.Leg(accounts[i], amount) for i, amount in enumerate(amounts)]
    with pytest.raises(ApplicationError) as refused:
        ledger.post(kind="adjustment", natural_key="bad", currency="USD", legs=legs)
    assert field in refused.value.fields
    assert not JournalTransaction.objects.exists()


def test_a_currency_mismatch_is_refused(cast):
    legs = [ledger.Leg(ledger.account(Purpose.CASH, "USD"), 100), ledger.Leg(ledger.account(Purpose.CASH, "CAD"), -100)]
    with pytest.raises(ApplicationError) as refused:
        ledger.post(kind="adjustment", natural_key="mixed", currency="USD", legs=legs)
    assert "postings[1].currency" in refused.value.fields
    with pytest.raises(ApplicationError):
        ledger.account(Purpose.CASH, "usd")


def test_an_adjustment_needs_a_reason_and_is_audited(cast, finance):
    legs = [ledger.Leg(ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=cast.center), -500),
            ledger.Leg(ledger.account(Purpose.PLATFORM_REVENUE, "USD"), 500)]
    with pytest.raises(ApplicationError) as refused:
        ledger.post_adjustment(actor_user=finance, natural_key="goodwill-1", currency="USD", legs=legs,
                               reason="  ")
    assert "reason" in refused.value.fields
    entry = ledger.post_adjustment(actor_user=finance, natural_key="goodwill-1", currency="USD",
                                   legs=legs, reason="Goodwill credit for a late read")
    event = AuditEvent.objects.get(action="ledger.adjustment")
    assert event.object_id == str(entry.pk)
    assert event.reason == "Goodwill credit for a late read"


def test_a_reversal_mirrors_the_original_once(cast, reader, finance):
    entry = _read(cast, reader)
    mirror = ledger.reverse(entry=entry, reason="posted against the wrong center", actor_user=finance)
    again = ledger.reverse(entry=entry, reason="again", actor_user=finance)
    assert mirror.pk == again.pk
    assert mirror.reverses == entry
    for account in LedgerAccount.objects.all():
        assert ledger.balance(account) == 0
    with pytest.raises(ApplicationError):
        ledger.reverse(entry=mirror, reason="undo the undo")


def test_sla_credit_and_cancellation_fee(cast, reader):
    credit = ledger.post_sla_credit(reference="rr-9", center=cast.center, credit_cents=500, currency="USD")
    fee = ledger.post_cancellation_fee(reference="rr-9", center=cast.center, radiologist=reader, group=None,
                                       fee_cents_due=1500, currency="USD")
    assert ledger.post_sla_credit(reference="rr-9", center=cast.center, credit_cents=0, currency="USD") is None
    receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=cast.center)
    assert ledger.balance(receivable) == 1000
    assert credit.kind == "sla_credit"
    assert fee.kind == "cancellation_fee"


def _raw_transaction(currency="USD"):
    return JournalTransaction.objects.create(natural_key=f"raw-{timezone.now().timestamp()}", kind="adjustment",
                                             currency=currency, created_at=timezone.now())


def _check_now():
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.parametrize("amounts", [[100, -99], [100], []])
def test_postgresql_refuses_an_unbalanced_transaction(postgres_only, cast, amounts):
    cash, revenue = ledger.account(Purpose.CASH, "USD"), ledger.account(Purpose.PLATFORM_REVENUE, "USD")
    with transaction.atomic():
        entry = _raw_transaction()
        Posting.objects.bulk_create([Posting(transaction=entry, account=(cash, revenue)[i % 2], amount=a,
                                             currency="USD") for i, a in enumerate(amounts)])
        with pytest.raises(DatabaseError, match="balance|at least two"):
            _check_now()
        transaction.set_rollback(True)


def test_postgresql_refuses_mixed_currencies(postgres_only, cast):
    usd, cad = ledger.account(Purpose.CASH, "USD"), ledger.account(Purpose.CASH, "CAD")
    with transaction.atomic():
        entry = _raw_transaction()
        Posting.objects.bulk_create([Posting(transaction=entry, account=usd, amount=100, currency="USD"),
                                     Posting(transaction=entry, account=cad, amount=-100, currency="USD")])
        with pytest.raises(DatabaseError, match="mixes currencies"):
            _check_now()
        transaction.set_rollback(True)


def test_postgresql_accepts_a_balanced_transaction_and_then_freezes_it(postgres_only, cast, reader):
    entry = _read(cast, reader)
    _check_now()  # the deferred checks pass
    for sql in ("UPDATE billing_posting SET amount = amount + 1 WHERE transaction_id = %s",
                "DELETE FROM billing_posting WHERE transaction_id = %s",
                "UPDATE billing_journaltransaction SET memo = 'changed' WHERE id = %s",
                "DELETE FROM billing_journaltransaction WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])


# --- what mutation testing found untested (bin/dev mutate billing/services/ledger.py) -------------------------

def test_the_fee_refuses_what_it_cannot_be_and_rounds_at_exactly_half():
    assert ledger.fee_cents(0, 1500) == 0  # nothing read, no fee: not an error
    assert ledger.fee_cents(4999, 1) == 0  # 0.4999 of a cent rounds down
    assert ledger.fee_cents(5000, 1) == 1  # 0.5 rounds up
    for gross, bp in ((-1, 1500), (100, 10_001), (100, -1)):
        with pytest.raises(ApplicationError) as refused:
            ledger.fee_cents(gross, bp)
        assert refused.value.fields["fee_basis_points"] == [
            "The fee is between 0 and 100 % of a non-negative amount."]


def test_a_read_is_posted_for_a_positive_amount_and_says_its_figures(cast, reader):
    with pytest.raises(ApplicationError, match="positive amount") as refused:
        _read(cast, reader, reference="free-read", gross=0)
    assert "gross_cents" in refused.value.fields
    entry = _read(cast, reader, reference="figures", gross=3700)
    assert (entry.details["gross"], entry.details["fee"]) == (3700, 555)


def test_a_posting_keeps_what_it_was_given_within_its_limits(cast, finance):
    cash, revenue = ledger.account(Purpose.CASH, "USD"), ledger.account(Purpose.PLATFORM_REVENUE, "USD")
    plain = ledger.post(kind="adjustment", natural_key="plain", currency="USD",
                        legs=[ledger.Leg(cash, 1), ledger.Leg(revenue, -1)])
    assert (plain.reference, plain.memo, plain.reason, plain.details, plain.created_by) == ("", "", "", {}, None)
    long = ledger.post(kind="adjustment", natural_key="long", currency="USD", memo="m" * 400, reason="r" * 600,
                       legs=[ledger.Leg(cash, 1), ledger.Leg(revenue, -1)], actor_user=finance)
    assert (len(long.memo), len(long.reason), long.created_by) == (300, 500, finance)
    with pytest.raises(ApplicationError) as zero:
        ledger.post(kind="adjustment", natural_key="zero", currency="USD",
                    legs=[ledger.Leg(cash, 0), ledger.Leg(revenue, 0)])
    assert zero.value.fields["postings[0].amount"] == ["A posting of zero says nothing; leave it out."]
    with pytest.raises(ApplicationError) as refused:
        ledger.account(Purpose.CASH, "usd")
    assert "currency" in refused.value.fields


def test_a_one_cent_cancellation_fee_is_owed_and_a_credit_keeps_its_details(cast, reader):
    fee = ledger.post_cancellation_fee(reference="c1", center=cast.center, radiologist=reader, group=None,
                                       fee_cents_due=1, currency="USD", details={"accession": "A1"})
    assert fee.postings.get(account__purpose=Purpose.READER_PAYABLE).amount == -1
    assert fee.details == {"accession": "A1"}
    credit = ledger.post_sla_credit(reference="c1", center=cast.center, credit_cents=250, currency="USD",
                                    details={"accession": "A1"})
    assert (credit.details, credit.reference) == ({"accession": "A1"}, "c1")
    assert credit.memo == "Service-level credit on read c1"


def test_an_adjustment_records_who_what_and_why(cast, finance):
    receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=cast.center)
    revenue = ledger.account(Purpose.PLATFORM_REVENUE, "USD")
    with pytest.raises(ApplicationError) as refused:
        ledger.post_adjustment(actor_user=finance, natural_key="why", currency="USD", reason="",
                               legs=[ledger.Leg(receivable, -5), ledger.Leg(revenue, 5)])
    assert refused.value.fields["reason"] == ["Say why this adjustment is made."]
    reason = "Goodwill for a late read " + "x" * 600
    entry = ledger.post_adjustment(actor_user=finance, natural_key="g2", currency="USD", reason=reason,
                                   reference="rr-7", legs=[ledger.Leg(receivable, -5), ledger.Leg(revenue, 5)])
    assert (entry.reference, entry.created_by, entry.kind) == ("rr-7", finance, "adjustment")
    assert entry.reason == reason[:500]
    event = AuditEvent.objects.get(action="ledger.adjustment", object_id=str(entry.pk))
    assert (event.actor, event.object_type, len(event.reason)) == (finance, "billing.journaltransaction", 500)
    assert event.extra["legs"] == [[receivable.pk, -5], [revenue.pk, 5]]
    assert event.extra["natural_key"] == "adjustment:g2"


def test_a_reversal_says_why_and_who_and_is_audited(cast, reader, finance):
    entry = _read(cast, reader, reference="to-reverse")
    with pytest.raises(ApplicationError) as refused:
        ledger.reverse(entry=entry, reason=" ", actor_user=finance)
    assert "reason" in refused.value.fields
    mirror = ledger.reverse(entry=entry, reason="posted against the wrong reader", actor_user=finance)
    assert (mirror.reason, mirror.created_by, mirror.reference) == ("posted against the wrong reader", finance,
                                                                     "to-reverse")
    assert mirror.memo == f"Reverses {entry.natural_key}"
    event = AuditEvent.objects.get(action="ledger.reversal", object_id=str(mirror.pk))
    assert (event.actor, event.object_type, event.reason) == (finance, "billing.journaltransaction",
                                                              "posted against the wrong reader")
    assert event.extra == {"reverses": entry.natural_key}
