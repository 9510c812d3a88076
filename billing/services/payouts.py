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
from django.db.models import Count, Max, Min, Sum
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile
from accounts.policy import Actor
from billing.models import ConnectedAccount, LedgerAccount, ManualPayout, Transfer
from billing.policy import is_platform_finance
from billing.services.connect import Payee
from billing.services.transfers import OPEN, post_paid, transfers_discover
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


def _finance(actor: Actor) -> None:
    if not is_platform_finance(actor):
        raise NotFound("Not found.")


def payouts_owed(*, actor: Actor, as_of: datetime) -> list[Owed]:
    """Per payee and currency: the earnings posted up to ``as_of`` not yet paid (held ones included)."""
    _finance(actor)
    transfers_discover()
    rows = (Transfer.objects.filter(status__in=OPEN, earning__created_at__lte=as_of)
            .values("radiologist", "organization", "currency")
            .annotate(n=Count("id"), total=Sum("amount_cents"), first=Min("earning__created_at"),
                      last=Max("earning__created_at"))
            .order_by("currency", "radiologist", "organization"))
    rows = list(rows)
    profiles = RadiologistProfile.objects.select_related("user").in_bulk(
        [r["radiologist"] for r in rows if r["radiologist"]])
    groups = Organization.objects.in_bulk([r["organization"] for r in rows if r["organization"]])
    accounts = {(a.radiologist_id, a.organization_id): a.stripe_account_id for a in ConnectedAccount.objects.all()}
    owed = []
    for row in rows:
        if row["radiologist"]:
            owner = profiles[row["radiologist"]]
            kind, public_id, name = "radiologist", str(owner.public_id), owner.name
        else:
            owner = groups[row["organization"]]
            kind, public_id, name = "group", str(owner.public_id), owner.name
        owed.append(Owed(kind, public_id, name, row["currency"], row["n"], row["total"], row["first"], row["last"],
                         accounts.get((row["radiologist"], row["organization"]), "")))
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
