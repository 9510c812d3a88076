"""What the card-payment tests share: a patient's personal space as the payer, hooks that record their calls
(and may answer "refund", as the marketplace's will for a cancelled order), and the ledger's view."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import Organization, PatientProfile
from billing.models import JournalTransaction, LedgerAccount
from billing.services import checkout, ledger
from tests.factories import OrganizationFactory

Purpose = LedgerAccount.Purpose
# Not "order:": the marketplace registers its own hook for those (an unknown order answers "refund").
PREFIX = "test-order:"
ORDER = f"{PREFIX}6f1c0d5e-8a36-4f0e-9a53-2c1f4b7e9d10"
SUCCESS_URL = "http://testserver/orders/6f1c0d5e/"
CANCEL_URL = "http://testserver/orders/6f1c0d5e/pay/"


@pytest.fixture
def space(cast):
    """The cast's patient's personal space (the payer of their orders)."""
    org = OrganizationFactory(name="Personal space", slug="space-patient", kind=Organization.Kind.PATIENT)
    PatientProfile.objects.create(user=cast.patient, date_of_birth=date(1968, 4, 2), country="US", region="TX",
                                  space=org)
    return org


@pytest.fixture
def order_hooks():
    """Settled/refunded hooks for ``test-order:`` references; ``answer`` "refund" stands for a cancelled order."""
    calls = {"settled": [], "refunded": [], "answer": None}

    def settled(payment):
        calls["settled"].append((payment.reference, payment.status))
        return calls["answer"]

    def refunded(payment):
        calls["refunded"].append((payment.reference, payment.status))

    checkout.on_payment_settled(settled, prefix=PREFIX)
    checkout.on_payment_refunded(refunded, prefix=PREFIX)
    yield calls
    checkout.hooks_remove(settled)
    checkout.hooks_remove(refunded)


def start(payer, *, reference: str = ORDER, amount: int = 18_000, currency: str = "USD"):
    return checkout.checkout_start(payer=payer, reference=reference, description="Second opinion: CT chest",
                                   amount_cents=amount, currency=currency, success_url=SUCCESS_URL,
                                   cancel_url=CANCEL_URL, customer_email="patient@example.test")


def books(payer, currency: str = "USD") -> tuple[int, int]:
    """(Stripe clearing, the payer's receivable); every transaction is checked to sum to zero on the way."""
    for entry in JournalTransaction.objects.prefetch_related("postings"):
        assert sum(p.amount for p in entry.postings.all()) == 0, entry.natural_key
    return (ledger.balance(ledger.account(Purpose.STRIPE_CLEARING, currency)),
            ledger.balance(ledger.account(Purpose.CENTER_RECEIVABLE, currency, organization=payer)))


def kinds(reference: str) -> list[str]:
    entries = JournalTransaction.objects.filter(reference=reference[:64]).order_by("id")
    return list(entries.values_list("kind", flat=True))
