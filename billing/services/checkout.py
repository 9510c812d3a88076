"""Card payments through Stripe Checkout: one charge per thing, settled once, refunded in full.

``checkout_start`` → the payer pays on Stripe's hosted page → ``checkout_settle``, from the webhook
(``checkout.session.completed``) or from the payer's return, whichever comes first (the other finds the
payment paid and does nothing). Settling re-reads the session from Stripe, posts the prepayment (Stripe
clearing against the payer's receivable: the read's later posting debits that receivable, so it nets to
zero) and calls the hooks higher layers registered with ``on_payment_settled``; a hook answering
``"refund"`` (its order was cancelled meanwhile) gets the payment refunded.

``payment_refund`` records the intent (``refund_pending``, in the caller's transaction) and asks Stripe
after commit with one idempotency key however often it is retried; the ledger is reversed once Stripe
says the refund succeeded (at once, or by ``charge.refunded``).

Stripe off (the embedded default): the checkout URL is ReadRoom's own page, which says that no card is
taken and lets the payer confirm a *test payment* (provider "none"): same postings, same hooks; its
refund is recorded in the ledger only.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin

import stripe
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.policy import Actor
from billing import stripe_client
from billing.models import PAYMENT_PAYABLE, PAYMENT_TRANSITIONS, JournalTransaction, LedgerAccount, Payment
from billing.services import ledger, states
from core.errors import ApplicationError, NotFound
from core.money import format_money

Status = Payment.Status
Purpose = LedgerAccount.Purpose
REFUND = "refund"  # what a settled-hook answers when the thing paid for is gone
REFUND_REASON_CANCELLED = "Refunded automatically: what was paid for was cancelled before the payment settled."

# --- hooks (higher layers register at start-up; design.md, "a hook that the higher layer registered") ----

SettledHook = Callable[[Payment], str | None]
RefundedHook = Callable[[Payment], None]
_SETTLED: list[tuple[str, SettledHook]] = []
_REFUNDED: list[tuple[str, RefundedHook]] = []


def on_payment_settled(callback: SettledHook, *, prefix: str = "") -> SettledHook:
    """Call ``callback(payment)`` when a payment whose reference starts with ``prefix`` is paid, inside the
    settling transaction; it may answer ``"refund"`` (e.g. the order was cancelled meanwhile)."""
    if (prefix, callback) not in _SETTLED:
        _SETTLED.append((prefix, callback))
    return callback


def on_payment_refunded(callback: RefundedHook, *, prefix: str = "") -> RefundedHook:
    """Call ``callback(payment)`` once a payment whose reference starts with ``prefix`` is refunded."""
    if (prefix, callback) not in _REFUNDED:
        _REFUNDED.append((prefix, callback))
    return callback


def hooks_remove(callback: Callable) -> None:
    """Forget a registered callback (tests register their own)."""
    _SETTLED[:] = [hook for hook in _SETTLED if hook[1] is not callback]
    _REFUNDED[:] = [hook for hook in _REFUNDED if hook[1] is not callback]


class AlreadyPaid(ApplicationError):
    """Paying twice for one thing: refused, with the existing payment for the page to show."""

    def __init__(self, payment: Payment) -> None:
        when = timezone.localtime(payment.paid_at).strftime("%b %-d, %Y") if payment.paid_at else ""
        message = (f"This was already paid{f' on {when}' if when else ''}: "
                   f"{format_money(payment.amount_cents, payment.currency)} ({payment.get_status_display().lower()}).")
        super().__init__(message, code="already_paid", status_code=409, fields={"reference": [message]})
        self.payment = payment


def _err(field: str, message: str, *, code: str = "invalid_payment", status_code: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status_code, fields={field: [message]})


def _check_start(*, payer, reference, description, amount_cents, currency, success_url, cancel_url,
                 customer_email) -> None:
    if not isinstance(payer, Organization) or payer.pk is None:
        raise _err("payer", "The payer is an organization.")
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 100:
        raise _err("reference", "Give what is paid for (e.g. order:<uuid>), at most 100 characters.")
    if not isinstance(description, str) or not description.strip():
        raise _err("description", "Say what is paid for; the payer sees it on the payment page.")
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise _err("amount_cents", "The amount is a positive whole number of minor units (e.g. cents).")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise _err("currency", f"{currency!r} is not an ISO 4217 currency code.")
    for field, url in (("success_url", success_url), ("cancel_url", cancel_url)):
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 1900:
            raise _err(field, "Give an absolute http(s) URL.")
    if customer_email:
        try:
            EmailValidator()(customer_email)
        except ValidationError:
            raise _err("customer_email", f"{customer_email!r} is not an email address.") from None


def _stripe_failed(error: stripe.StripeError, what: str) -> ApplicationError:
    detail = f"{type(error).__name__}: {error.user_message or error}"
    return ApplicationError(f"Stripe could not {what} just now; try again in a moment.", code="stripe_error",
                            status_code=502, fields={"stripe": [detail]})


# --- starting a payment ----------------------------------------------------------------------------------

def checkout_start(*, payer: Organization, reference: str, description: str, amount_cents: int, currency: str,
                   success_url: str, cancel_url: str, customer_email: str = "") -> Payment:
    """A payment for ``reference`` with the URL of its checkout page (Stripe's, or the test-payment page
    when Stripe is off). Once per thing: an open payment comes back with the same URL; a paid one raises
    ``AlreadyPaid`` carrying it; an expired one is left behind and a new one made."""
    _check_start(payer=payer, reference=reference, description=description, amount_cents=amount_cents,
                 currency=currency, success_url=success_url, cancel_url=cancel_url, customer_email=customer_email)
    provider = Payment.Provider.STRIPE if stripe_client.enabled() else Payment.Provider.NONE
    existing = Payment.objects.exclude(status=Status.EXPIRED).filter(reference=reference).first()
    if existing is not None:
        existing = _brought_up_to_date(existing, provider)
        if existing.status != Status.EXPIRED:
            if existing.status not in PAYMENT_PAYABLE:
                raise AlreadyPaid(existing)
            if (existing.payer_id, existing.amount_cents, existing.currency) != (payer.pk, amount_cents, currency):
                raise _err("amount_cents", f"An open payment for {reference} asks "
                           f"{format_money(existing.amount_cents, existing.currency)} of another payer or amount.",
                           code="payment_mismatch", status_code=409)
            return existing
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                payer=payer, reference=reference, description=description.strip()[:300], amount_cents=amount_cents,
                currency=currency, provider=provider, customer_email=customer_email, success_url=success_url,
                cancel_url=cancel_url)
            if provider == Payment.Provider.NONE:
                payment.checkout_url = reverse("payment_test_pay", args=[payment.public_id])
            else:
                session = _session_create(payment)
                payment.stripe_checkout_session_id, payment.checkout_url = session.id, session.url
            payment.save(update_fields=["checkout_url", "stripe_checkout_session_id", "updated_at"])
    except IntegrityError:
        # Another request started a payment for the same thing first: theirs is the one.
        return checkout_start(payer=payer, reference=reference, description=description, amount_cents=amount_cents,
                              currency=currency, success_url=success_url, cancel_url=cancel_url,
                              customer_email=customer_email)
    audit_record(action="payment.started", organization_id=payer.pk, object_type="billing.payment",
                 object_id=str(payment.public_id), extra={"reference": reference, "amount_cents": amount_cents,
                                                          "currency": currency, "provider": provider})
    return payment


def _session_create(payment: Payment):
    """Stripe's hosted Checkout Session; its success URL is our return page, which settles and moves on."""
    return_url = urljoin(payment.success_url, reverse("payment_return", args=[payment.public_id]))
    metadata = {"reference": payment.reference, "readroom_payment": str(payment.public_id)}
    params = {"mode": "payment", "client_reference_id": str(payment.public_id), "metadata": metadata,
              "payment_intent_data": {"metadata": metadata},
              "line_items": [{"quantity": 1, "price_data": {
                  "currency": payment.currency.lower(), "unit_amount": payment.amount_cents,
                  "product_data": {"name": payment.description}}}],
              "success_url": f"{return_url}?session_id={{CHECKOUT_SESSION_ID}}", "cancel_url": payment.cancel_url}
    if payment.customer_email:
        params["customer_email"] = payment.customer_email
    try:
        return stripe_client.client().v1.checkout.sessions.create(
            params, {"idempotency_key": stripe_client.idempotency_key("payment", payment.public_id, "checkout")})
    except stripe.StripeError as error:
        raise _stripe_failed(error, "start the payment") from error


