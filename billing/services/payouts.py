"""Payouts by hand (Stripe off, the embedded default): what is owed per payee as a CSV for finance's bank
transfers, and marking such a payout paid with its reference.

The ledger is the same as through Stripe: each earning paid is posted once under
``transfer:<earning's natural key>`` (reader payable debit, cash credit), so an earning paid by hand
can never be sent through Stripe as well, nor the other way round.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile
from accounts.policy import Actor
from billing.models import ConnectedAccount, LedgerAccount, ManualPayout, Posting, Transfer
from billing.policy import is_platform_finance
from billing.services.connect import Payee
from billing.services.transfers import OPEN, coverable, owed_by, payable_of, post_paid, transfers_discover
from core.errors import ApplicationError, NotFound

CSV_COLUMNS = ["payee_type", "payee_id", "payee", "currency", "earnings", "amount_cents", "amount",
               "first_posted_at", "last_posted_at", "stripe_account", "as_of"]


@dataclass(frozen=True)
class Owed:
    payee_type: str
    payee_id: str
    payee: str
    currency: str
    earnings: int
    amount_cents: int
    first_posted_at: datetime
    last_posted_at: datetime
    stripe_account: str
    held_reason: str = ""  # why Stripe transfers wait (no account, onboarding unfinished, a debt to net)


def _finance(actor: Actor) -> None:
    if not is_platform_finance(actor):
        raise NotFound("Not found.")


def _payable_balances() -> dict[tuple, int]:
    """(radiologist id, organization id, currency) → what each payable owes now, credit-positive."""
    rows = (Posting.objects.filter(account__purpose=LedgerAccount.Purpose.READER_PAYABLE)
            .values("account__radiologist", "account__organization", "account__currency")
            .annotate(total=Sum("amount")))
    return {(r["account__radiologist"], r["account__organization"], r["account__currency"]): -r["total"]
            for r in rows}


def payouts_owed(*, actor: Actor, as_of: datetime) -> list[Owed]:
    """Per payee and currency: the earnings posted up to ``as_of`` not yet paid (held ones included), as far
    as what the payee is owed covers them (a payee owing money back has it netted from later earnings)."""
    _finance(actor)
    transfers_discover()
    by_payee: dict[tuple, list[Transfer]] = {}
    for transfer in (Transfer.objects.filter(status__in=OPEN, earning__created_at__lte=as_of)
                     .only("radiologist", "organization", "currency", "amount_cents", "held_reason",
                           "earning__created_at")
                     .select_related("earning").order_by("id")):
        by_payee.setdefault((transfer.radiologist_id, transfer.organization_id, transfer.currency), []).append(transfer)
    balances = _payable_balances()
    covered = {key: coverable(rows, balances.get(key, 0)) for key, rows in by_payee.items()}
    profiles = RadiologistProfile.objects.select_related("user").in_bulk([k[0] for k in covered if k[0]])
    groups = Organization.objects.in_bulk([k[1] for k in covered if k[1]])
    accounts = {(a.radiologist_id, a.organization_id): a.stripe_account_id for a in ConnectedAccount.objects.all()}
    owed = []
    for (radiologist_id, organization_id, currency), rows in sorted(
            covered.items(), key=lambda item: (item[0][2], item[0][0] or 0, item[0][1] or 0)):
        if not rows:
            continue
        if radiologist_id:
            owner = profiles[radiologist_id]
            kind, public_id, name = "radiologist", str(owner.public_id), owner.name
        else:
            owner = groups[organization_id]
            kind, public_id, name = "group", str(owner.public_id), owner.name
        posted = [t.earning.created_at for t in rows]
        owed.append(Owed(kind, public_id, name, currency, len(rows), sum(t.amount_cents for t in rows),
                         min(posted), max(posted), accounts.get((radiologist_id, organization_id), ""),
                         next((t.held_reason for t in rows if t.held_reason), "")))
    return owed


def payouts_owed_csv(*, actor: Actor, as_of: datetime) -> str:
    """The export finance pays from (``as_of`` goes back in with the payment, so later earnings wait)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in payouts_owed(actor=actor, as_of=as_of):
        writer.writerow([row.payee_type, row.payee_id, row.payee, row.currency, row.earnings, row.amount_cents,
                         f"{row.amount_cents / 100:.2f}", row.first_posted_at.isoformat(),
                         row.last_posted_at.isoformat(), row.stripe_account, as_of.isoformat()])
    return out.getvalue()


def _err(field: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(field, message, code="invalid_payout")


@transaction.atomic
def payout_mark_paid(*, actor: Actor, payee: Payee, currency: str, amount_cents: int, reference: str,
                     as_of: datetime, request: HttpRequest | None = None) -> ManualPayout:
    """Platform finance records a bank transfer to a payee: every earning owed up to ``as_of`` is paid.

    ``amount_cents`` must be what the export said (what is owed up to ``as_of``), so a payment that does
    not cover exactly those earnings is refused rather than half-recorded.
    """
    _finance(actor)
    reference = (reference or "").strip()
    if not reference:
        raise _err("reference", "Give the payment's reference (e.g. the bank transfer's).")
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise _err("amount_cents", "Give the amount paid in whole minor units (e.g. cents), above zero.")
    if as_of > timezone.now():
        raise _err("as_of", "The export's time cannot be in the future.")
    transfers_discover()
    open_rows = list(Transfer.objects.select_for_update(of=("self",)).select_related("earning")
                     .filter(status__in=OPEN, currency=currency, earning__created_at__lte=as_of, **payee.filter())
                     .order_by("id"))
    if open_rows:
        payable = LedgerAccount.objects.select_for_update().get(pk=payable_of(open_rows[0]).pk)
        open_rows = coverable(open_rows, owed_by(payable))
    owed = sum(t.amount_cents for t in open_rows)
    if not open_rows:
        raise _err("payee", f"Nothing is owed to {payee.name} in {currency} up to {as_of.isoformat()}.")
    if owed != amount_cents:
        raise _err("amount_cents", f"{payee.name} is owed {owed} {currency} up to {as_of.isoformat()}, "
                                   f"not {amount_cents}.")
    payout = ManualPayout.objects.create(currency=currency, amount_cents=amount_cents, reference=reference[:200],
                                         as_of=as_of, paid_by=actor.user, **payee.filter())
    for transfer in open_rows:
        transfer.posted = post_paid(transfer, counter_purpose=LedgerAccount.Purpose.CASH,
                                    memo=f"Paid by hand: {reference}"[:300], actor_user=actor.user,
                                    details={"manual_payout": str(payout.public_id), "reference": reference[:200]})
        transfer.status, transfer.manual_payout, transfer.held_reason = Transfer.Status.PAID_MANUALLY, payout, ""
        transfer.save(update_fields=["posted", "status", "manual_payout", "held_reason", "updated_at"])
    audit_record(action="payout.paid_manually", actor=actor.user, request=request, object_type="billing.manualpayout",
                 object_id=str(payout.public_id), reason=reference[:500],
                 extra={"payee": payee.key, "currency": currency, "amount_cents": amount_cents,
                        "earnings": len(open_rows)})
    return payout
