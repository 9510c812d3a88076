"""Earnings paid out through Stripe Connect (against the fake Stripe, through the official SDK): one transfer
per earning with the read request as transfer_group and a key from the ledger, posted when Stripe
confirms; held without payouts enabled; retried after an error or a timeout without ever paying twice."""

from __future__ import annotations

import pytest

from accounts.credentials.models import RadiologistProfile
from accounts.policy import actor_for_user
from billing.models import JournalTransaction, LedgerAccount, Transfer
from billing.services import connect, ledger, transfers
from billing.tasks import run_transfers
from core.errors import NotFound
from tests.billing.fake_stripe import earning

Purpose = LedgerAccount.Purpose
pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(cast):
    return RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago")


@pytest.fixture
def onboarded(cast, reader, fake_stripe):
    """The reader's connected account, onboarding finished at Stripe and seen by us."""
    account = connect.connected_account_create(actor=actor_for_user(cast.radiologist),
                                               payee=connect.Payee(radiologist=reader))
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    fake_stripe.take_events()
    account.refresh_from_db()
    return account


def _payable(reader) -> int:
    return ledger.balance(ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=reader))


def test_an_earning_is_transferred_once_with_its_read_as_transfer_group_and_a_key_from_the_ledger(
        cast, reader, onboarded, fake_stripe):
    entry = earning(cast.center, reader, 10_000)
    assert _payable(reader) == -8_500
    assert run_transfers.delay().get()["sent"] == 1
    [remote] = fake_stripe.transfers_to(onboarded.stripe_account_id)
    assert (remote["amount"], remote["currency"], remote["transfer_group"]) == (8_500, "usd", entry.reference)
    keys = [key for method, path, key in fake_stripe.requests if path == "/v1/transfers"]
    assert keys == [f"transfer:{entry.natural_key}"]
    transfer = Transfer.objects.get(earning=entry)
    assert (transfer.status, transfer.stripe_transfer_id) == (Transfer.Status.SENT, remote["id"])
    posted = JournalTransaction.objects.get(natural_key=f"transfer:{entry.natural_key}")
    legs = {p.account.purpose: p.amount for p in posted.postings.select_related("account")}
    assert legs == {Purpose.READER_PAYABLE: 8_500, Purpose.STRIPE_CLEARING: -8_500}
    assert _payable(reader) == 0
    # A second run finds nothing to do and asks Stripe for nothing.
    calls = len(fake_stripe.requests)
    assert run_transfers.delay().get() == {"discovered": 0, "events_finished": 0, "refunds_done": 0}
    assert len(fake_stripe.requests) == calls
    assert len(fake_stripe.transfers) == 1


def test_a_group_earning_goes_to_the_groups_account(cast, reader, fake_stripe):
    finance = actor_for_user(cast.center_admin)
    with pytest.raises(NotFound):
        connect.connected_account_create(actor=finance, payee=connect.Payee(organization=cast.group))
    from tests.factories import MembershipFactory

    group_admin = MembershipFactory(organization=cast.group, roles=["admin"]).user
    account = connect.connected_account_create(actor=actor_for_user(group_admin),
                                               payee=connect.Payee(organization=cast.group))
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    entry = earning(cast.center, reader, 20_000, group=cast.group)
    transfers.transfers_run()
    [remote] = fake_stripe.transfers_to(account.stripe_account_id)
    assert remote["amount"] == 17_000
    assert Transfer.objects.get(earning=entry).organization == cast.group


def test_without_payouts_enabled_the_transfer_is_held_then_sent_when_enabled(cast, reader, fake_stripe):
    entry = earning(cast.center, reader, 10_000)
    assert transfers.transfers_run()["held"] == 1  # no account at all
    transfer = Transfer.objects.get(earning=entry)
    assert (transfer.status, transfer.held_reason) == (Transfer.Status.HELD, "The payee has no Stripe account yet.")
    account = connect.connected_account_create(actor=actor_for_user(cast.radiologist),
                                               payee=connect.Payee(radiologist=reader))
    assert transfers.transfers_run()["held"] == 1  # onboarding not finished
    transfer.refresh_from_db()
    assert "not enabled" in transfer.held_reason
    assert fake_stripe.transfers == {}
    assert _payable(reader) == -8_500  # still owed: held, not lost
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.PENDING  # released by the account's update
    assert transfers.transfers_run()["sent"] == 1
    assert len(fake_stripe.transfers_to(account.stripe_account_id)) == 1
    assert _payable(reader) == 0


def test_a_stale_enabled_flag_is_refused_by_stripe_and_the_transfer_is_held(cast, reader, onboarded, fake_stripe):
    fake_stripe.set_account(onboarded.stripe_account_id, complete=False)  # we have not heard yet
    entry = earning(cast.center, reader)
    transfers.transfers_run()
    transfer = Transfer.objects.get(earning=entry)
    assert transfer.status == Transfer.Status.HELD
    assert "onboarding is not complete" in transfer.held_reason
    assert fake_stripe.transfers == {}
    fake_stripe.set_account(onboarded.stripe_account_id)
    transfers.transfers_run()
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.SENT