def _brought_up_to_date(payment: Payment, provider: str) -> Payment:
    """An open payment as it stands now: Stripe may have completed or expired its session without our
    hearing yet; a test payment left open when Stripe was switched on (or the reverse) is given up."""
    if payment.status not in PAYMENT_PAYABLE:
        return payment
    if payment.provider != provider:
        return _expire(payment, note="Given up: the installation's payment provider changed.")
    if provider == Payment.Provider.STRIPE:
        try:
            return checkout_settle(payment.stripe_checkout_session_id)
        except stripe.StripeError as error:
            raise _stripe_failed(error, "check the earlier payment") from error
    return payment


# --- settling --------------------------------------------------------------------------------------------

def checkout_settle(session_id: str) -> Payment:
    """Apply what Stripe says of the session now: paid → the payment is settled (once); expired → expired;
    still open → nothing. Called by the webhook and by the payer's return, in either order."""
    payment = Payment.objects.filter(stripe_checkout_session_id=session_id).first() if session_id else None
    if payment is None:
        raise _err("session_id", f"No payment of ReadRoom's has the checkout session {session_id!r}.",
                   code="unknown_session", status_code=404)
    if payment.status not in PAYMENT_PAYABLE:
        return payment
    session = stripe_client.client().v1.checkout.sessions.retrieve(session_id).to_dict()
    if session.get("status") == "expired":
        return _expire(payment, note="Stripe expired the checkout session.")
    if session.get("status") != "complete" or session.get("payment_status") != "paid":
        return payment
    payment_check_matches(payment, session, amount_key="amount_total", what="session")
    intent = session.get("payment_intent") or ""
    return _settle(payment, payment_intent=intent if isinstance(intent, str) else intent.get("id", ""))


