"""Reconciling a payout (issue 15 item 6a): each balance transaction Stripe lists for the payout matched to
our transfer, its ledger posting and its read request; each injected difference reported with its reason
(missing, duplicate, off by one cent, wrong payout, unknown) and nothing reported where nothing is wrong."""

from __future__ import annotations

from collections import Counter

import pytest

from accounts.credentials.models import RadiologistProfile
from accounts.policy import actor_for_user
from billing.models import StripePayout, Transfer
from billing.services import connect, transfers
from billing.services.reconcile import payout_reconcile
from billing.services.webhooks import payout_refresh
from tests.billing.fake_stripe import earning
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _onboard(profile, fake_stripe):
    account = connect.connected_account_create(actor=actor_for_user(profile.user),
                                               payee=connect.Payee(radiologist=profile))
    fake_stripe.set_account(account.stripe_account_id)
    return connect.connected_account_sync(stripe_account_id=account.stripe_account_id)


@pytest.fixture
def world(cast, fake_stripe):
    """Two onboarded readers; three reads for the first and one for the second, all transferred."""
    first = RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago")
    second = RadiologistProfile.objects.create(user=UserFactory(), home_time_zone="America/Denver")
    accounts = [_onboard(first, fake_stripe), _onboard(second, fake_stripe)]
    reads = [earning(cast.center, first, cents) for cents in (10_000, 12_345, 999)]
    reads.append(earning(cast.center, second, 5_000))
    transfers.transfers_run()
    sent = {t.earning_id: t for t in Transfer.objects.all()}
    assert all(t.status == Transfer.Status.SENT for t in sent.values())
    return {"accounts": accounts, "reads": reads, "tr": [sent[r.pk].stripe_transfer_id for r in reads]}


def _payout(fake_stripe, account, **kwargs) -> StripePayout:
    remote = fake_stripe.create_payout(account.stripe_account_id, **kwargs)
    return payout_refresh(stripe_payout_id=remote["id"], stripe_account_id=account.stripe_account_id)


def _reasons(report) -> Counter:
    return Counter(issue.reason for issue in report.issues)


def test_a_clean_payout_matches_every_cent_to_a_transfer_a_posting_and_a_read(world, fake_stripe):
    payout = _payout(fake_stripe, world["accounts"][0])
    report = payout_reconcile(payout=payout)
    assert report.issues == []
    assert payout.amount_cents == report.matched_cents == 8_500 + 10_493 + 849
    by_read = {line.read_request: line for line in report.matched}
    for read in world["reads"][:3]:
        line = by_read[read.reference]
        assert line.ledger_key == f"transfer:{read.natural_key}"
    assert set(Transfer.objects.filter(stripe_payout=payout).values_list("reference", flat=True)) == {
        r.reference for r in world["reads"][:3]}
    payout.refresh_from_db()
    assert payout.reconciliation["matched_cents"] == payout.amount_cents
    # Reconciled again: the same answer (no false "wrong payout" for transfers it already holds).
    assert payout_reconcile(payout=payout).issues == []


def test_a_transfer_left_out_of_its_payout_is_missing(world, fake_stripe):
    payout = _payout(fake_stripe, world["accounts"][0])
    fake_stripe.unlink(world["tr"][1])
    payout.refresh_from_db()
    payout = payout_refresh(stripe_payout_id=payout.stripe_payout_id, stripe_account_id=payout.stripe_account_id)
    report = payout_reconcile(payout=payout)
    assert _reasons(report) == {"missing": 1}
    [issue] = report.issues
    assert (issue.transfer, issue.ledger_cents, issue.read_request) == (world["tr"][1], 10_493,
                                                                        world["reads"][1].reference)
    assert len(report.matched) == 2


def test_a_transfer_carried_twice_is_a_duplicate(world, fake_stripe):
    payout = _payout(fake_stripe, world["accounts"][0])
    fake_stripe.duplicate(world["tr"][0])
    payout = payout_refresh(stripe_payout_id=payout.stripe_payout_id, stripe_account_id=payout.stripe_account_id)
    report = payout_reconcile(payout=payout)
    assert _reasons(report) == {"duplicate": 1}
    assert report.issues[0].transfer == world["tr"][0]
    assert report.matched_cents == payout.amount_cents - 8_500


