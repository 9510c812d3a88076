"""Every read of money, scoped to the actor (a missing scope is an error, not "everything").

- Platform finance sees every contract, invoice and the ledger's totals.
- A center's admins and finance see its contracts and invoices; a group's admins and finance its
  contracts and its earnings; a radiologist their own contracts and earnings.
- Anything else is NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncWeek

from accounts.models import Organization
from accounts.policy import Actor
from billing import policy
from billing.models import Contract, Invoice, JournalTransaction, LedgerAccount, Payment, Posting
from core.errors import NotFound

Purpose = LedgerAccount.Purpose


def _money_orgs(actor: Actor) -> list[int]:
    return [org_id for org_id, m in actor.memberships.items() if set(m.roles) & policy.MONEY_ROLES]


def contract_list(*, actor: Actor) -> QuerySet[Contract]:
    queryset = Contract.objects.select_related("center", "group", "radiologist__user")
    if policy.is_platform_finance(actor):
        return queryset
    orgs = _money_orgs(actor)
    mine = Q(center_id__in=orgs) | Q(group_id__in=orgs)
    if actor.user is not None:
        mine |= Q(radiologist__user=actor.user)
    return queryset.filter(mine)


def contract_get(*, actor: Actor, public_id) -> Contract:
    contract = contract_list(actor=actor).filter(public_id=public_id).first()
    if contract is None:
        raise NotFound("Contract not found.")
    return contract


def invoice_list(*, actor: Actor) -> QuerySet[Invoice]:
    queryset = Invoice.objects.select_related("center")
    if policy.is_platform_finance(actor):
        return queryset
    return queryset.filter(center_id__in=_money_orgs(actor))


def invoice_get(*, actor: Actor, public_id) -> Invoice:
    invoice = invoice_list(actor=actor).filter(public_id=public_id).first()
    if invoice is None:
        raise NotFound("Invoice not found.")
    return invoice


def invoice_lines(invoice: Invoice):
    return invoice.lines.order_by("posted_at", "id")


# --- earnings ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EarningsRow:
    posted_at: datetime
    kind: str
    accession: str
    modality: str
    priority: str
    study: str
    gross: int
    fee: int
    net: int  # what the reader earns (positive) or is paid out (negative)
    transfer: str = ""  # the Stripe transfer, or the transfer's state (held, pending, paid by hand)
    payout: str = ""  # the Stripe payout or the payment by hand that carried it
    held_reason: str = ""  # why a held transfer waits (no Stripe account, onboarding unfinished, a debt)


def payable_accounts(*, actor: Actor, organization: Organization | None = None) -> QuerySet[LedgerAccount]:
    """The payable accounts whose statement the actor reads: their own, or a group's they keep the money of."""
    accounts = LedgerAccount.objects.filter(purpose=Purpose.READER_PAYABLE)
    if organization is not None:
        if not (policy.is_platform_finance(actor) or organization.pk in _money_orgs(actor)):
            raise NotFound("Earnings not found.")
        return accounts.filter(organization=organization)
    if actor.user is None:
        return accounts.none()
    return accounts.filter(radiologist__user=actor.user)


def earnings(*, accounts: QuerySet[LedgerAccount], start: datetime, end: datetime) -> list[EarningsRow]:
    """Every posting on those accounts in [start, end), oldest first (one query)."""
    postings = (Posting.objects.filter(account__in=accounts, transaction__created_at__gte=start,
                                       transaction__created_at__lt=end)
                .select_related("transaction__payout_transfer__stripe_payout",
                                "transaction__payout_transfer__manual_payout")
                .order_by("transaction__created_at", "id"))
    rows = []
    for posting in postings:
        entry = posting.transaction
        about = entry.details or {}
        net = -posting.amount  # a credit to a payable is money earned
        gross = about.get("gross", net) if entry.kind == JournalTransaction.Kind.READ_SIGNED else net
        transfer = getattr(entry, "payout_transfer", None)
        rows.append(EarningsRow(posted_at=entry.created_at, kind=entry.kind,
                                accession=about.get("accession", ""), modality=about.get("modality", ""),
                                priority=about.get("priority", ""), study=about.get("study", ""),
                                gross=gross, fee=gross - net if gross >= net else 0, net=net,
                                transfer=_transfer_label(transfer), payout=_payout_label(transfer),
                                held_reason=transfer.held_reason if transfer is not None else ""))
    return rows


