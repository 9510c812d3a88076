"""Access-matrix rows of the finance and card-payment pages (route → (kwargs builder, expected status per
principal)), and the billing objects they are probed on, built through the real services.

Contracts: either side's admins and finance (the cast's group has no admin or finance) and platform
finance; invoices: the center's admins and finance and platform finance; earnings: the radiologist's
own; the finance dashboard: platform finance alone. POST-only routes answer 405 to a GET.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts import policy
from accounts.models import Organization, User
from billing.models import ManualPayout, StripePayout
from billing.services import checkout, contracts, invoices, ledger
from tests.marketplace.helpers import make_radiologist

PRINCIPALS = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
              "platform_operations", "platform_finance", "patient"]


def _expect(ok: set[str]) -> dict:
    return {"anonymous": 302, **{p: 200 if p in ok else 404 for p in PRINCIPALS}}


def _post_only() -> dict:
    return {"anonymous": 302, **{p: 405 for p in PRINCIPALS}}


def CONTRACT(o):  # noqa: N802 - URL kwargs builders
    return {"public_id": o["contract"].public_id}


def INVOICE(o):  # noqa: N802
    return {"public_id": o["invoice"].public_id}


MONEY_PEOPLE = {"center_admin", "center_finance", "platform_finance"}

ROWS: dict = {
    "contract_list": (None, _expect(set(PRINCIPALS))),
    "contract_create": (None, _expect({"center_admin", "other_admin"})),
    "contract_detail": (CONTRACT, _expect(MONEY_PEOPLE)),
    "contract_action": (lambda o: {**CONTRACT(o), "action": "accept"}, _post_only()),
    "invoice_list": (None, _expect(set(PRINCIPALS))),
    "invoice_detail": (INVOICE, _expect(MONEY_PEOPLE)),
    "invoice_action": (lambda o: {**INVOICE(o), "action": "issue"}, _post_only()),
    "invoice_download": (lambda o: {**INVOICE(o), "fmt": "pdf"}, _expect(MONEY_PEOPLE)),
    "earnings": (None, _expect({"radiologist"})),
    "finance_dashboard": (None, _expect({"platform_finance"})),
    "payout_list": (None, _expect({"platform_finance"})),
    "payout_detail": (lambda o: {"public_id": o["stripe_payout"].public_id}, _expect({"platform_finance"})),
    "manual_payout_detail": (lambda o: {"public_id": o["manual_payout"].public_id}, _expect({"platform_finance"})),
    "payout_onboarding": (None, _post_only()),
    # Card payments: the payer's people (the probed payment is the center's; tests/billing/test_checkout*.py
    # covers a patient's). The return settles and goes on to the caller's page (302).
    "payment_return": (lambda o: {"public_id": o["payment"].public_id},
                       {"anonymous": 302, **{p: 302 if p in {"center_admin", "center_finance"} else 404
                                             for p in PRINCIPALS}}),
    "payment_test_pay": (lambda o: {"public_id": o["payment"].public_id}, _expect({"center_admin", "center_finance"})),
    "invoice_pay_card": (INVOICE, _post_only()),
    # Stripe's webhooks: POST only, for anyone (the signature decides; tests/billing/test_stripe_webhooks.py).
    "stripe_webhook": (None, {"anonymous": 405, **{p: 405 for p in PRINCIPALS}}),
}


def billing_objects(center: Organization, admin: User) -> dict:
    """A drafted contract of ``center`` with the cast's group, a draft invoice with one read on it, and a
    Stripe payout and a payment by hand (platform-wide objects: only platform finance sees them)."""
    group = Organization.objects.get(kind=Organization.Kind.RADIOLOGY_GROUP,
                                     memberships__user__email="radiologist@example.test")
    contract = contracts.contract_draft(actor=policy.actor_for_user(admin), center=center,
                                        terms=contracts.ContractTerms(name=f"{center.name} nights",
                                                                      starts_on=date(2026, 1, 1), group=group))
    reader = make_radiologist(name=f"Reader for {center.name}", regions=(center.region,))
    ledger.post_read_signed(reference=f"matrix-{center.pk}", center=center, radiologist=reader, group=None,
                            gross_cents=3500, fee_basis_points=1500, currency="USD")
    today = timezone.localdate(timezone=ZoneInfo(center.time_zone))
    invoice = invoices.invoice_generate(center=center, year=today.year, month=today.month)
    payout = StripePayout.objects.create(stripe_payout_id=f"po_matrix_{center.pk}", stripe_account_id="acct_matrix",
                                         amount_cents=2975, currency="USD", status="paid",
                                         stripe_created=timezone.now())
    finance = User.objects.filter(memberships__organization__kind=Organization.Kind.PLATFORM).first()
    manual = ManualPayout.objects.create(radiologist=reader, currency="USD", amount_cents=2975,
                                         reference=f"WIRE-{center.pk}", as_of=timezone.now(), paid_by=finance)
    payment = checkout.checkout_start(payer=center, reference=f"matrix:{center.pk}", description="Matrix probe",
                                      amount_cents=1500, currency="USD", success_url="https://readroom.test/done/",
                                      cancel_url="https://readroom.test/back/")
    return {"contract": contract, "invoice": invoice, "stripe_payout": payout, "manual_payout": manual,
            "payment": payment}
