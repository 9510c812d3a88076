"""Stripe webhook events: stored once by id, processed in Celery, safe in any order.

``event_receive`` verifies the signature (in the view, over the raw body) and stores the event; a
replay finds the stored one and changes nothing. ``event_process`` acts on it once: for every object
that has state of ours it re-reads the object from Stripe (an event may be stale, late or repeated),
so the outcome is the same whatever order the events came in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import stripe
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import stripe_client
from billing.models import ConnectedAccount, Payment, StripeEvent, StripePayout
from billing.services import checkout, connect, payment_intents, transfers
from core.errors import ApplicationError


def event_receive(event: stripe.Event) -> tuple[StripeEvent, bool]:
    """Store a verified event once (the unique event id makes a replay a no-op); True if new."""
    data = event.to_dict(for_json=True)
    obj = (data.get("data") or {}).get("object") or {}
    created = data.get("created")
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=data["id"], type=data["type"], account=data.get("account") or "",
                object_id=str(obj.get("id") or "")[:100], payload=data,
                stripe_created=datetime.fromtimestamp(created, tz=UTC) if created else None)
    except IntegrityError:
        return StripeEvent.objects.get(event_id=data["id"]), False
    return stored, True


def _account_updated(event: StripeEvent) -> str:
    account_id = event.account or event.object_id
    synced = connect.connected_account_sync(stripe_account_id=account_id)
    if synced is None:
        return f"Not an account of ours: {account_id}."
    return f"Payouts {'enabled' if synced.payouts_enabled else 'not enabled'} on {account_id}."


def _transfer(event: StripeEvent) -> str:
    found = transfers.transfer_refresh(stripe_transfer_id=event.object_id)
    if found is None:
        return f"Not a transfer of ours: {event.object_id}."
    return f"Transfer {event.object_id} is {found.status}."


def payout_refresh(*, stripe_payout_id: str, stripe_account_id: str) -> StripePayout:
    """Re-read a connected account's payout from Stripe and keep our copy current."""
    remote = stripe_client.client().v1.payouts.retrieve(stripe_payout_id, options={"stripe_account": stripe_account_id})
    arrival = remote.to_dict().get("arrival_date")
    payout, _ = StripePayout.objects.update_or_create(
        stripe_payout_id=remote.id,
        defaults={"stripe_account_id": stripe_account_id,
                  "connected_account": ConnectedAccount.objects.filter(stripe_account_id=stripe_account_id).first(),
                  "amount_cents": remote.amount, "currency": remote.currency.upper(), "status": remote.status,
                  "failure_message": (remote.to_dict().get("failure_message") or "")[:300],
                  "arrival_date": datetime.fromtimestamp(arrival, tz=UTC) if arrival else None,
                  "stripe_created": datetime.fromtimestamp(remote.created, tz=UTC)})
    return payout


def _payout(event: StripeEvent) -> str:
    if not event.account:
        return "A payout of the platform's own balance: nothing to reconcile against transfers."
    payout = payout_refresh(stripe_payout_id=event.object_id, stripe_account_id=event.account)
    if payout.status != "paid":
        return f"Payout {payout.stripe_payout_id} is {payout.status}: {payout.failure_message}"[:300]
    from billing.services.reconcile import payout_reconcile  # reconcile reads payouts refreshed here

    report = payout_reconcile(payout=payout)
    return f"Payout {payout.stripe_payout_id} paid and reconciled: {len(report.issues)} difference(s)."


def _checkout_session(event: StripeEvent) -> str:
    """``checkout.session.completed``/``expired``: re-read the session and apply it (settle once, or expire)."""
    try:
        payment = checkout.checkout_settle(event.object_id)
    except ApplicationError as refusal:  # not ours, or not what we asked for: recorded, never retried
        return f"Refused: {refusal.message}"
    return f"Payment {payment.reference} is {payment.status}."