def test_an_amount_off_by_one_cent_is_reported_as_such(world, fake_stripe):
    payout = _payout(fake_stripe, world["accounts"][0])
    fake_stripe.tamper(world["tr"][2], -1)
    payout = payout_refresh(stripe_payout_id=payout.stripe_payout_id, stripe_account_id=payout.stripe_account_id)
    report = payout_reconcile(payout=payout)
    assert _reasons(report) == {"amount_differs": 1}
    [issue] = report.issues
    assert (issue.transfer, issue.stripe_cents, issue.ledger_cents) == (world["tr"][2], 848, 849)
    assert "off by one cent" in issue.message


def test_another_readers_transfer_in_a_payout_is_the_wrong_payout(world, fake_stripe):
    first, second = world["accounts"]
    payout = _payout(fake_stripe, first)
    fake_stripe.move(world["tr"][3], payout.stripe_payout_id)  # the second reader's money in the first's payout
    payout = payout_refresh(stripe_payout_id=payout.stripe_payout_id, stripe_account_id=payout.stripe_account_id)
    report = payout_reconcile(payout=payout)
    assert _reasons(report) == {"wrong_payout": 1}
    assert second.stripe_account_id in report.issues[0].message
    # The second reader's own payout then lacks it.
    theirs = _payout(fake_stripe, second)
    assert _reasons(payout_reconcile(payout=theirs)) == {"missing": 1}


def test_a_transfer_already_carried_by_an_earlier_payout_is_the_wrong_payout(world, fake_stripe):
    first_payout = _payout(fake_stripe, world["accounts"][0])
    assert payout_reconcile(payout=first_payout).issues == []
    later = _payout(fake_stripe, world["accounts"][0])
    fake_stripe.move(world["tr"][0], later.stripe_payout_id)
    later = payout_refresh(stripe_payout_id=later.stripe_payout_id, stripe_account_id=later.stripe_account_id)
    report = payout_reconcile(payout=later)
    assert _reasons(report) == {"wrong_payout": 1}
    assert first_payout.stripe_payout_id in report.issues[0].message


def test_money_no_transfer_of_ours_explains_is_unknown(world, fake_stripe):
    payout = _payout(fake_stripe, world["accounts"][0])
    fake_stripe.add_unknown(payout.stripe_payout_id, 1_234)
    payout = payout_refresh(stripe_payout_id=payout.stripe_payout_id, stripe_account_id=payout.stripe_account_id)
    report = payout_reconcile(payout=payout)
    assert _reasons(report) == {"unknown": 1}
    assert report.issues[0].stripe_cents == 1_234
    assert len(report.matched) == 3


def test_every_kind_at_once_is_each_reported_once_and_nothing_else(world, fake_stripe):
    first, second = world["accounts"]
    payout = _payout(fake_stripe, first)
    fake_stripe.unlink(world["tr"][1])
    fake_stripe.duplicate(world["tr"][0])
    fake_stripe.tamper(world["tr"][2], 1)
    fake_stripe.move(world["tr"][3], payout.stripe_payout_id)
    fake_stripe.add_unknown(payout.stripe_payout_id, -50)
    payout = payout_refresh(stripe_payout_id=payout.stripe_payout_id, stripe_account_id=payout.stripe_account_id)
    report = payout_reconcile(payout=payout)
    assert _reasons(report) == {"missing": 1, "duplicate": 1, "amount_differs": 1, "wrong_payout": 1, "unknown": 1}
    assert [line.transfer for line in report.matched] == [world["tr"][0]]


def test_transfers_made_after_a_payout_are_not_missing_from_it(cast, world, fake_stripe):
    payout = _payout(fake_stripe, world["accounts"][0])
    earning(cast.center, RadiologistProfile.objects.get(user=cast.radiologist), 700)
    transfers.transfers_run()
    assert payout_reconcile(payout=payout).issues == []


def test_a_payout_of_more_than_a_page_is_reconciled_whole_in_a_constant_number_of_queries(cast, fake_stripe):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reader = RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago")
    account = _onboard(reader, fake_stripe)
    counts = []
    for reads in (3, 105):  # Stripe lists 100 at most per page: the second payout spans two
        for _ in range(reads):
            earning(cast.center, reader, 1_000)
        transfers.transfers_run()
        payout = _payout(fake_stripe, account)
        with CaptureQueriesContext(connection) as queries:
            report = payout_reconcile(payout=payout)
        assert report.issues == []
        assert (len(report.matched), report.matched_cents) == (reads, reads * 850)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    pages = [path for method, path, key in fake_stripe.requests if path == "/v1/balance_transactions"]
    assert len(pages) == 1 + 2
