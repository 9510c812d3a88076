"""Posting to the ledger: one function that writes a balanced transaction once per natural key, and the
posting rules built on it (read signed, cancellation fee, service-level credit, adjustment, reversal).

The same rules are held by PostgreSQL at commit (migration 0002); checking them here first gives a
clear error naming the field instead of a failed commit, and keeps SQLite honest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile
from billing.models import JournalTransaction, LedgerAccount, Posting, Transfer
from core.errors import ApplicationError

Purpose = LedgerAccount.Purpose
Kind = JournalTransaction.Kind


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: int  # debit > 0, credit < 0


def _err(field: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(field, message, code="invalid_posting")


def account(purpose: str, currency: str, *, organization: Organization | None = None,
            radiologist: RadiologistProfile | None = None) -> LedgerAccount:
    """The ledger account of ``purpose`` for an owner (none: the platform's own), created on first use."""
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise _err("currency", f"{currency!r} is not an ISO 4217 currency code.")
    found, _ = LedgerAccount.objects.get_or_create(purpose=purpose, currency=currency, organization=organization,
                                                   radiologist=radiologist)
    return found


def check_legs(currency: str, legs: Sequence[Leg]) -> None:
    """What PostgreSQL checks at commit, checked first: ≥ 2 legs, whole non-zero amounts, one currency, sum 0."""
    if len(legs) < 2:
        raise _err("postings", "A transaction needs at least two postings.")
    for index, leg in enumerate(legs):
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool):
            raise _err(f"postings[{index}].amount", "Amounts are whole minor units (e.g. cents).")
        if leg.amount == 0:
            raise _err(f"postings[{index}].amount", "A posting of zero says nothing; leave it out.")
        if leg.account.currency != currency:
            raise _err(f"postings[{index}].currency",
                       f"The account is in {leg.account.currency}, the transaction in {currency}.")
    if sum(leg.amount for leg in legs) != 0:
        raise _err("postings", f"The postings sum to {sum(leg.amount for leg in legs)}, not zero.")


def post(*, kind: str, natural_key: str, currency: str, legs: Sequence[Leg], reference: str = "", memo: str = "",
         reason: str = "", actor_user=None, reverses: JournalTransaction | None = None,
         details: dict | None = None) -> JournalTransaction:
    """Write the transaction once: a second call with the same natural key returns the first one unchanged."""
    existing = JournalTransaction.objects.filter(natural_key=natural_key).first()
    if existing is not None:
        return existing
    check_legs(currency, legs)
    try:
        with transaction.atomic():
            entry = JournalTransaction.objects.create(
                natural_key=natural_key, kind=kind, currency=currency, reference=reference, memo=memo[:300],
                reason=reason[:500], created_by=actor_user, reverses=reverses, created_at=timezone.now(),
                details=details or {})
            Posting.objects.bulk_create([Posting(transaction=entry, account=leg.account, amount=leg.amount,
                                                 currency=currency) for leg in legs])
    except IntegrityError:
        # Another worker posted the same natural key first: theirs is the one.
        found = JournalTransaction.objects.filter(natural_key=natural_key).first()
        if found is None:
            raise
        return found
    return entry


def balance(ledger_account: LedgerAccount) -> int:
    """The sum of the account's postings (debit-positive)."""
    return Posting.objects.filter(account=ledger_account).aggregate(total=Sum("amount"))["total"] or 0


# --- posting rules --------------------------------------------------------------------------------

