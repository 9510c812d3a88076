"""Reconciling a connected account's payout (issue 15 item 6a): every balance transaction Stripe says the
payout carried, matched to our transfer, its ledger posting and its read request, and every difference
listed with its reason.

Reasons: ``missing`` (a transfer of ours the payout should carry and does not), ``duplicate`` (a transfer
carried twice), ``amount_differs`` (Stripe's amount is not ours: "off by one cent" and the like),
``wrong_payout`` (the transfer went to another account, or was already carried by another payout),
``unknown`` (money no transfer of ours explains), ``not_posted`` (ours, but not on the ledger) and
``payout_total`` (the payout is not the sum of what it carries). A transfer is expected in the first
payout of its account created after it was sent (connected accounts' transfers are available at once
and automatic payouts sweep the available balance).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from billing import stripe_client
from billing.models import StripePayout, Transfer

PAGE_SIZE = 100  # Stripe's largest page


@dataclass(frozen=True)
class Line:
    """A balance transaction of the payout that matches one of our transfers exactly."""

    balance_transaction: str
    transfer: str
    amount_cents: int
    read_request: str
    ledger_key: str


@dataclass(frozen=True)
class Issue:
    reason: str
    message: str
    balance_transaction: str = ""
    transfer: str = ""
    stripe_cents: int | None = None
    ledger_cents: int | None = None
    read_request: str = ""


@dataclass
class Report:
    payout: str
    account: str
    currency: str
    amount_cents: int
    matched: list[Line] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def matched_cents(self) -> int:
        return sum(line.amount_cents for line in self.matched)

    def as_dict(self) -> dict:
        return {**asdict(self), "matched_cents": self.matched_cents}


def _source_transfer(bt: dict) -> str | None:
    source = bt.get("source")
    if isinstance(source, str) or source is None:
        return None
    return source.get("source_transfer") if source.get("object") == "charge" else None


def _previous_payout_created(payout: StripePayout) -> datetime | None:
    """When the account's payout before this one was made (its transfers are carried by that one)."""
    created = int(payout.stripe_created.timestamp())
    page = stripe_client.client().v1.payouts.list({"created": {"lt": created}, "limit": 1},
                                                  {"stripe_account": payout.stripe_account_id})
    return datetime.fromtimestamp(page.data[0].created, tz=UTC) if page.data else None


def _amount_message(delta: int) -> str:
    cents = abs(delta)
    size = "one cent" if cents == 1 else f"{cents} cents"
    return f"Stripe's amount is off by {size} ({'more' if delta > 0 else 'less'} than the ledger's)."


@transaction.atomic
def payout_reconcile(*, payout: StripePayout) -> Report:
    """Match the payout's balance transactions to our transfers; store and return the report."""
    listing = stripe_client.client().v1.balance_transactions.list(
        {"payout": payout.stripe_payout_id, "limit": PAGE_SIZE, "expand": ["data.source"]},
        {"stripe_account": payout.stripe_account_id})
    rows = [bt.to_dict() for bt in listing.auto_paging_iter()]
    report = Report(payout=payout.stripe_payout_id, account=payout.stripe_account_id, currency=payout.currency,
                    amount_cents=payout.amount_cents)
    wanted = {tr for tr in (_source_transfer(bt) for bt in rows) if tr}
    ours = {t.stripe_transfer_id: t for t in Transfer.objects.filter(stripe_transfer_id__in=wanted)
            .select_related("connected_account", "posted", "stripe_payout")}
    seen: set[str] = set()
    carried: list[int] = []
    carried_cents = 0
    for bt in rows:
        if bt["type"] == "payout":
            continue  # the payout's own entry
        carried_cents += bt["amount"]
        tr = _source_transfer(bt)
        transfer = ours.get(tr) if tr else None
        if transfer is None:
            what = f"transfer {tr}" if tr else f"a {bt['type']} ({bt.get('reporting_category') or 'no category'})"
            report.issues.append(Issue("unknown", f"No transfer of ours explains {what}.", bt["id"], tr or "",
                                       bt["amount"]))
            continue
        base = {"balance_transaction": bt["id"], "transfer": tr, "stripe_cents": bt["amount"],
                "ledger_cents": transfer.amount_cents, "read_request": transfer.reference}
        if tr in seen:
            report.issues.append(Issue("duplicate", f"Transfer {tr} is carried a second time.", **base))
            continue
        seen.add(tr)
        destination = transfer.connected_account.stripe_account_id if transfer.connected_account else ""
        if destination != payout.stripe_account_id:
            report.issues.append(Issue("wrong_payout", f"Transfer {tr} went to {destination or 'no account'}, "
                                                       f"not to {payout.stripe_account_id}.", **base))
            continue
        if transfer.stripe_payout_id not in (None, payout.pk):
            report.issues.append(Issue("wrong_payout", f"Transfer {tr} was already carried by payout "
                                                       f"{transfer.stripe_payout.stripe_payout_id}.", **base))
            continue
        carried.append(transfer.pk)
        currency = bt["currency"].upper()
        if bt["amount"] != transfer.amount_cents or currency != transfer.currency:
            message = (_amount_message(bt["amount"] - transfer.amount_cents) if currency == transfer.currency
                       else f"Stripe's currency is {currency}, the ledger's {transfer.currency}.")
            report.issues.append(Issue("amount_differs", message, **base))
        elif transfer.posted is None:
            report.issues.append(Issue("not_posted", f"Transfer {tr} is not on the ledger.", **base))
        else:
            report.matched.append(Line(bt["id"], tr, bt["amount"], transfer.reference, transfer.posted.natural_key))
    if carried_cents != payout.amount_cents:
        report.issues.append(Issue("payout_total", f"The payout is {payout.amount_cents}; what it carries adds "
                                                   f"up to {carried_cents}.", stripe_cents=payout.amount_cents,
                                   ledger_cents=carried_cents))
    _missing(payout, seen, report)
    Transfer.objects.filter(pk__in=carried).update(stripe_payout=payout, updated_at=timezone.now())
    payout.reconciled_at = timezone.now()
    payout.reconciliation = report.as_dict()
    payout.save(update_fields=["reconciled_at", "reconciliation", "updated_at"])
    return report


def _missing(payout: StripePayout, seen: set[str], report: Report) -> None:
    expected = Transfer.objects.filter(connected_account__stripe_account_id=payout.stripe_account_id,
                                       status=Transfer.Status.SENT, sent_at__lte=payout.stripe_created,
                                       stripe_payout__isnull=True).exclude(stripe_transfer_id__in=seen)
    previous = _previous_payout_created(payout)
    if previous is not None:
        expected = expected.filter(sent_at__gt=previous)
    for transfer in expected.order_by("sent_at", "id"):
        report.issues.append(Issue("missing", f"Transfer {transfer.stripe_transfer_id} was sent before this payout "
                                              "and no payout carries it.", transfer=transfer.stripe_transfer_id,
                                   ledger_cents=transfer.amount_cents, read_request=transfer.reference))