def _refresh(event: StripeEvent, apply: Callable[[str], Payment | None], *, known_as: str, ours_as: str) -> str:
    """Re-read the event's object through ``apply`` and say what became of its payment: an object Stripe no
    longer has, or one that is not ours (``known_as``/``ours_as`` name it in the note), changes nothing."""
    try:
        payment = apply(event.object_id)
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise
        return f"Not a {known_as} Stripe knows: {event.object_id}."
    if payment is None:
        return f"Not a {ours_as} of ours: {event.object_id}."
    return f"Payment {payment.reference} is {payment.status}."


def _charge_refunded(event: StripeEvent) -> str:
    """``charge.refunded``: re-read the charge; fully refunded, its payment is marked refunded. No refusal is
    noted: the money has gone back already, so an ApplicationError (none is raised today) leaves the event open."""
    return _refresh(event, lambda charge_id: checkout.payment_refund_confirm(charge_id=charge_id),
                    known_as="charge", ours_as="charge")


def _payment_intent(event: StripeEvent) -> str:
    """``payment_intent.succeeded``/``payment_failed``: re-read the intent and apply what it says now (settle if
    the session's event has not; a decline marks the payment failed and tells the payer)."""
    try:
        return _refresh(event, payment_intents.payment_intent_apply, known_as="payment intent", ours_as="payment")
    except ApplicationError as refusal:  # not what we asked for: recorded, never retried
        return f"Refused: {refusal.message}"


def _invoice_paid(event: StripeEvent) -> str:
    """Recorded only. ReadRoom's invoices are its own (numbered, PDF, lines per read) and paid by card through
    Checkout, which settles by the session and payment-intent events; a paid *Stripe* invoice was made outside
    ReadRoom (in Stripe's dashboard), so it marks none of ours paid: finance matches it by hand."""
    obj = (event.payload.get("data") or {}).get("object") or {}
    amount = obj.get("amount_paid")
    what = f" of {amount} {str(obj.get('currency') or '').upper()}" if isinstance(amount, int) else ""
    return (f"Recorded only: Stripe invoice {event.object_id}{what} was not issued by ReadRoom (its invoices are "
            "paid through Checkout); no invoice of ours is marked paid — finance matches it by hand.")


HANDLERS: dict[str, Callable[[StripeEvent], str]] = {
    "checkout.session.completed": _checkout_session,
    "checkout.session.async_payment_succeeded": _checkout_session,
    "checkout.session.expired": _checkout_session,
    "charge.refunded": _charge_refunded,
    "payment_intent.succeeded": _payment_intent,
    "payment_intent.payment_failed": _payment_intent,
    "invoice.paid": _invoice_paid,
    "account.updated": _account_updated,
    "transfer.created": _transfer,
    "transfer.reversed": _transfer,
    "transfer.updated": _transfer,
    "payout.paid": _payout,
    "payout.failed": _payout,
    "payout.updated": _payout,
}


def event_process(event_pk: int) -> StripeEvent | None:
    """Act on a stored event once. A failure (Stripe unreachable, say) is recorded on the row, which stays
    open for the next attempt (``events_process_open``); it is never answered to Stripe as an error."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update(skip_locked=True).filter(pk=event_pk).first()
        if event is None or event.processed_at is not None:
            return event
        event.attempts += 1
        handler = HANDLERS.get(event.type)
        try:
            with transaction.atomic():
                note = handler(event) if handler is not None else f"Stored: {event.type} is not acted on."
        except (stripe.StripeError, ConnectedAccount.DoesNotExist) as error:
            event.last_error = f"{type(error).__name__}: {error}"[:500]
            event.save(update_fields=["attempts", "last_error"])
            return event
        event.note, event.processed_at, event.last_error = note[:300], timezone.now(), ""
        event.save(update_fields=["attempts", "note", "processed_at", "last_error"])
        return event


def events_process_open() -> int:
    """Process again every stored event still open (a failed attempt); returns how many are done now."""
    done = 0
    for pk in StripeEvent.objects.filter(processed_at__isnull=True).order_by("id").values_list("pk", flat=True):
        event = event_process(pk)
        done += bool(event is not None and event.processed_at is not None)
    return done