def checkout_settle_intent(payment: Payment, *, intent_id: str) -> Payment:
    """A succeeded PaymentIntent, re-read and checked by the caller (``payment_check_matches``), settles its
    payment if nothing else has."""
    return _settle(payment, payment_intent=intent_id)


# How each Stripe object states its amount, then ours: a session says what it asks, an intent what it took.
_MISMATCH_WORDING = {
    "amount_total": "is for {theirs}, the payment for {ours}",
    "amount_received": "received {theirs}, the payment is for {ours}",
}


def payment_check_matches(payment: Payment, paid: dict, *, amount_key: str, what: str) -> None:
    """A Stripe session or intent (``what``) whose amount (under ``amount_key``), currency or reference differs
    from the payment's settles nothing: the mismatch is audited and refused (409)."""
    theirs = (paid.get(amount_key), str(paid.get("currency") or "").upper(),
              (paid.get("metadata") or {}).get("reference"))
    if theirs != (payment.amount_cents, payment.currency, payment.reference):
        compared = _MISMATCH_WORDING[amount_key].format(
            theirs=f"{theirs[0]} {theirs[1]} ({theirs[2]})",
            ours=f"{payment.amount_cents} {payment.currency} ({payment.reference})")
        message = f"Stripe's {what} {paid.get('id')} {compared}: it is not settled."
        audit_record(action="payment.mismatch", organization_id=payment.payer_id, object_type="billing.payment",
                     object_id=str(payment.public_id), outcome="failure", reason=message[:500])
        raise _err(amount_key, message, code="amount_mismatch", status_code=409)


def _settle(payment: Payment, *, payment_intent: str, actor: Actor | None = None) -> Payment:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in PAYMENT_PAYABLE:
            return locked  # another path (webhook, payment intent or return) came first
        states.move(locked, to=Status.PAID, table=PAYMENT_TRANSITIONS, noun="payment", actor=actor,
                    fields={"paid_at": timezone.now(), "stripe_payment_intent_id": payment_intent, "last_error": ""},
                    extra={"reference": locked.reference, "provider": locked.provider})
        ledger.post(kind=JournalTransaction.Kind.PAYMENT_RECEIVED, natural_key=f"payment:{locked.public_id}",
                    currency=locked.currency, legs=_payment_legs(locked), reference=locked.reference[:64],
                    memo=f"{locked.get_provider_display()}: {locked.description}",
                    details={"payment": str(locked.public_id), "reference": locked.reference,
                             "provider": locked.provider, "payment_intent": payment_intent})
        answers = [hook(locked) for prefix, hook in list(_SETTLED) if locked.reference.startswith(prefix)]
        if REFUND in answers:
            locked = payment_refund(payment=locked, reason=REFUND_REASON_CANCELLED)
    return locked


