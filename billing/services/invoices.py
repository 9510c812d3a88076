"""Invoices to centers: one per center and month (in the center's zone), built from its receivable.

A draft collects every transaction on the center's receivable posted before the month ends and not on
another current invoice (so a late posting lands on the next one); it is rebuilt until issued.
``invoice_transition`` is the one function that changes an invoice's state (``INVOICE_TRANSITIONS``).
Marking an invoice paid posts the payment to the ledger (cash against the receivable), once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.policy import Actor
from billing import policy
from billing.models import INVOICE_TRANSITIONS, Invoice, InvoiceLine, JournalTransaction, LedgerAccount, Posting
from billing.services import ledger, states
from billing.services.pricing import currency_of
from core.errors import ApplicationError, NotFound, PermissionDenied

PAYMENT_TERMS_DAYS = 30
# Money received (and card payments refunded) settles an invoice; it is never a line of the next one.
PAYMENT_KINDS = (JournalTransaction.Kind.INVOICE_PAID, JournalTransaction.Kind.PAYMENT_RECEIVED,
                 JournalTransaction.Kind.PAYMENT_REFUNDED)
KIND_LABELS = {"read_signed": "Read", "cancellation_fee": "Cancellation fee", "sla_credit": "Service-level credit",
               "adjustment": "Adjustment", "reversal": "Reversal"}


def _err(field: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(field, message, code="invalid_invoice")


def month_bounds(center: Organization, year: int, month: int) -> tuple[date, date, datetime, datetime]:
    """First and last day of the month, and its start and end as instants, in the center's zone."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise _err("month", "Give a month between 1 and 12 of a year between 2000 and 2100.")
    zone = ZoneInfo(center.time_zone)
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    end = datetime(following.year, following.month, 1, tzinfo=zone)
    return first, following - timedelta(days=1), start, end


def _line(posting: Posting) -> InvoiceLine:
    entry = posting.transaction
    about = entry.details or {}
    label = KIND_LABELS.get(entry.kind, entry.kind)
    description = " · ".join(part for part in (label, about.get("study", ""), entry.reason) if part)
    return InvoiceLine(transaction=entry, kind=entry.kind, posted_at=entry.created_at, description=description[:300],
                       accession=about.get("accession", "")[:64], modality=about.get("modality", "")[:16],
                       priority=about.get("priority", "")[:10], reader=about.get("reader", "")[:200],
                       amount_cents=posting.amount)


@transaction.atomic
def invoice_generate(*, center: Organization, year: int, month: int, actor: Actor | None = None) -> Invoice:
    """Build (or rebuild) the center's draft invoice for the month; an issued or paid one comes back as it is."""
    if center.kind != Organization.Kind.IMAGING_CENTER:
        raise _err("center", f"{center.name} is not an imaging center.")
    first, last, _, end = month_bounds(center, year, month)
    currency = currency_of(center)
    invoice = (Invoice.objects.select_for_update().filter(center=center, currency=currency, period_start=first)
               .exclude(status=Invoice.Status.VOID).first())
    if invoice is None:
        invoice = Invoice.objects.create(center=center, currency=currency, period_start=first, period_end=last)
    if invoice.status != Invoice.Status.DRAFT:
        return invoice
    invoice.lines.all().delete()
    receivable = LedgerAccount.objects.filter(purpose=LedgerAccount.Purpose.CENTER_RECEIVABLE, organization=center,
                                              currency=currency).first()
    postings = (Posting.objects.filter(account=receivable, transaction__created_at__lt=end)
                .exclude(transaction__kind__in=PAYMENT_KINDS)
                .exclude(transaction__invoice_lines__current=True)
                .select_related("transaction").order_by("transaction__created_at", "id")) if receivable else []
    lines = [_line(p) for p in postings]
    for line in lines:
        line.invoice = invoice
    InvoiceLine.objects.bulk_create(lines, batch_size=5000)  # 11 columns: under 65,535 parameters a statement
    invoice.total_cents = sum(line.amount_cents for line in lines)
    invoice.save(update_fields=["total_cents", "updated_at"])
    audit_record(action="invoice.generated", actor=actor.user if actor else None, organization_id=center.pk,
                 object_type="billing.invoice", object_id=str(invoice.public_id),
                 extra={"lines": len(lines), "total_cents": invoice.total_cents})
    return invoice


