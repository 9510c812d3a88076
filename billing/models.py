"""Money: price lists, contracts, and the double-entry ledger (the only source of balances).

Amounts are integer minor units of one ISO 4217 currency. A journal transaction is a set of
postings that sum to zero; PostgreSQL checks that at commit (a deferred constraint trigger) and
refuses any UPDATE or DELETE of a posting or a transaction (migration 0002): a mistake is corrected
by a reversing transaction with a reason. Posting rules live in ``billing.services.ledger``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization, RadiologistProfile
from core.models import TimeStampedModel

DEFAULT_FEE_BASIS_POINTS = 1500  # domain.md: a published marketplace took 15 % of each read
DEFAULT_REVIEW_PERCENT = 40  # a RADPEER review (a score and a comment, not a report) at 40 % of the read's price


class Band(models.TextChoices):
    """When a study arrives, in the center's time zone (dearest first when several apply)."""

    HOLIDAY = "holiday", "Public holiday"
    WEEKEND = "weekend", "Weekend"
    NIGHT = "night", "Night (19:00–07:00)"
    DAY = "day", "Day"


ANY_MODALITY = "*"


class PriceList(TimeStampedModel):
    """The platform's prices in one currency: modality × priority × band, in minor units."""

    currency = models.CharField(max_length=3, unique=True)
    name = models.CharField(max_length=120)
    review_percent = models.PositiveSmallIntegerField(
        default=DEFAULT_REVIEW_PERCENT, help_text="A peer review is paid this share of the read's price.")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(review_percent__lte=100), name="price_list_review_percent")]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class Price(models.Model):
    """One cell of a price list or a contract's rate card (``modality`` ``*``: every modality not listed)."""

    price_list = models.ForeignKey(PriceList, null=True, blank=True, on_delete=models.CASCADE, related_name="prices")
    contract = models.ForeignKey("Contract", null=True, blank=True, on_delete=models.CASCADE, related_name="rates")
    modality = models.CharField(max_length=8)
    priority = models.CharField(max_length=10)
    band = models.CharField(max_length=10, choices=Band.choices)
    cents = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price_list__isnull=True) ^ Q(contract__isnull=True),
                                   name="price_in_a_list_or_a_contract"),
            models.UniqueConstraint(fields=["price_list", "modality", "priority", "band"],
                                    condition=Q(price_list__isnull=False), name="price_once_per_list_cell"),
            models.UniqueConstraint(fields=["contract", "modality", "priority", "band"],
                                    condition=Q(contract__isnull=False), name="price_once_per_contract_cell"),
        ]

    def __str__(self) -> str:
        return f"{self.modality} {self.priority} {self.band}: {self.cents}"


class Contract(TimeStampedModel):
    """Terms between a center and a radiology group or an independent radiologist.

    ``draft → proposed → active → ended`` (``CONTRACT_TRANSITIONS``; ``billing.services.contracts``
    moves it): it becomes active when both sides have accepted the proposed terms.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PROPOSED = "proposed", "Proposed"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    center = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="center_contracts")
    group = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="group_contracts")
    radiologist = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="contracts")
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    fee_basis_points = models.PositiveIntegerField(default=DEFAULT_FEE_BASIS_POINTS,
                                                   help_text="The platform's fee, in hundredths of a percent.")
    cancellation_fee_cents = models.PositiveIntegerField(default=0)
    review_percent = models.PositiveSmallIntegerField(
        default=DEFAULT_REVIEW_PERCENT, help_text="A peer review (RADPEER) is paid this share of the read's rate.")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    preferred_readers = models.ManyToManyField(RadiologistProfile, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    center_accepted_at = models.DateTimeField(null=True, blank=True)
    center_accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="+")
    reader_accepted_at = models.DateTimeField(null=True, blank=True)
    reader_accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.SET_NULL, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["center", "-starts_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(group__isnull=True) ^ Q(radiologist__isnull=True),
                                   name="contract_with_a_group_or_a_radiologist"),
            models.CheckConstraint(condition=Q(fee_basis_points__lte=10_000), name="contract_fee_at_most_100pc"),
            models.CheckConstraint(condition=Q(review_percent__lte=100), name="contract_review_percent"),
            models.CheckConstraint(condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                                   name="contract_ends_after_it_starts"),
        ]
        indexes = [models.Index(fields=["center", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def reader_side(self) -> str:
        return self.group.name if self.group_id else self.radiologist.name


CONTRACT_TRANSITIONS: dict[str, frozenset[str]] = {
    Contract.Status.DRAFT: frozenset({Contract.Status.PROPOSED}),
    Contract.Status.PROPOSED: frozenset({Contract.Status.DRAFT, Contract.Status.ACTIVE}),
    Contract.Status.ACTIVE: frozenset({Contract.Status.ENDED}),
    Contract.Status.ENDED: frozenset(),
}


class ServiceLevel(models.Model):
    """A contract's promise per priority: the turnaround, and the credit owed to the center when missed."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="service_levels")
    priority = models.CharField(max_length=10)
    turnaround_minutes = models.PositiveIntegerField()
    credit_cents = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contract", "priority"], name="service_level_per_priority")]

    def __str__(self) -> str:
        return f"{self.priority}: {self.turnaround_minutes} min"


