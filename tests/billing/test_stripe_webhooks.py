"""The Stripe webhook endpoint: signature checked over the raw body by the SDK (5-minute tolerance), each
event stored once, processed in Celery, and the outcome the same whatever order the events came in."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from accounts.credentials.models import RadiologistProfile
from accounts.policy import actor_for_user
from billing.models import ConnectedAccount, JournalTransaction, LedgerAccount, StripeEvent, StripePayout, Transfer
from billing.services import connect, ledger, transfers
from tests.billing.fake_stripe import WEBHOOK_URL, deliver, earning

Purpose = LedgerAccount.Purpose
pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(cast):
    return RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago")


@pytest.fixture
def account(cast, reader, fake_stripe):
    made = connect.connected_account_create(actor=actor_for_user(cast.radiologist),
                                            payee=connect.Payee(radiologist=reader))
    fake_stripe.take_events()
    return made


@pytest.fixture
def stripe_client_csrf():
    return Client(enforce_csrf_checks=True)  # Stripe sends no CSRF token: the signature stands for it


def _post(client, payload: bytes, header: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post(WEBHOOK_URL, data=payload, content_type="application/json", **extra)


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "tampered_body", "too_old", "garbage_header"])
def test_a_bad_missing_or_stale_signature_is_refused_and_changes_nothing(
        case, account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    event = fake_stripe.set_account(account.stripe_account_id) and fake_stripe.take_events()[0]
    payload, header = fake_stripe.signed(event)
    if case == "missing":
        header = None
    elif case == "wrong_secret":
        header = fake_stripe.sign(payload, secret="whsec_someone_else")
    elif case == "tampered_body":
        payload = payload.replace(b'"payouts_enabled": true', b'"payouts_enabled": false')
    elif case == "too_old":
        header = fake_stripe.sign(payload, timestamp=int(time.time()) - 301)
    else:
        header = "t=abc,v1="
    with django_capture_on_commit_callbacks(execute=True):
        answer = _post(stripe_client_csrf, payload, header)
    assert answer.status_code == 400
    assert "Stripe-Signature" in answer.json()["error"]["fields"]
    assert not StripeEvent.objects.exists()
    account.refresh_from_db()
    assert account.payouts_enabled is False


def test_a_signature_within_five_minutes_is_accepted(account, fake_stripe, stripe_client_csrf,
                                                     django_capture_on_commit_callbacks):
    event = fake_stripe.set_account(account.stripe_account_id) and fake_stripe.take_events()[0]
    payload = json.dumps(event).encode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = _post(stripe_client_csrf, payload, fake_stripe.sign(payload, timestamp=int(time.time()) - 240))
    assert answer.status_code == 200
    account.refresh_from_db()
    assert account.payouts_enabled is True


def test_a_body_that_is_not_an_event_is_400_and_get_is_405(fake_stripe, stripe_client_csrf):
    payload = b"not json"
    assert _post(stripe_client_csrf, payload, fake_stripe.sign(payload)).status_code == 400
    assert stripe_client_csrf.get(WEBHOOK_URL).status_code == 405
    assert not StripeEvent.objects.exists()


def test_the_same_event_twice_is_stored_and_acted_on_once(
        account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    event = fake_stripe.set_account(account.stripe_account_id) and fake_stripe.take_events()[0]
    first, second = deliver(stripe_client_csrf, django_capture_on_commit_callbacks, [event, event], fake_stripe)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.attempts, stored.account) == (event["id"], 1, account.stripe_account_id)
    assert stored.processed_at is not None
    # Acting on it again (a redelivered task) does nothing either.
    retrieves = len(fake_stripe.requests)
    from billing.tasks import process_stripe_event

    process_stripe_event.delay(stored.pk).get()
    assert len(fake_stripe.requests) == retrieves


def test_account_updates_out_of_order_leave_stripes_current_state(
        account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    fake_stripe.set_account(account.stripe_account_id, complete=False)
    fake_stripe.set_account(account.stripe_account_id, complete=True)
    disabled, enabled = fake_stripe.take_events()
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, [enabled, disabled], fake_stripe)  # late one last
    account.refresh_from_db()
    assert (account.payouts_enabled, account.requirements_due) == (True, [])
    # And a stale payload alone is never trusted: Stripe says disabled now, an old "enabled" event says otherwise.
    fake_stripe.set_account(account.stripe_account_id, complete=False)
    fake_stripe.take_events()
    stale = dict(enabled, id="evt_stale_replayed")
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, [stale], fake_stripe)
    account.refresh_from_db()
    assert account.payouts_enabled is False
    assert account.requirements_due == ["external_account"]


def test_account_enabled_by_webhook_releases_held_transfers(
        cast, reader, account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    entry = earning(cast.center, reader)
    transfers.transfers_run()
    assert Transfer.objects.get(earning=entry).status == Transfer.Status.HELD
    fake_stripe.set_account(account.stripe_account_id)
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    assert Transfer.objects.get(earning=entry).status == Transfer.Status.PENDING
    from billing.tasks import run_transfers

    assert run_transfers.delay().get()["sent"] == 1


def test_transfer_created_confirms_a_transfer_whose_answer_was_lost(
        cast, reader, account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    entry = earning(cast.center, reader)
    fake_stripe.fail_next("/v1/transfers", status=200, delay=1.5, after_processing=True)
    transfers.transfers_run()
    assert Transfer.objects.get(earning=entry).status == Transfer.Status.PENDING
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, fake_stripe.take_events("transfer.created"),
            fake_stripe)
    transfer = Transfer.objects.get(earning=entry)
    assert transfer.status == Transfer.Status.SENT
    assert transfer.stripe_transfer_id == next(iter(fake_stripe.transfers))
    assert transfers.transfers_run() == {"discovered": 0}
    assert len(fake_stripe.transfers) == 1
    assert JournalTransaction.objects.filter(natural_key=f"transfer:{entry.natural_key}").count() == 1


def test_transfer_reversed_before_created_is_posted_back_once(
        cast, reader, account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    entry = earning(cast.center, reader)
    transfers.transfers_run()
    transfer = Transfer.objects.get(earning=entry)
    fake_stripe.reverse(transfer.stripe_transfer_id)
    created = fake_stripe.take_events("transfer.created")
    reversed_ = fake_stripe.take_events("transfer.reversed")
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, reversed_ + created + reversed_, fake_stripe)
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.REVERSED
    back = JournalTransaction.objects.get(natural_key=f"transfer_reversed:{entry.natural_key}")
    assert {p.account.purpose: p.amount for p in back.postings.select_related("account")} == {
        Purpose.STRIPE_CLEARING: 8_500, Purpose.READER_PAYABLE: -8_500}
    assert ledger.balance(ledger.account(Purpose.READER_PAYABLE, "USD", radiologist=reader)) == -8_500  # owed again


def test_payout_paid_is_stored_and_reconciled_and_payout_failed_recorded(
        cast, reader, account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    earning(cast.center, reader)
    transfers.transfers_run()
    fake_stripe.take_events()
    paid = fake_stripe.create_payout(account.stripe_account_id)
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    payout = StripePayout.objects.get(stripe_payout_id=paid["id"])
    assert (payout.status, payout.amount_cents, payout.connected_account) == ("paid", 8_500, account)
    assert payout.reconciled_at is not None
    assert payout.reconciliation["issues"] == []
    assert Transfer.objects.get().stripe_payout == payout
    failed = fake_stripe.create_payout(account.stripe_account_id, status="failed")
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    event = StripeEvent.objects.get(type="payout.failed")
    assert "failed" in event.note
    assert "closed" in event.note
    assert StripePayout.objects.get(stripe_payout_id=failed["id"]).status == "failed"


@pytest.mark.parametrize("kind", ["customer.created", "charge.succeeded"])
def test_events_without_a_business_effect_are_stored_and_marked_with_a_note(
        kind, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    event = fake_stripe._event(kind, {"id": "pi_123", "object": kind.split(".")[0], "amount": 100})
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, [event], fake_stripe)
    stored = StripeEvent.objects.get()
    assert stored.processed_at is not None
    assert stored.note.startswith("Stored")


def test_an_event_that_cannot_be_processed_now_stays_open_and_is_finished_later(
        account, fake_stripe, stripe_client_csrf, django_capture_on_commit_callbacks):
    fake_stripe.set_account(account.stripe_account_id)
    fake_stripe.fail_next(f"/v1/accounts/{account.stripe_account_id}", status=503)
    deliver(stripe_client_csrf, django_capture_on_commit_callbacks, fake_stripe.take_events(), fake_stripe)
    stored = StripeEvent.objects.get()
    assert stored.processed_at is None
    assert "APIError" in stored.last_error
    assert ConnectedAccount.objects.get().payouts_enabled is False
    from billing.tasks import run_transfers

    assert run_transfers.delay().get()["events_finished"] == 1
    stored.refresh_from_db()
    assert stored.processed_at is not None
    assert stored.attempts == 2
    assert ConnectedAccount.objects.get().payouts_enabled is True