def invoice_transition(*, invoice: Invoice, to: str, actor: Actor | None, reason: str = "",
                       fields: dict | None = None, request: HttpRequest | None = None) -> Invoice:
    """The one way an invoice changes state (``INVOICE_TRANSITIONS``)."""
    return states.move(invoice, to=to, table=INVOICE_TRANSITIONS, noun="invoice", actor=actor, reason=reason,
                       fields=fields, request=request, extra={"total_cents": invoice.total_cents})


def _finance_only(actor: Actor, invoice: Invoice) -> None:
    if not policy.is_platform_finance(actor):
        if policy.can_see_invoice(actor, invoice):
            raise PermissionDenied("Platform finance issues invoices and records their payment.")
        raise NotFound("Invoice not found.")


def invoice_issue(*, actor: Actor, invoice: Invoice, request: HttpRequest | None = None) -> Invoice:
    """Platform finance issues a draft: it gets its number and due date, and its lines are fixed."""
    _finance_only(actor, invoice)
    if not invoice.lines.exists():
        raise _err("lines", "An invoice without lines is not issued.")
    now = timezone.now()
    sequence = Invoice.objects.filter(number__isnull=False, period_start=invoice.period_start).count() + 1
    number = f"RR-{invoice.period_start:%Y%m}-{sequence:05d}"
    return invoice_transition(invoice=invoice, to=Invoice.Status.ISSUED, actor=actor, request=request,
                              fields={"number": number, "issued_at": now,
                                      "due_on": now.date() + timedelta(days=PAYMENT_TERMS_DAYS)})


@transaction.atomic
def invoice_mark_paid(*, actor: Actor, invoice: Invoice, reference: str,
                      request: HttpRequest | None = None) -> Invoice:
    """Platform finance records a payment received outside Stripe (a bank transfer), with its reference."""
    _finance_only(actor, invoice)
    reference = (reference or "").strip()
    if not reference:
        raise _err("reference", "Give the payment's reference (e.g. the bank transfer's).")
    invoice = invoice_transition(invoice=invoice, to=Invoice.Status.PAID, actor=actor, request=request,
                                 fields={"paid_at": timezone.now(), "paid_reference": reference[:200]})
    if invoice.total_cents > 0:
        receivable = ledger.account(LedgerAccount.Purpose.CENTER_RECEIVABLE, invoice.currency,
                                    organization=invoice.center)
        ledger.post(kind=JournalTransaction.Kind.INVOICE_PAID, natural_key=f"invoice_paid:{invoice.public_id}",
                    currency=invoice.currency,
                    legs=[ledger.Leg(ledger.account(LedgerAccount.Purpose.CASH, invoice.currency), invoice.total_cents),
                          ledger.Leg(receivable, -invoice.total_cents)],
                    reference=str(invoice.public_id), memo=f"Payment of invoice {invoice.number}: {reference}"[:300],
                    actor_user=actor.user)
    return invoice


@transaction.atomic
def invoice_void(*, actor: Actor, invoice: Invoice, reason: str, request: HttpRequest | None = None) -> Invoice:
    """Cancel an unpaid invoice; its transactions go on the next one."""
    _finance_only(actor, invoice)
    if not (reason or "").strip():
        raise _err("reason", "Say why the invoice is void.")
    invoice = invoice_transition(invoice=invoice, to=Invoice.Status.VOID, actor=actor, reason=reason.strip(),
                                 request=request, fields={"void_reason": reason.strip()[:500]})
    invoice.lines.update(current=False)
    return invoice


def receivable_balance(center: Organization) -> int:
    return Posting.objects.filter(account__purpose=LedgerAccount.Purpose.CENTER_RECEIVABLE,
                                  account__organization=center).aggregate(total=Sum("amount"))["total"] or 0


def invoice_generate_all(*, year: int, month: int, actor: Actor | None = None) -> list[Invoice]:
    """A draft (or the existing invoice) for every center with a receivable account (the month-end run)."""
    centers = Organization.objects.filter(kind=Organization.Kind.IMAGING_CENTER,
                                          ledger_accounts__purpose=LedgerAccount.Purpose.CENTER_RECEIVABLE).distinct()
    return [invoice_generate(center=center, year=year, month=month, actor=actor) for center in centers]
