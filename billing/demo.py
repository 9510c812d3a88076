"""The demo world's money (issue 15, point 7), called by ``load_demo`` after the reporting demo.

Through the real services: two active contracts (Lakeside with Night Hawk Radiology, with a STAT
service level and its credit; Bayview with Atlantic Teleradiology Partners), and one proposed by
Summit that awaits Night Hawk's acceptance. The signed demo reads were posted to the ledger when
their reports were signed; this month's invoices are drafted for every center with something owed,
and of those the first (by name) is issued and the second issued and recorded as paid. Payouts both ways:
the first reader owed (by name) is paid by hand, as finance does with Stripe off (the embedded default);
then, through the fake Stripe, one reader's earnings are transferred and paid out and his payout reconciled
with one difference, and another's are held while her onboarding is unfinished (billing.demo_stripe).

Idempotent: contracts are found by (center, name); invoices by center and month (an issued or paid
one is left as it is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from accounts import policy
from accounts.models import Organization, RadiologistProfile, Role, User
from billing.demo_stripe import STRIPE_PAYEES, load_demo_stripe
from billing.models import Contract, Invoice, LedgerAccount, ManualPayout
from billing.services import connect, contracts, invoices, payouts

# (center, group, name, fee basis points, cancellation fee, rates, service levels, state)
CONTRACTS = [
    ("lakeside", "nighthawk", "Lakeside nights and weekends with Night Hawk", 1200, 1500,
     [("CT", "stat", "night", 4200), ("CT", "stat", "weekend", 4400), ("CT", "routine", "night", 3800),
      ("MR", "routine", "night", 5200)],
     [("stat", 45, 500), ("urgent", 180, 200)], Contract.Status.ACTIVE),
    ("bayview", "atlantic", "Bayview overflow with Atlantic Teleradiology", 1500, 0,
     [("CT", "routine", "day", 3300), ("DX", "routine", "day", 900)], [], Contract.Status.ACTIVE),
    ("summit", "nighthawk", "Summit MRI nights (proposed)", 1500, 1000,
     [("MR", "routine", "night", 5000)], [("routine", 720, 300)], Contract.Status.PROPOSED),
]


@dataclass
class BillingDemoReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    lines: list[str] = field(default_factory=list)


def _member_with(org: Organization | None, role: str) -> User | None:
    """The first active member with ``role`` (roles are a JSON list: read in Python, SQLite has no contains)."""
    if org is None:
        return None
    return next((m.user for m in org.memberships.filter(is_active=True).select_related("user").order_by("id")
                 if role in m.roles), None)


def _contract(spec, orgs: dict[str, Organization], report: BillingDemoReport) -> None:
    center_slug, group_slug, name, fee, cancellation, rates, levels, state = spec
    center, group = orgs.get(center_slug), orgs.get(group_slug)
    if center is None or group is None:
        return
    if Contract.objects.filter(center=center, name=name).exists():
        report.unchanged += 1
        return
    center_admin, group_admin = _member_with(center, Role.ADMIN), _member_with(group, Role.ADMIN)
    with transaction.atomic():
        contract = contracts.contract_draft(
            actor=policy.actor_for_user(center_admin), center=center,
            terms=contracts.ContractTerms(name=name, starts_on=date(2026, 1, 1), group=group, fee_basis_points=fee,
                                          cancellation_fee_cents=cancellation, rates=rates, service_levels=levels))
        contracts.contract_propose(actor=policy.actor_for_user(center_admin), contract=contract)
        contracts.contract_accept(actor=policy.actor_for_user(center_admin), contract=contract)
        if state == Contract.Status.ACTIVE:
            contracts.contract_accept(actor=policy.actor_for_user(group_admin), contract=contract)
    report.created += 1
    report.lines.append(f"{center.name} – {group.name}: {contract.name} ({contract.get_status_display().lower()})")


def _invoices(orgs: dict[str, Organization], report: BillingDemoReport) -> None:
    """This month's invoice for every center with something owed: the first (by name) is issued, the
    second issued and paid, the others stay drafts."""
    finance = _member_with(Organization.objects.filter(kind=Organization.Kind.PLATFORM).first(), Role.FINANCE)
    if finance is None:
        return
    actor = policy.actor_for_user(finance)
    owed = []
    for center in sorted(orgs.values(), key=lambda org: org.name):
        if center.kind != Organization.Kind.IMAGING_CENTER or not LedgerAccount.objects.filter(
                purpose=LedgerAccount.Purpose.CENTER_RECEIVABLE, organization=center).exists():
            continue
        today = timezone.localdate(timezone=ZoneInfo(center.time_zone))
        invoice = invoices.invoice_generate(center=center, year=today.year, month=today.month, actor=actor)
        if invoice.lines.exists():
            owed.append(invoice)
    for index, invoice in enumerate(owed[:2]):
        if invoice.status == Invoice.Status.DRAFT:
            invoices.invoice_issue(actor=actor, invoice=invoice)
            report.updated += 1
        if index == 1 and invoice.status == Invoice.Status.ISSUED:
            invoices.invoice_mark_paid(actor=actor, invoice=invoice, reference="DEMO-WIRE-0001")
    for invoice in owed:
        report.lines.append(f"{invoice.center.name}: invoice {invoice.number or 'draft'} "
                            f"({invoice.get_status_display().lower()}, {invoice.lines.count()} line(s))")


def _payout(report: BillingDemoReport) -> None:
    """With Stripe off (the embedded default) finance pays by bank transfer: the first payee owed (by name, leaving
    out the two the Stripe demo pays) is paid by hand, so the Payouts page shows both ways."""
    finance = _member_with(Organization.objects.filter(kind=Organization.Kind.PLATFORM).first(), Role.FINANCE)
    if finance is None or ManualPayout.objects.filter(reference="DEMO-PAYOUT-0001").exists():
        return
    actor = policy.actor_for_user(finance)
    as_of = timezone.now()
    through_stripe = {str(public_id) for public_id in RadiologistProfile.objects.filter(
        user__email__in=STRIPE_PAYEES).values_list("public_id", flat=True)}
    owed = sorted((row for row in payouts.payouts_owed(actor=actor, as_of=as_of) if row.payee_id not in through_stripe),
                  key=lambda row: row.payee)
    if not owed:
        return
    first = owed[0]
    payee = (connect.Payee(radiologist=RadiologistProfile.objects.get(public_id=first.payee_id))
             if first.payee_type == "radiologist" else
             connect.Payee(organization=Organization.objects.get(public_id=first.payee_id)))
    payouts.payout_mark_paid(actor=actor, payee=payee, currency=first.currency, amount_cents=first.amount_cents,
                             reference="DEMO-PAYOUT-0001", as_of=as_of)
    report.created += 1
    report.lines.append(f"{first.payee}: paid {first.amount_cents} {first.currency} by hand (DEMO-PAYOUT-0001)")


def load_demo_billing(orgs: dict[str, Organization], *, profile: str = "full") -> BillingDemoReport:
    report = BillingDemoReport()
    for spec in CONTRACTS:
        _contract(spec, orgs, report)
    _invoices(orgs, report)
    _payout(report)
    load_demo_stripe(report)
    return report