def _transfer_label(transfer) -> str:
    if transfer is None:
        return ""
    return transfer.stripe_transfer_id or transfer.get_status_display().lower()


def _payout_label(transfer) -> str:
    if transfer is None:
        return ""
    if transfer.stripe_payout_id:
        return transfer.stripe_payout.stripe_payout_id
    return f"by hand: {transfer.manual_payout.reference}" if transfer.manual_payout_id else ""


def owed(accounts: QuerySet[LedgerAccount]) -> int:
    """What is owed to the payee now (credit balance of the payable accounts, as a positive number)."""
    return -(Posting.objects.filter(account__in=accounts).aggregate(total=Sum("amount"))["total"] or 0)


def month_range(year: int, month: int, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    start = datetime(year, month, 1, tzinfo=tz)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return start, datetime(following.year, following.month, 1, tzinfo=tz)


# --- the finance dashboard ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Week:
    starts: date
    billed: int  # center receivables debited by reads, fees and credits
    fees: int  # platform revenue
    paid_out: int  # payables debited (transfers, manual payouts)
    outstanding: int  # receivables still owed at the week's end


def weekly(*, actor: Actor, weeks: int = 12, now: datetime) -> list[Week]:
    """The last ``weeks`` weeks of money (platform finance only): a handful of grouped queries."""
    if not policy.is_platform_finance(actor):
        raise NotFound()
    since = (now - timedelta(weeks=weeks)).date()
    since = since - timedelta(days=since.weekday())
    grouped = (Posting.objects.filter(transaction__created_at__date__gte=since)
               .annotate(week=TruncWeek("transaction__created_at"))
               .values("week", "account__purpose")
               .annotate(total=Sum("amount"), debits=Sum("amount", filter=Q(amount__gt=0))))
    by_week: dict[tuple[date, str], dict] = {(row["week"].date(), row["account__purpose"]): row for row in grouped}
    outstanding = Posting.objects.filter(account__purpose=Purpose.CENTER_RECEIVABLE,
                                         transaction__created_at__date__lt=since).aggregate(t=Sum("amount"))["t"] or 0
    result = []
    for index in range(weeks + 1):
        starts = since + timedelta(weeks=index)
        receivable = by_week.get((starts, Purpose.CENTER_RECEIVABLE), {})
        outstanding += receivable.get("total") or 0
        result.append(Week(starts=starts, billed=receivable.get("debits") or 0,
                           fees=-(by_week.get((starts, Purpose.PLATFORM_REVENUE), {}).get("total") or 0),
                           paid_out=by_week.get((starts, Purpose.READER_PAYABLE), {}).get("debits") or 0,
                           outstanding=outstanding))
    return result


def earnings_by_reader(*, actor: Actor, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Net earnings per payee account in the period (platform finance only), largest first."""
    if not policy.is_platform_finance(actor):
        raise NotFound()
    rows = (Posting.objects.filter(account__purpose=Purpose.READER_PAYABLE, amount__lt=0,
                                   transaction__created_at__gte=start, transaction__created_at__lt=end)
            .values("account__radiologist__display_name", "account__radiologist__user__full_name",
                    "account__organization__name")
            .annotate(total=Sum("amount")).order_by("total"))
    return [(r["account__organization__name"] or r["account__radiologist__display_name"]
             or r["account__radiologist__user__full_name"] or "—", -r["total"]) for r in rows]


def payment_get(*, actor: Actor, public_id) -> Payment:
    """A payment its payer may act on (the patient of the paying personal space, the payer's money people)."""
    from billing.services.checkout import can_pay

    payment = Payment.objects.select_related("payer").filter(public_id=public_id).first()
    if payment is None or not can_pay(actor, payment):
        raise NotFound("Payment not found.")
    return payment


def payment_for_reference(*, payer: Organization, reference: str) -> Payment | None:
    """The payer's payment for a thing that did not expire (paid, open or refunded), if any."""
    return Payment.objects.filter(payer=payer, reference=reference).exclude(status=Payment.Status.EXPIRED).first()