# --- the ledger -----------------------------------------------------------------------------------

class LedgerAccount(models.Model):
    """One balance: an owner (organization or radiologist, none for the platform's own) and a purpose.

    Sign convention: a posting's amount is positive for a debit, negative for a credit. Receivables
    and cash are debit-normal; payables and revenue are credit-normal.
    """

    class Purpose(models.TextChoices):
        CENTER_RECEIVABLE = "center_receivable", "Owed by the center"
        READER_PAYABLE = "reader_payable", "Owed to the reader"
        PLATFORM_REVENUE = "platform_revenue", "Platform fees"
        SERVICE_CREDITS = "service_credits", "Service-level credits given"
        STRIPE_CLEARING = "stripe_clearing", "Stripe clearing"
        CASH = "cash", "Cash"

    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="ledger_accounts")
    radiologist = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="ledger_accounts")
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [
            # Once per owner (an organization, a radiologist, or none: the platform's own), as partial unique
            # constraints rather than NULLS NOT DISTINCT, which SQLite (the embedded default) lacks.
            models.UniqueConstraint(fields=["purpose", "organization", "currency"],
                                    condition=Q(organization__isnull=False), name="ledger_account_once_per_org"),
            models.UniqueConstraint(fields=["purpose", "radiologist", "currency"],
                                    condition=Q(radiologist__isnull=False), name="ledger_account_once_per_reader"),
            models.UniqueConstraint(fields=["purpose", "currency"],
                                    condition=Q(organization__isnull=True, radiologist__isnull=True),
                                    name="ledger_account_once_for_platform"),
            models.CheckConstraint(condition=Q(organization__isnull=True) | Q(radiologist__isnull=True),
                                   name="ledger_account_one_owner"),
        ]

    def __str__(self) -> str:
        owner = self.organization or self.radiologist or "platform"
        return f"{self.get_purpose_display()} · {owner} · {self.currency}"


class JournalTransaction(models.Model):
    """A balanced set of postings, made once per natural key (a retried task finds it and stops)."""

    class Kind(models.TextChoices):
        READ_SIGNED = "read_signed", "Read signed"
        CANCELLATION_FEE = "cancellation_fee", "Cancellation fee"
        SLA_CREDIT = "sla_credit", "Service-level credit"
        ADJUSTMENT = "adjustment", "Finance adjustment"
        REVERSAL = "reversal", "Reversal"
        INVOICE_PAID = "invoice_paid", "Invoice paid"
        PAYOUT = "payout", "Earning paid out"  # Stripe transfer or manual payout (billing.services.transfers)
        PAYOUT_REVERSED = "payout_reversed", "Payout reversed"
        PAYMENT_RECEIVED = "payment_received", "Card payment received"  # billing.services.checkout
        PAYMENT_REFUNDED = "payment_refunded", "Card payment refunded"

    natural_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=64, blank=True, db_index=True,
                                 help_text="What it is about, e.g. the read request's public id.")
    memo = models.CharField(max_length=300, blank=True)
    reason = models.CharField(max_length=500, blank=True, help_text="Why (adjustments and reversals).")
    details = models.JSONField(default=dict, blank=True,
                               help_text="What invoices and statements print: date, accession, modality, reader.")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="reversed_by")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.natural_key}"


class Posting(models.Model):
    """One leg of a transaction: an amount (debit > 0, credit < 0, never 0) on one account."""

    transaction = models.ForeignKey(JournalTransaction, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="posting_not_zero")]
        indexes = [models.Index(fields=["account", "transaction"])]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.account_id}"


# --- invoices ---------------------------------------------------------------------------------------

