"""Card payments as their PaymentIntents tell it (issue 15 item 5): ``payment_intent.succeeded`` and
``payment_intent.payment_failed`` lead to one function that re-reads the intent from Stripe and applies
what it says *now*, so a late, repeated or reordered event changes nothing that a newer one decided.

- succeeded: the payment is settled (prepayment posted, hooks called) unless ``checkout.session.completed``
  or the payer's return came first — ``checkout._settle`` settles once whoever calls.
- declined (``requires_payment_method`` with a ``last_payment_error``): the payment is marked ``failed``
  and the payer told, once per failed attempt. Stripe keeps the checkout session open, so the payer may pay
  again on the same page; a later success moves ``failed → paid``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from accounts.models import Membership, Notification, Organization, PatientProfile, User
from billing import stripe_client
from billing.models import PAYMENT_PAYABLE, PAYMENT_TRANSITIONS, Payment
from billing.policy import MONEY_ROLES
from billing.services import checkout, states
from core.links import absolute_url
from core.money import format_money

DECLINED_STATES = frozenset({"requires_payment_method", "canceled"})


def payment_intent_apply(intent_id: str) -> Payment | None:
    """Re-read the PaymentIntent and bring its payment in line: settle, mark failed, or leave it (still
    processing, or nothing new). None: not a payment of ours."""
    intent = stripe_client.client().v1.payment_intents.retrieve(intent_id).to_dict()
    payment = _payment_of(intent)
    if payment is None:
        return None
    if intent.get("status") == "succeeded":
        if payment.status in PAYMENT_PAYABLE:
            checkout.payment_check_matches(payment, intent, amount_key="amount_received", what="payment intent")
            return checkout.checkout_settle_intent(payment, intent_id=intent["id"])
        return payment
    error = intent.get("last_payment_error")
    if error and intent.get("status") in DECLINED_STATES:
        return _declined(payment, intent, error)
    return payment


def _payment_of(intent: dict) -> Payment | None:
    """Ours by the metadata our checkout put on the intent, else by an intent id we already stored."""
    public_id = (intent.get("metadata") or {}).get("readroom_payment")
    if public_id:
        try:
            found = Payment.objects.filter(public_id=public_id).first()
        except ValueError:  # metadata that is not a UUID: someone else's intent
            found = None
        if found is not None:
            return found
    return Payment.objects.filter(stripe_payment_intent_id=intent.get("id") or "-").first()


def _declined(payment: Payment, intent: dict, error: dict) -> Payment:
    """Mark a payable payment failed and tell the payer, once per failed attempt (the attempt's charge or
    code is kept in ``last_error``: the same failure seen again changes nothing)."""
    message = str(error.get("message") or "The card was declined.")
    attempt = f"{error.get('charge') or error.get('code') or intent['id']}: {message}"[:500]
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in PAYMENT_PAYABLE or locked.last_error == attempt:
            return locked
        states.move(locked, to=Payment.Status.FAILED, table=PAYMENT_TRANSITIONS, noun="payment", actor=None,
                    reason=message, fields={"last_error": attempt, "stripe_payment_intent_id": intent["id"]},
                    extra={"reference": locked.reference, "decline_code": error.get("decline_code") or ""})
        _tell_payer(locked, message)
    return locked


def _payer_people(payer: Organization) -> list[User]:
    """A patient pays from their personal space; a center through its admins and finance people."""
    if payer.kind == Organization.Kind.PATIENT:
        profile = PatientProfile.objects.filter(space=payer).select_related("user").first()
        return [profile.user] if profile is not None and profile.user.is_active else []
    return [m.user for m in Membership.objects.filter(organization=payer, is_active=True, user__is_active=True)
            .select_related("user") if set(m.roles) & MONEY_ROLES]


def _tell_payer(payment: Payment, message: str) -> None:
    """An in-app notice and an email after commit, pointing at the page the payer pays from."""
    title = f"Your payment of {format_money(payment.amount_cents, payment.currency)} did not go through"
    body = f"{payment.description}: {message} You can pay again with another card."
    url = urlsplit(payment.cancel_url).path[:300]
    people = _payer_people(payment.payer)
    Notification.objects.bulk_create([Notification(user=user, title=title[:200], body=body, url=url)
                                      for user in people])
    recipients = sorted({user.email for user in people} | ({payment.customer_email} - {""}))
    link = absolute_url(url)
    transaction.on_commit(lambda: [
        send_mail(subject=f"[ReadRoom] {title}", message=f"{body}\n\n{link}", from_email=settings.DEFAULT_FROM_EMAIL,
                  recipient_list=[address], fail_silently=True) for address in recipients])