def fee_cents(gross_cents: int, fee_basis_points: int) -> int:
    """The platform's fee on a read, rounded half up to the minor unit (never more than the gross)."""
    if gross_cents < 0 or not 0 <= fee_basis_points <= 10_000:
        raise _err("fee_basis_points", "The fee is between 0 and 100 % of a non-negative amount.")
    return min(gross_cents, (gross_cents * fee_basis_points + 5_000) // 10_000)


def payee_account(currency: str, *, group: Organization | None, radiologist: RadiologistProfile | None):
    """Earnings go to the contracted group when the read came through a group's contract, else the reader."""
    if group is not None:
        return account(Purpose.READER_PAYABLE, currency, organization=group)
    return account(Purpose.READER_PAYABLE, currency, radiologist=radiologist)


def post_read_signed(*, reference: str, center: Organization, radiologist: RadiologistProfile,
                     group: Organization | None, gross_cents: int, fee_basis_points: int,
                     currency: str, details: dict | None = None) -> JournalTransaction:
    """A signed read: the center owes the quote, the reader (or their group) earns it minus the fee,
    the platform earns the fee. Once per read request."""
    if gross_cents <= 0:
        raise _err("gross_cents", "A read is posted for a positive amount.")
    fee = fee_cents(gross_cents, fee_basis_points)
    legs = [Leg(account(Purpose.CENTER_RECEIVABLE, currency, organization=center), gross_cents),
            Leg(payee_account(currency, group=group, radiologist=radiologist), -(gross_cents - fee)),
            Leg(account(Purpose.PLATFORM_REVENUE, currency), -fee)]
    legs = [leg for leg in legs if leg.amount]  # a 0 % or 100 % fee leaves one side out
    return post(kind=Kind.READ_SIGNED, natural_key=f"read_signed:{reference}", currency=currency, legs=legs,
                reference=reference, memo=f"Read {reference}: gross {gross_cents}, fee {fee}",
                details={**(details or {}), "gross": gross_cents, "fee": fee})


def post_cancellation_fee(*, reference: str, center: Organization, radiologist: RadiologistProfile,
                          group: Organization | None, fee_cents_due: int, currency: str,
                          details: dict | None = None) -> JournalTransaction | None:
    """A read cancelled after it was claimed: the contract's cancellation fee goes to the reader."""
    if fee_cents_due <= 0:
        return None
    legs = [Leg(account(Purpose.CENTER_RECEIVABLE, currency, organization=center), fee_cents_due),
            Leg(payee_account(currency, group=group, radiologist=radiologist), -fee_cents_due)]
    return post(kind=Kind.CANCELLATION_FEE, natural_key=f"cancellation_fee:{reference}", currency=currency,
                legs=legs, reference=reference, memo=f"Cancellation fee on read {reference}", details=details)


def post_sla_credit(*, reference: str, center: Organization, credit_cents: int,
                    currency: str, details: dict | None = None) -> JournalTransaction | None:
    """A missed service level: the contract's credit reduces what the center owes (the platform bears it)."""
    if credit_cents <= 0:
        return None
    legs = [Leg(account(Purpose.SERVICE_CREDITS, currency), credit_cents),
            Leg(account(Purpose.CENTER_RECEIVABLE, currency, organization=center), -credit_cents)]
    return post(kind=Kind.SLA_CREDIT, natural_key=f"sla_credit:{reference}", currency=currency, legs=legs,
                reference=reference, memo=f"Service-level credit on read {reference}", details=details)


def post_adjustment(*, actor_user, natural_key: str, currency: str, legs: Sequence[Leg], reason: str,
                    reference: str = "", request=None) -> JournalTransaction:
    """A finance adjustment: needs a reason, and is audited."""
    if not reason.strip():
        raise _err("reason", "Say why this adjustment is made.")
    with transaction.atomic():
        entry = post(kind=Kind.ADJUSTMENT, natural_key=f"adjustment:{natural_key}", currency=currency, legs=legs,
                     reference=reference, reason=reason.strip(), actor_user=actor_user)
        audit_record(action="ledger.adjustment", actor=actor_user, request=request,
                     object_type="billing.journaltransaction", object_id=str(entry.pk), reason=reason.strip()[:500],
                     extra={"natural_key": entry.natural_key, "currency": currency,
                            "legs": [[leg.account.pk, leg.amount] for leg in legs]})
    return entry


def reverse(*, entry: JournalTransaction, reason: str, actor_user=None, request=None) -> JournalTransaction:
    """Undo a transaction by its mirror image (the original stays). Once per transaction.

    A reversed earning whose transfer is still open (pending or held: nothing sent) is no longer owed, so
    its transfer row goes too; one already paid stays paid (the payable then shows what the payee owes back).
    Found by the ledger's state machine: payouts by hand paid reversed earnings, above the payable balance."""
    if not reason.strip():
        raise _err("reason", "Say why this transaction is reversed.")
    if entry.kind == Kind.REVERSAL:
        raise _err("entry", "A reversal is not reversed; post a new transaction instead.")
    legs = [Leg(p.account, -p.amount) for p in entry.postings.select_related("account")]
    with transaction.atomic():
        mirror = post(kind=Kind.REVERSAL, natural_key=f"reversal:{entry.natural_key}", currency=entry.currency,
                      legs=legs, reference=entry.reference, reason=reason.strip(), actor_user=actor_user,
                      reverses=entry, memo=f"Reverses {entry.natural_key}")
        # Locked first: a transfer being sent right now is re-checked after its sender commits (then not open).
        still_open = (Transfer.Status.PENDING, Transfer.Status.HELD)
        locked = list(Transfer.objects.select_for_update().filter(earning=entry, status__in=still_open)
                      .values_list("pk", flat=True))
        Transfer.objects.filter(pk__in=locked, status__in=still_open).delete()
        audit_record(action="ledger.reversal", actor=actor_user, request=request,
                     object_type="billing.journaltransaction", object_id=str(mirror.pk), reason=reason.strip()[:500],
                     extra={"reverses": entry.natural_key})
    return mirror