class Invoice(TimeStampedModel):
    """What a center owes for one month (in its time zone): a line per ledger transaction on its receivable.

    ``draft → issued → paid`` or ``→ void`` (``INVOICE_TRANSITIONS``, moved by ``billing.services.invoices``).
    An issued invoice's lines never change; a void one releases its transactions for the next invoice.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ISSUED = "issued", "Issued"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    center = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(max_length=3)
    period_start = models.DateField()
    period_end = models.DateField(help_text="The last day included.")
    number = models.CharField(max_length=40, unique=True, null=True, blank=True, help_text="Given at issue.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    total_cents = models.BigIntegerField(default=0)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_reference = models.CharField(max_length=200, blank=True)
    void_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-period_start", "center", "id"]
        constraints = [models.UniqueConstraint(fields=["center", "currency", "period_start"],
                                               condition=~Q(status="void"), name="invoice_once_per_center_period")]
        indexes = [models.Index(fields=["center", "status"])]

    def __str__(self) -> str:
        return self.number or f"draft invoice {self.public_id}"


INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    Invoice.Status.DRAFT: frozenset({Invoice.Status.ISSUED, Invoice.Status.VOID}),
    Invoice.Status.ISSUED: frozenset({Invoice.Status.PAID, Invoice.Status.VOID}),
    Invoice.Status.PAID: frozenset(),
    Invoice.Status.VOID: frozenset(),
}


class InvoiceLine(models.Model):
    """One transaction on the center's receivable, as printed (a charge is positive, a credit negative)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    transaction = models.ForeignKey(JournalTransaction, on_delete=models.PROTECT, related_name="invoice_lines")
    current = models.BooleanField(default=True, help_text="False once its invoice is void.")
    kind = models.CharField(max_length=20)
    posted_at = models.DateTimeField()
    description = models.CharField(max_length=300)
    accession = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    priority = models.CharField(max_length=10, blank=True)
    reader = models.CharField(max_length=200, blank=True)
    amount_cents = models.BigIntegerField()

    class Meta:
        ordering = ["invoice", "posted_at", "id"]
        constraints = [models.UniqueConstraint(fields=["transaction"], condition=Q(current=True),
                                               name="invoice_line_once_per_transaction")]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount_cents}"


# --- Stripe Connect: connected accounts, transfers, payouts, webhook events (issue 15 items 4-6) ----
# Written by billing.services.{connect,transfers,payouts,webhooks,reconcile}; migration 0005.

class ConnectedAccount(TimeStampedModel):
    """A payee's Stripe Connect (Express) account: a radiologist's own, or a radiology group's.

    The flags mirror Stripe's account and are refreshed from Stripe (``account.updated``), never from
    an event's payload alone.
    """

    radiologist = models.OneToOneField(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="connected_account")
    organization = models.OneToOneField(Organization, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="connected_account")
    stripe_account_id = models.CharField(max_length=64, unique=True)
    country = models.CharField(max_length=2)
    email = models.EmailField(blank=True)
    payouts_enabled = models.BooleanField(default=False)
    charges_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True, help_text="Stripe's requirements.currently_due.")
    disabled_reason = models.CharField(max_length=100, blank=True)
    links_issued = models.PositiveIntegerField(default=0, help_text="Onboarding links made (part of their key).")
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(radiologist__isnull=True) ^ Q(organization__isnull=True),
                                              name="connected_account_one_payee")]

    def __str__(self) -> str:
        return self.stripe_account_id


class StripePayout(TimeStampedModel):
    """A payout from a connected account's Stripe balance to its bank, as Stripe last reported it."""

    stripe_payout_id = models.CharField(max_length=64, unique=True)
    connected_account = models.ForeignKey(ConnectedAccount, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="payouts")
    stripe_account_id = models.CharField(max_length=64, db_index=True)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20)
    failure_message = models.CharField(max_length=300, blank=True)
    arrival_date = models.DateTimeField(null=True, blank=True)
    stripe_created = models.DateTimeField()
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciliation = models.JSONField(default=dict, blank=True, help_text="The last reconciliation's report.")

    def __str__(self) -> str:
        return self.stripe_payout_id


class ManualPayout(TimeStampedModel):
    """Earnings paid outside Stripe (Stripe off): finance's bank transfer, with its reference."""

    radiologist = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="manual_payouts")
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="manual_payouts")
    currency = models.CharField(max_length=3)
    amount_cents = models.PositiveBigIntegerField()
    reference = models.CharField(max_length=200)
    as_of = models.DateTimeField(help_text="Earnings posted up to this instant (the export's) are covered.")
    paid_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(radiologist__isnull=True) ^ Q(organization__isnull=True),
                                              name="manual_payout_one_payee")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.amount_cents} {self.currency}"


