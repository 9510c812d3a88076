"""A read's life posts what it owes: reported (receivable, earning, fee; a late read's credit) and a
cancellation after claim (the contract's fee) — through the marketplace's own services."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from billing.models import Contract, JournalTransaction, LedgerAccount, Price, ServiceLevel
from billing.services import ledger
from marketplace.models import Offer
from marketplace.services.offers import assignment_start, offer_claim, read_request_mark_reported
from marketplace.services.requests import read_request_cancel
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post, signed_read

Purpose = LedgerAccount.Purpose
pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(cast):
    return make_radiologist(user=cast.radiologist)


def _contract(cast, **fields):
    contract = Contract.objects.create(center=cast.center, group=cast.group, name="Group cover", currency="USD",
                                       starts_on=date(2026, 1, 1), status=Contract.Status.ACTIVE,
                                       fee_basis_points=1000, **fields)
    for band in ("day", "night", "weekend", "holiday"):
        Price.objects.create(contract=contract, modality="CT", priority="routine", band=band, cents=3000)
    return contract


def _claimed(cast, **fields):
    read_request = post(cast.center_admin, ingest_study(cast.center), **fields)
    offer = Offer.objects.get(read_request=read_request, radiologist__user=cast.radiologist)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request.refresh_from_db()
    return read_request


def test_a_reported_read_posts_its_locked_quote_once(cast, reader):
    read_request = signed_read(cast.center_admin, ingest_study(cast.center), cast.radiologist)
    entry = JournalTransaction.objects.get(reference=str(read_request.public_id))
    legs = {p.account.purpose: p.amount for p in entry.postings.select_related("account")}
    fee = ledger.fee_cents(read_request.quoted_cents, 1500)
    assert legs == {Purpose.CENTER_RECEIVABLE: read_request.quoted_cents,
                    Purpose.READER_PAYABLE: -(read_request.quoted_cents - fee), Purpose.PLATFORM_REVENUE: -fee}
    assert entry.details["accession"] == read_request.study.accession_number
    assert entry.details["reader"] == reader.name
    payee = entry.postings.get(account__purpose=Purpose.READER_PAYABLE).account
    assert payee.radiologist == reader


def test_a_read_directed_under_a_contract_pays_the_group_at_the_contract_fee(cast, reader):
    contract = _contract(cast)
    read_request = _claimed(cast, audience="direct", direct_group=cast.group)
    assert (read_request.quoted_cents, read_request.contract, read_request.fee_basis_points) == (3000, contract, 1000)
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist))
    entry = JournalTransaction.objects.get(reference=str(read_request.public_id), kind="read_signed")
    legs = {p.account.purpose: (p.amount, p.account.organization) for p in entry.postings.select_related("account")}
    assert legs[Purpose.READER_PAYABLE] == (-2700, cast.group)
    assert legs[Purpose.PLATFORM_REVENUE] == (-300, None)


def test_a_late_read_under_a_service_level_credits_the_center(cast, reader):
    contract = _contract(cast)
    ServiceLevel.objects.create(contract=contract, priority="routine", turnaround_minutes=60, credit_cents=500)
    read_request = _claimed(cast, audience="direct", direct_group=cast.group)
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist),
                               at=read_request.deadline + timedelta(minutes=1))
    credit = JournalTransaction.objects.get(reference=str(read_request.public_id), kind="sla_credit")
    assert credit.postings.get(account__purpose=Purpose.CENTER_RECEIVABLE).amount == -500
    on_time = _claimed(cast, audience="direct", direct_group=cast.group)
    read_request_mark_reported(read_request=on_time, actor=actor(cast.radiologist), at=timezone.now())
    assert not JournalTransaction.objects.filter(reference=str(on_time.public_id), kind="sla_credit").exists()


def test_cancelling_a_claimed_read_owes_the_contracts_cancellation_fee(cast, reader):
    _contract(cast, cancellation_fee_cents=1200)
    claimed = _claimed(cast, audience="direct", direct_group=cast.group)
    read_request_cancel(actor=actor(cast.center_admin), read_request=claimed, reason="Patient left")
    fee = JournalTransaction.objects.get(reference=str(claimed.public_id), kind="cancellation_fee")
    assert fee.postings.get(account__purpose=Purpose.READER_PAYABLE).amount == -1200
    # Cancelled before anyone claimed it: nothing is owed.
    unclaimed = post(cast.center_admin, ingest_study(cast.center), audience="direct", direct_group=cast.group)
    read_request_cancel(actor=actor(cast.center_admin), read_request=unclaimed, reason="Duplicate")
    assert not JournalTransaction.objects.filter(reference=str(unclaimed.public_id)).exists()


def test_a_contracts_preferred_readers_are_offered_the_read_first(cast, reader):
    """A center's contract in force names preferred readers: matching ranks them first and the first tier of a
    marketplace read goes to them alone (the others wait for the widening)."""
    from marketplace.services.matching import match

    other = make_radiologist(name="Other Reader")
    contract = _contract(cast)
    contract.preferred_readers.set([reader])
    read_request = post(cast.center_admin, ingest_study(cast.center))
    ranked = match(read_request).candidates
    assert [c.radiologist_id for c in ranked][:1] == [reader.pk]
    assert ranked[0].preferred
    assert not next(c for c in ranked if c.radiologist_id == other.pk).preferred
    offered = set(Offer.objects.filter(read_request=read_request).values_list("radiologist_id", flat=True))
    assert offered == {reader.pk}
    contract.status = Contract.Status.ENDED
    contract.save()
    assert not match(read_request).candidates[0].preferred