def _payment_legs(payment: Payment) -> list[ledger.Leg]:
    """The prepayment: money in Stripe's clearing account, the payer's receivable in credit until the read."""
    return [ledger.Leg(ledger.account(Purpose.STRIPE_CLEARING, payment.currency), payment.amount_cents),
            ledger.Leg(ledger.account(Purpose.CENTER_RECEIVABLE, payment.currency, organization=payment.payer),
                       -payment.amount_cents)]


def _expire(payment: Payment, *, note: str) -> Payment:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in PAYMENT_PAYABLE:
            return locked
        return states.move(locked, to=Status.EXPIRED, table=PAYMENT_TRANSITIONS, noun="payment", actor=None,
                           reason=note, fields={"expired_at": timezone.now()})


def checkout_confirm_test_payment(*, actor: Actor, payment: Payment) -> Payment:
    """Stripe off: the payer confirms a test payment (no card, no money): recorded as paid by provider "none",
    with the same postings and hooks as a card payment. A second confirmation changes nothing."""
    if not can_pay(actor, payment):
        raise NotFound("Payment not found.")
    if stripe_client.enabled() or payment.provider != Payment.Provider.NONE:
        raise _err("provider", "This installation takes card payments: pay on the checkout page.",
                   code="stripe_on", status_code=409)
    return _settle(payment, payment_intent="", actor=actor)


def can_pay(actor: Actor, payment: Payment) -> bool:
    """The payer: the patient whose personal space pays, or the paying organization's admins and finance."""
    from billing.policy import MONEY_ROLES

    return actor.user is not None and (actor.personal_space_id == payment.payer_id
                                       or actor.has_role(payment.payer_id, *MONEY_ROLES))


# --- refunds ---------------------------------------------------------------------------------------------