def test_a_stripe_500_is_retried_by_the_next_run_with_the_same_key_and_pays_once(cast, reader, onboarded, fake_stripe):
    entry = earning(cast.center, reader)
    fake_stripe.fail_next("/v1/transfers", status=500)
    assert transfers.transfers_run()["pending"] == 1
    transfer = Transfer.objects.get(earning=entry)
    assert (transfer.status, transfer.attempts) == (Transfer.Status.PENDING, 1)
    assert "APIError" in transfer.last_error
    assert not JournalTransaction.objects.filter(natural_key=f"transfer:{entry.natural_key}").exists()
    assert transfers.transfers_run()["sent"] == 1
    keys = [key for method, path, key in fake_stripe.requests if path == "/v1/transfers"]
    assert keys == [f"transfer:{entry.natural_key}"] * 2
    assert len(fake_stripe.transfers) == 1
    assert Transfer.objects.filter(status=Transfer.Status.SENT).count() == 1


def test_the_sdks_own_retry_after_a_500_reuses_the_key(cast, reader, onboarded, fake_stripe, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    entry = earning(cast.center, reader)
    fake_stripe.fail_next("/v1/transfers", status=500)
    assert transfers.transfers_run()["sent"] == 1
    keys = [key for method, path, key in fake_stripe.requests if path == "/v1/transfers"]
    assert keys == [f"transfer:{entry.natural_key}"] * 2
    assert len(fake_stripe.transfers) == 1


def test_a_timeout_after_stripe_made_the_transfer_is_answered_by_the_same_transfer_on_retry(
        cast, reader, onboarded, fake_stripe):
    entry = earning(cast.center, reader)
    fake_stripe.fail_next("/v1/transfers", status=200, delay=1.5, after_processing=True)  # the answer is lost
    assert transfers.transfers_run()["pending"] == 1
    transfer = Transfer.objects.get(earning=entry)
    assert "APIConnectionError" in transfer.last_error
    assert len(fake_stripe.transfers) == 1  # Stripe did make it
    assert transfers.transfers_run()["sent"] == 1
    assert len(fake_stripe.transfers) == 1  # the retry got the same one back
    transfer.refresh_from_db()
    assert transfer.stripe_transfer_id == next(iter(fake_stripe.transfers))
    assert JournalTransaction.objects.filter(natural_key=f"transfer:{entry.natural_key}").count() == 1


def test_a_reversed_read_is_not_paid_out(cast, reader, onboarded, fake_stripe):
    entry = earning(cast.center, reader)
    ledger.reverse(entry=entry, reason="Read cancelled by operations")
    transfers.transfers_run()
    assert not Transfer.objects.exists()
    assert fake_stripe.transfers == {}


def test_with_stripe_off_nothing_is_sent_and_the_earning_stays_owed(cast, reader, stripe_off):
    entry = earning(cast.center, reader)
    assert run_transfers.delay().get() == {"discovered": 1, "events_finished": 0, "refunds_done": 0}
    assert Transfer.objects.get(earning=entry).status == Transfer.Status.PENDING
    assert _payable(reader) == -8_500


def test_a_payee_who_owes_back_a_reversed_paid_read_has_later_earnings_held_until_they_cover_it(
        cast, reader, onboarded, fake_stripe):
    paid = earning(cast.center, reader, 10_000)  # 8,500 to the reader, sent
    assert run_transfers.delay().get()["sent"] == 1
    ledger.reverse(entry=paid, reason="Read cancelled after signing")  # the reader now owes 8,500 back
    smaller = earning(cast.center, reader, 6_000)  # 5,100 earned: not enough to cover the debt
    assert run_transfers.delay().get()["held"] == 1
    held = Transfer.objects.get(earning=smaller)
    assert held.status == Transfer.Status.HELD
    assert "owes back a reversed read" in held.held_reason
    assert "-34.00 USD" in held.held_reason  # what is owed now: 5,100 - 8,500
    assert len(fake_stripe.transfers_to(onboarded.stripe_account_id)) == 1
    # Later earnings cover the debt: the older held one goes as soon as what is owed covers it.
    larger = earning(cast.center, reader, 20_000)  # 17,000: owed is now 13,600
    result = run_transfers.delay().get()
    assert (result["sent"], result["held"]) == (1, 1)
    assert Transfer.objects.get(earning=smaller).status == Transfer.Status.SENT
    assert Transfer.objects.get(earning=larger).status == Transfer.Status.HELD  # 17,000 > 8,500 still owed
    assert _payable(reader) == -8_500  # still owed: the larger earning less the debt (netted, never paid twice)
