"""Paying earnings out: one Transfer per reader-payable posting of a read, sent once.

- Every earning (the payable credit of a signed read or a cancellation fee, not reversed) gets a
  ``Transfer`` row; with Stripe on, ``transfers_run`` sends each pending one to the payee's connected
  account with ``transfer_group`` = the read request and the idempotency key
  ``transfer:<earning's natural key>``.
- No connected account, or payouts not enabled: the transfer is held (the earning stays owed) and is
  released when ``account.updated`` shows payouts enabled.
- Never more than the payee's payable holds: a payee who owes money back (a read reversed after its
  earning was paid) has later earnings held until what they earn covers the debt (``coverable``), so the
  debt is netted, not paid twice.
- A Stripe error or timeout leaves it pending; the next run retries with the same key, so Stripe answers
  with the transfer it already made, if it made one: never two.
- Posted when Stripe confirms: reader payable debit, Stripe clearing credit (cash for a manual payout,
  ``billing.services.payouts``), natural key ``transfer:<earning's natural key>`` either way.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import stripe
from django.db import transaction
from django.utils import timezone

from billing import stripe_client
from billing.models import ConnectedAccount, JournalTransaction, LedgerAccount, Posting, Transfer
from billing.services import ledger

Kind = JournalTransaction.Kind
Purpose = LedgerAccount.Purpose
EARNING_KINDS = (Kind.READ_SIGNED, Kind.CANCELLATION_FEE)
OPEN = (Transfer.Status.PENDING, Transfer.Status.HELD)


def transfers_discover() -> int:
    """Give every earning without a Transfer its row (pending); returns how many were added."""
    earnings = (Posting.objects.filter(account__purpose=Purpose.READER_PAYABLE, amount__lt=0,
                                       transaction__kind__in=EARNING_KINDS,
                                       transaction__payout_transfer__isnull=True,
                                       transaction__reversed_by__isnull=True)
                .select_related("transaction", "account"))
    rows = [Transfer(earning=p.transaction, radiologist_id=p.account.radiologist_id,
                     organization_id=p.account.organization_id, amount_cents=-p.amount, currency=p.currency,
                     reference=p.transaction.reference,
                     idempotency_key=stripe_client.idempotency_key("transfer", p.transaction.natural_key))
            for p in earnings.iterator(chunk_size=2000)]
    # A concurrent run may add the same earning: the unique earning keeps one row.
    Transfer.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def payable_of(transfer: Transfer) -> LedgerAccount:
    return transfer.earning.postings.get(account__purpose=Purpose.READER_PAYABLE).account


def owed_by(payable: LedgerAccount) -> int:
    """What the payable owes its payee now, credit-positive (negative: the payee owes money back)."""
    return -ledger.balance(payable)


def coverable(open_transfers: list[Transfer], owed: int) -> list[Transfer]:
    """Oldest first, the open transfers that what is owed covers; the rest wait for later earnings."""
    taken = []
    for transfer in open_transfers:
        if transfer.amount_cents <= owed:
            taken.append(transfer)
            owed -= transfer.amount_cents
    return taken


def debt_reason(owed: int, currency: str) -> str:
    return (f"Owed now is {owed / 100:.2f} {currency}, below this earning: the payee owes back a reversed read "
            "already paid. Held until later earnings cover it.")


def post_paid(transfer: Transfer, *, counter_purpose: str, memo: str, details: dict,
              actor_user=None) -> JournalTransaction:
    """The earning leaves the payable: reader payable debit, Stripe clearing (or cash) credit. Once."""
    amount = transfer.amount_cents
    return ledger.post(kind=Kind.PAYOUT, natural_key=transfer.idempotency_key, currency=transfer.currency,
                       legs=[ledger.Leg(payable_of(transfer), amount),
                             ledger.Leg(ledger.account(counter_purpose, transfer.currency), -amount)],
                       reference=transfer.reference, memo=memo, actor_user=actor_user,
                       details={"earning": transfer.earning.natural_key, "read_request": transfer.reference,
                                **details})


def _confirm(transfer: Transfer, remote, account: ConnectedAccount) -> None:
    transfer.stripe_transfer_id = remote.id
    transfer.status = Transfer.Status.SENT
    # Stripe's clock, so that reconciliation can tell which payout carries it (billing.services.reconcile).
    transfer.sent_at = datetime.fromtimestamp(remote.created, tz=UTC)
    transfer.connected_account = account
    transfer.last_error = transfer.held_reason = ""
    transfer.posted = post_paid(transfer, counter_purpose=Purpose.STRIPE_CLEARING,
                                memo=f"Transfer {remote.id} to {account.stripe_account_id}",
                                details={"transfer": remote.id, "destination": account.stripe_account_id})
    transfer.save()


def _hold(transfer: Transfer, reason: str, account: ConnectedAccount | None) -> None:
    transfer.status, transfer.held_reason, transfer.connected_account = Transfer.Status.HELD, reason, account
    transfer.save(update_fields=["status", "held_reason", "connected_account", "updated_at"])


@transaction.atomic
def transfer_send(transfer_id: int) -> Transfer | None:
    """Send one open transfer (None: another worker has it, or it is no longer open)."""
    transfer = (Transfer.objects.select_for_update(skip_locked=True, of=("self",)).select_related("earning")
                .filter(pk=transfer_id, status__in=OPEN).first())
    if transfer is None:
        return None
    payee = {"radiologist_id": transfer.radiologist_id} if transfer.radiologist_id else {
        "organization_id": transfer.organization_id}
    account = ConnectedAccount.objects.filter(**payee).first()
    if account is None:
        _hold(transfer, "The payee has no Stripe account yet.", None)
        return transfer
    if not account.payouts_enabled:
        _hold(transfer, "Payouts are not enabled on the payee's Stripe account yet.", account)
        return transfer
    # The payable row locked: one payee's transfers are sent one at a time against what it owes.
    payable = LedgerAccount.objects.select_for_update().get(pk=payable_of(transfer).pk)
    owed = owed_by(payable)
    if transfer.amount_cents > owed:
        _hold(transfer, debt_reason(owed, transfer.currency), account)
        return transfer
    transfer.attempts += 1
    transfer.last_attempt_at = timezone.now()
    try:
        remote = stripe_client.client().v1.transfers.create(
            {"amount": transfer.amount_cents, "currency": transfer.currency.lower(),
             "destination": account.stripe_account_id, "transfer_group": transfer.reference,
             "metadata": {"readroom_transfer": str(transfer.public_id), "earning": transfer.earning.natural_key}},
            {"idempotency_key": transfer.idempotency_key})
    except stripe.StripeError as error:
        # Left pending: the next run asks again with the same key (never a second transfer).
        transfer.status = Transfer.Status.PENDING
        transfer.last_error = f"{type(error).__name__}: {error.user_message or error}"[:500]
        transfer.save(update_fields=["status", "attempts", "last_attempt_at", "last_error", "updated_at"])
        if getattr(error, "code", None) == "insufficient_capabilities_for_transfer":
            _hold(transfer, "Stripe refuses transfers to this account (its onboarding is not complete).", account)
        return transfer
    _confirm(transfer, remote, account)
    return transfer


def transfers_run() -> dict[str, int]:
    """The hourly run: add rows for new earnings, then (Stripe on) send every open transfer."""
    counts = Counter({"discovered": transfers_discover()})
    if not stripe_client.enabled():
        return dict(counts)  # Stripe off: finance pays from the payout export (billing.services.payouts)
    for transfer_id in Transfer.objects.filter(status__in=OPEN).order_by("id").values_list("pk", flat=True):
        sent = transfer_send(transfer_id)
        counts[sent.status if sent is not None else "skipped"] += 1
    return dict(counts)


@transaction.atomic
def transfer_refresh(*, stripe_transfer_id: str) -> Transfer | None:
    """Re-read a transfer from Stripe (``transfer.created``/``transfer.reversed``, in any order).

    One Stripe made whose answer we lost is confirmed and posted; a reversed one is marked and its
    amount posted back to the payee's payable (owed again; finance decides what follows).
    """
    remote = stripe_client.client().v1.transfers.retrieve(stripe_transfer_id)
    ours = (remote.to_dict().get("metadata") or {}).get("readroom_transfer")
    transfer = Transfer.objects.select_for_update(of=("self",)).select_related("earning").filter(
        stripe_transfer_id=stripe_transfer_id).first()
    if transfer is None and ours:
        transfer = Transfer.objects.select_for_update(of=("self",)).select_related("earning").filter(
            public_id=ours).first()
    if transfer is None:
        return None
    if transfer.status in OPEN:
        account = ConnectedAccount.objects.get(stripe_account_id=remote.destination)
        _confirm(transfer, remote, account)
    reversed_cents = int(remote.to_dict().get("amount_reversed") or 0)
    if reversed_cents and transfer.status == Transfer.Status.SENT:
        ledger.post(kind=Kind.PAYOUT_REVERSED, natural_key=f"transfer_reversed:{transfer.earning.natural_key}",
                    currency=transfer.currency,
                    legs=[ledger.Leg(ledger.account(Purpose.STRIPE_CLEARING, transfer.currency), reversed_cents),
                          ledger.Leg(payable_of(transfer), -reversed_cents)],
                    reference=transfer.reference, memo=f"Transfer {remote.id} reversed",
                    details={"transfer": remote.id, "read_request": transfer.reference})
        transfer.status = Transfer.Status.REVERSED
        transfer.save(update_fields=["status", "updated_at"])
    return transfer