def payment_refund(*, payment: Payment, reason: str, actor: Actor | None = None) -> Payment:
    """Refund a paid payment in full, once: a refund already asked for or made comes back unchanged.

    The intent is recorded in the caller's transaction (``refund_pending``) and Stripe is asked after
    commit (a Celery task; the hourly run retries one that failed) with the payment's idempotency key.
    A test payment (Stripe off) is refunded in the ledger at once.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise _err("reason", "Say why the payment is refunded.")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status in (Status.REFUND_PENDING, Status.REFUNDED):
            return locked
        if locked.status != Status.PAID:
            raise _err("status", f"This payment is {locked.get_status_display().lower()}: nothing to refund.",
                       code="invalid_transition", status_code=409)
        fields = {"refund_reason": reason.strip()[:500], "refund_requested_at": timezone.now()}
        if locked.provider == Payment.Provider.NONE:
            return _refunded(locked, fields=fields, actor=actor)
        states.move(locked, to=Status.REFUND_PENDING, table=PAYMENT_TRANSITIONS, noun="payment", actor=actor,
                    reason=reason.strip(), fields=fields)
        from billing.tasks import send_refund  # the task module imports the services

        transaction.on_commit(lambda: send_refund.delay(locked.pk), robust=True)
    return locked


def refund_send(payment_pk: int) -> Payment | None:
    """Ask Stripe for the full refund of a ``refund_pending`` payment (idempotent: a retry is answered with
    the first refund). A failure leaves it pending with the error noted, for the next run."""
    payment = Payment.objects.filter(pk=payment_pk, status=Status.REFUND_PENDING).first()
    if payment is None or not stripe_client.enabled():  # Stripe switched off since: it waits, still pending
        return payment
    Payment.objects.filter(pk=payment.pk).update(refund_attempts=F("refund_attempts") + 1)
    try:
        remote = stripe_client.client().v1.refunds.create(
            {"payment_intent": payment.stripe_payment_intent_id, "reason": "requested_by_customer",
             "metadata": {"readroom_payment": str(payment.public_id), "reference": payment.reference}},
            {"idempotency_key": stripe_client.idempotency_key("payment", payment.public_id, "refund")})
    except stripe.StripeError as error:
        if getattr(error, "code", None) == "charge_already_refunded":  # refunded in Stripe's dashboard
            charge = (stripe_client.client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
                      .to_dict().get("latest_charge"))
            return payment_refund_confirm(charge_id=charge if isinstance(charge, str) else charge["id"])
        Payment.objects.filter(pk=payment.pk).update(last_error=f"{type(error).__name__}: {error}"[:500])
        return Payment.objects.get(pk=payment.pk)
    return _refund_apply(payment, remote.to_dict())


def _refund_apply(payment: Payment, refund: dict) -> Payment:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Status.REFUND_PENDING:
            return locked
        if refund.get("status") == "succeeded":
            return _refunded(locked, fields={"stripe_refund_id": refund["id"]})
        if refund.get("status") in ("failed", "canceled"):
            return states.move(locked, to=Status.PAID, table=PAYMENT_TRANSITIONS, noun="payment", actor=None,
                               reason=f"Stripe's refund {refund['id']} {refund['status']}",
                               fields={"stripe_refund_id": refund["id"], "last_error": f"Refund {refund['status']}"})
        locked.stripe_refund_id = refund["id"]  # pending at Stripe: charge.refunded confirms it
        locked.save(update_fields=["stripe_refund_id", "updated_at"])
        return locked


def _refunded(locked: Payment, *, fields: dict, actor: Actor | None = None) -> Payment:
    """Mark a locked payment refunded, reverse its posting and tell the hooks (once: the status guards it)."""
    states.move(locked, to=Status.REFUNDED, table=PAYMENT_TRANSITIONS, noun="payment", actor=actor,
                reason=fields.get("refund_reason") or locked.refund_reason,
                fields={"refunded_at": timezone.now(), "last_error": "", **fields})
    entry = JournalTransaction.objects.get(natural_key=f"payment:{locked.public_id}")
    ledger.post(kind=JournalTransaction.Kind.PAYMENT_REFUNDED, natural_key=f"payment_refunded:{locked.public_id}",
                currency=locked.currency, legs=[ledger.Leg(p.account, -p.amount) for p in entry.postings.all()],
                reference=locked.reference[:64], reverses=entry, reason=locked.refund_reason or "Refunded",
                memo=f"Refund of {locked.description}",
                details={"payment": str(locked.public_id), "refund": locked.stripe_refund_id})
    for prefix, hook in list(_REFUNDED):
        if locked.reference.startswith(prefix):
            hook(locked)
    return locked


def payment_refund_confirm(*, charge_id: str) -> Payment | None:
    """``charge.refunded``: re-read the charge; a fully refunded charge of ours marks its payment refunded
    (a refund made in Stripe's dashboard too). None: not a charge of ours."""
    charge = stripe_client.client().v1.charges.retrieve(charge_id).to_dict()
    intent = charge.get("payment_intent") or ""
    payment = Payment.objects.filter(stripe_payment_intent_id=intent).first() if intent else None
    if payment is None:
        return None
    if int(charge.get("amount_refunded") or 0) < payment.amount_cents:
        return payment  # a partial refund: ReadRoom refunds in full only; finance sees it in Stripe
    refunds = (charge.get("refunds") or {}).get("data") or []
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in (Status.PAID, Status.REFUND_PENDING):
            return locked
        return _refunded(locked, fields={"stripe_refund_id": refunds[-1]["id"] if refunds else locked.stripe_refund_id,
                                         "refund_reason": locked.refund_reason or "Refunded in Stripe."})


def refunds_retry() -> int:
    """The hourly run: ask Stripe again for every refund still pending (same key); how many are refunded now."""
    done = 0
    for pk in Payment.objects.filter(status=Status.REFUND_PENDING).order_by("refund_requested_at", "id") \
            .values_list("pk", flat=True):
        try:
            result = refund_send(pk)
        except stripe.StripeError:
            continue
        done += bool(result is not None and result.status == Status.REFUNDED)
    return done