class Transfer(TimeStampedModel):
    """One earning on its way to its payee: a reader-payable posting of a read, paid once.

    ``pending`` (to send) → ``sent`` (Stripe confirmed; posted) or ``paid_manually`` (finance, Stripe
    off); ``held`` while the payee has no connected account with payouts enabled; ``reversed`` when
    Stripe reports the transfer reversed. The ledger posting's natural key is
    ``transfer:<earning's natural key>`` whichever way it was paid, so an earning cannot be paid twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "To send"
        HELD = "held", "Held"
        SENT = "sent", "Sent through Stripe"
        PAID_MANUALLY = "paid_manually", "Paid by hand"
        REVERSED = "reversed", "Reversed"

    earning = models.OneToOneField(JournalTransaction, on_delete=models.PROTECT, related_name="payout_transfer")
    radiologist = models.ForeignKey(RadiologistProfile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="transfers")
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="transfers")
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=64, db_index=True, help_text="The read request (transfer_group).")
    idempotency_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    held_reason = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    connected_account = models.ForeignKey(ConnectedAccount, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="transfers")
    stripe_transfer_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    posted = models.OneToOneField(JournalTransaction, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="transfer_posted", help_text="The payable debit (transfer:<key>).")
    manual_payout = models.ForeignKey(ManualPayout, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="transfers")
    stripe_payout = models.ForeignKey(StripePayout, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="transfers", help_text="Set by reconciliation.")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(radiologist__isnull=True) ^ Q(organization__isnull=True),
                                              name="transfer_one_payee")]
        indexes = [models.Index(fields=["status", "radiologist"]), models.Index(fields=["status", "organization"])]

    def __str__(self) -> str:
        return f"{self.reference}: {self.amount_cents} {self.currency} ({self.status})"


class StripeEvent(models.Model):
    """A webhook event, stored once by its id (a replay finds it and stops), processed in Celery."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    account = models.CharField(max_length=64, blank=True, help_text="The connected account it is about, if any.")
    object_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()
    stripe_created = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [models.Index(fields=["processed_at"])]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# --- card payments through Stripe Checkout (patients' orders, centers' invoices) ---------------------
# Written by billing.services.checkout; migration 0007.

class Payment(TimeStampedModel):
    """One charge for one thing (``reference``: ``order:<uuid>``, ``invoice:<uuid>``), paid up front by card.

    ``open → paid → refunded`` (or ``paid → refund_pending → refunded`` while Stripe works), ``open →
    expired``, ``open → failed`` (a card declined; the checkout stays open, so ``failed → paid`` on a retry)
    (``PAYMENT_TRANSITIONS``, moved only by ``billing.services.checkout``/``payment_intents``). Among payments that did
    not expire a reference appears once, so a thing is never charged twice. ``provider`` "none" marks a test
    payment confirmed on an installation with Stripe off (no money moved).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for payment"
        FAILED = "failed", "Card declined: can be tried again"
        PAID = "paid", "Paid"
        REFUND_PENDING = "refund_pending", "Refund under way"
        REFUNDED = "refunded", "Refunded"
        EXPIRED = "expired", "Expired unpaid"

    class Provider(models.TextChoices):
        STRIPE = "stripe", "Stripe Checkout"
        NONE = "none", "Test payment (no card taken)"

    payer = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="payments")
    reference = models.CharField(max_length=100, help_text="What is paid for, e.g. order:<uuid>.")
    description = models.CharField(max_length=300)
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    provider = models.CharField(max_length=10, choices=Provider.choices)
    customer_email = models.EmailField(blank=True)
    success_url = models.CharField(max_length=2000, help_text="Where the payer goes once paid (the caller's page).")
    cancel_url = models.CharField(max_length=2000)
    checkout_url = models.CharField(max_length=2000, help_text="Stripe's hosted page, or ReadRoom's test-payment page.")
    stripe_checkout_session_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_refund_id = models.CharField(max_length=100, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    refund_reason = models.CharField(max_length=500, blank=True)
    refund_requested_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["reference"], condition=~Q(status="expired"),
                                    name="payment_once_per_reference"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payment_amount_positive"),
        ]
        indexes = [models.Index(fields=["reference", "status"]), models.Index(fields=["payer", "status"]),
                   models.Index(fields=["status", "refund_requested_at"])]

    def __str__(self) -> str:
        return f"{self.reference}: {self.amount_cents} {self.currency} ({self.status})"


PAYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    Payment.Status.OPEN: frozenset({Payment.Status.PAID, Payment.Status.EXPIRED, Payment.Status.FAILED}),
    # A declined card leaves Stripe's checkout session open: the payer may try again (and be declined again).
    Payment.Status.FAILED: frozenset({Payment.Status.PAID, Payment.Status.EXPIRED, Payment.Status.FAILED}),
    Payment.Status.PAID: frozenset({Payment.Status.REFUND_PENDING, Payment.Status.REFUNDED}),
    # Back to paid when Stripe refuses the refund (finance decides what follows).
    Payment.Status.REFUND_PENDING: frozenset({Payment.Status.REFUNDED, Payment.Status.PAID}),
    Payment.Status.REFUNDED: frozenset(),
    Payment.Status.EXPIRED: frozenset(),
}

# What can still be paid: waiting, or declined and waiting for another try (the session is still open).
PAYMENT_PAYABLE = frozenset({Payment.Status.OPEN, Payment.Status.FAILED})
