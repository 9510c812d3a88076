"""A Hypothesis state machine over the ledger's posting rules, shared by the test (short runs) and
bench/ledger_stateful.py (≥ 10,000 steps).

It posts reads (retried: the same natural key again, even with other figures), cancellation fees,
service-level credits, finance adjustments and reversals; and, through the fake Stripe
(billing/fake_stripe/), card payments paid or declined, refunds, transfers of earnings, Stripe
payouts and payouts by hand, an account's payouts switched on and off, and the webhooks all of that
raises, delivered signed in any order and replayed (``deliver`` picks any queued event; ``replay`` keeps it
queued to come again). It keeps its own model of every account's balance. After every step: each
transaction balances (also checked by PostgreSQL's deferred trigger, forced to run now), each balance
equals both the model's and the sum of its postings, no read, payment or earning is posted twice, a
reversal happens at most once per transaction, and no payout is above what the payee was owed (an
earning reversed before it was paid is never paid).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from accounts.policy import actor_for_user
from billing import stripe_client
from billing.models import JournalTransaction, LedgerAccount, Payment, Posting, Transfer
from billing.services import checkout, connect, ledger, payouts, transfers, webhooks
from core.errors import ApplicationError

Purpose = LedgerAccount.Purpose
Kind = JournalTransaction.Kind
REFERENCES = st.sampled_from([f"r{i}" for i in range(40)])  # a small pool: retries happen often
SETTLED = (Payment.Status.PAID, Payment.Status.REFUND_PENDING, Payment.Status.REFUNDED)


def stripe_world(fake, readers) -> list[str]:
    """Connected accounts: the first reader's with payouts enabled, the second's not (yet), the third has
    none (paid by hand). Returns their Stripe ids (the third's empty)."""
    accounts = []
    for reader in readers[:2]:
        made = connect.connected_account_create(actor=actor_for_user(reader.user),
                                                payee=connect.Payee(radiologist=reader))
        accounts.append(made.stripe_account_id)
    fake.set_account(accounts[0])
    connect.connected_account_sync(stripe_account_id=accounts[0])
    fake.take_events()
    return [*accounts, ""]


class LedgerMachine(RuleBasedStateMachine):
    """Needs ``LedgerMachine.world = (centers, readers, finance_user, fake_stripe, stripe_accounts)`` set
    before it runs (``stripe_world`` makes the accounts; Stripe's settings point at the fake)."""

    world: tuple = ()

    def __init__(self):
        super().__init__()
        # Each example in a savepoint rolled back at its end: examples are independent, so Hypothesis's replay
        # of one (to shrink it) draws the same steps (left over open transfers made replays flaky).
        self.savepoint = transaction.savepoint()
        self.centers, self.readers, self.finance, self.fake, self.accounts = self.world
        self.fake.take_events()  # what an earlier example left queued is not this one's
        self.queue: list[dict] = []  # webhook events raised and not delivered yet, in any order
        self.payments: list[Payment] = []
        self.expected: dict[int, int] = defaultdict(int)
        # Invariants read this example's transactions only (ids above the last one before it), so that a
        # long run stays linear; the balance trigger and the model hold the rest.
        self.before = JournalTransaction.objects.order_by("-id").values_list("id", flat=True).first() or 0
        # The natural keys of this example are unique to it: the last id alone repeats after an example that
        # posted nothing (a card payment whose events were never delivered), and its payment's reference with it.
        self.run = f"{self.before}.{uuid.uuid4().hex[:6]}"
        self.posted_reads: set[str] = set()
        self.entries: list[JournalTransaction] = []
        self.steps = 0

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def _apply(self, entry: JournalTransaction, fresh: bool) -> None:
        if fresh:
            self.entries.append(entry)
            for posting in entry.postings.all():
                self.expected[posting.account_id] += posting.amount

    def _fresh(self, natural_key: str) -> bool:
        return not JournalTransaction.objects.filter(natural_key=natural_key).exists()

    @rule(reference=REFERENCES, center=st.integers(0, 1), reader=st.integers(0, 2),
          gross=st.integers(1, 500_000), fee=st.integers(0, 10_000))
    def post_read(self, reference, center, reader, gross, fee):
        key = f"{self.run}-{reference}"
        fresh = self._fresh(f"read_signed:{key}")
        entry = ledger.post_read_signed(reference=key, center=self.centers[center], radiologist=self.readers[reader],
                                        group=None, gross_cents=gross, fee_basis_points=fee, currency="USD")
        self._apply(entry, fresh)
        if fresh:
            assert key not in self.posted_reads
            self.posted_reads.add(key)
        self.steps += 1

    @rule(reference=REFERENCES, center=st.integers(0, 1), reader=st.integers(0, 2), fee=st.integers(0, 20_000))
    def cancellation_fee(self, reference, center, reader, fee):
        key = f"{self.run}-{reference}"
        fresh = self._fresh(f"cancellation_fee:{key}")
        entry = ledger.post_cancellation_fee(reference=key, center=self.centers[center],
                                             radiologist=self.readers[reader], group=None, fee_cents_due=fee,
                                             currency="USD")
        if entry is not None:
            self._apply(entry, fresh)
        self.steps += 1

    @rule(reference=REFERENCES, center=st.integers(0, 1), credit=st.integers(0, 5_000))
    def sla_credit(self, reference, center, credit):
        key = f"{self.run}-{reference}"
        fresh = self._fresh(f"sla_credit:{key}")
        entry = ledger.post_sla_credit(reference=key, center=self.centers[center], credit_cents=credit,
                                       currency="USD")
        if entry is not None:
            self._apply(entry, fresh)
        self.steps += 1

    @rule(center=st.integers(0, 1), amount=st.integers(1, 100_000), n=st.integers(0, 10**9))
    def adjustment(self, center, amount, n):
        receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=self.centers[center])
        revenue = ledger.account(Purpose.PLATFORM_REVENUE, "USD")
        key = f"{self.run}-adj-{n}"
        fresh = self._fresh(f"adjustment:{key}")
        entry = ledger.post_adjustment(actor_user=self.finance, natural_key=key, currency="USD",
                                       legs=[ledger.Leg(receivable, -amount), ledger.Leg(revenue, amount)],
                                       reason="goodwill")
        self._apply(entry, fresh)
        self.steps += 1

    @precondition(lambda self: self.entries)
    @rule(pick=st.integers(0, 10**6))
    def reverse(self, pick):
        candidates = [e for e in self.entries if e.kind != JournalTransaction.Kind.REVERSAL]
        if not candidates:
            return
        entry = candidates[pick % len(candidates)]
        fresh = self._fresh(f"reversal:{entry.natural_key}")
        self._apply(ledger.reverse(entry=entry, reason="posted in error", actor_user=self.finance), fresh)
        self.steps += 1

    # --- through the fake Stripe ---------------------------------------------------------------------
    def _raised(self) -> None:
        self.queue.extend(self.fake.take_events())

    @rule(center=st.integers(0, 1), amount=st.integers(1, 300_000), declined=st.booleans())
    def card_payment(self, center, amount, declined):
        payment = checkout.checkout_start(
            payer=self.centers[center], reference=f"{self.run}-pay-{len(self.payments)}", description="Card payment",
            amount_cents=amount, currency="USD", success_url="http://testserver/ok/",
            cancel_url="http://testserver/back/")
        if declined:
            self.fake.decline(payment.stripe_checkout_session_id)
        self.fake.pay(payment.stripe_checkout_session_id)
        self.payments.append(payment)
        self._raised()
        self.steps += 1

    @precondition(lambda self: self.payments)
    @rule(pick=st.integers(0, 10**6))
    def refund(self, pick):
        payment = self.payments[pick % len(self.payments)]
        payment.refresh_from_db()
        if payment.status == Payment.Status.PAID:
            checkout.payment_refund(payment=payment, reason="refunded in the machine")
        if payment.status in (Payment.Status.PAID, Payment.Status.REFUND_PENDING):
            checkout.refund_send(payment.pk)  # what the task queued after commit does
        self._raised()
        self.steps += 1

    @precondition(lambda self: self.queue)
    @rule(pick=st.integers(0, 10**6), replay=st.booleans())
    def deliver(self, pick, replay):
        """A queued event, signed and verified as the endpoint does, stored once and processed; ``replay``
        leaves it queued, so that it comes again later (a no-op then)."""
        event = self.queue[pick % len(self.queue)] if replay else self.queue.pop(pick % len(self.queue))
        payload, header = self.fake.signed(event)
        stored, created = webhooks.event_receive(stripe_client.construct_event(payload, header))
        if created:
            webhooks.event_process(stored.pk)
        self._raised()
        self.steps += 1

    @rule()
    def send_transfers(self):
        owed = self._owed()
        transfers.transfers_run()
        self._check_paid_within(owed)
        self._raised()
        self.steps += 1

    @rule(complete=st.booleans())
    def second_account_switched(self, complete):
        self.fake.set_account(self.accounts[1], complete=complete)
        self._raised()
        self.steps += 1

    @rule(status=st.sampled_from(["paid", "paid", "failed"]))
    def stripe_payout(self, status):
        self.fake.create_payout(self.accounts[0], status=status)
        self._raised()
        self.steps += 1

    @rule(reader=st.integers(0, 2), over=st.integers(-1, 1))
    def payout_by_hand(self, reader, over):
        """Finance pays what the export says (``over`` 0); a different amount is refused, nothing recorded."""
        actor = actor_for_user(self.finance)
        as_of = timezone.now()
        payee = connect.Payee(radiologist=self.readers[reader])
        due = next((row.amount_cents for row in payouts.payouts_owed(actor=actor, as_of=as_of)
                    if row.payee_id == str(self.readers[reader].public_id)), 0)
        owed = self._owed()
        try:
            payouts.payout_mark_paid(actor=actor, payee=payee, currency="USD", amount_cents=due + over,
                                     reference=f"{self.run}-bank-{self.steps}", as_of=as_of)
        except ApplicationError:
            assert over != 0 or due == 0
        else:
            assert over == 0
        self._check_paid_within(owed)
        self.steps += 1

    def _owed(self) -> dict[int, int]:
        """What each payable account owes now (credit-positive)."""
        return {account.pk: -ledger.balance(account) for account in
                LedgerAccount.objects.filter(purpose=Purpose.READER_PAYABLE, radiologist__in=self.readers)}

    def _check_paid_within(self, owed_before: dict[int, int]) -> None:
        """Payouts never above the payable balance: what a step paid out of an account is at most what it owed."""
        for account_id, owed in owed_before.items():
            paid = -ledger.balance(LedgerAccount.objects.get(pk=account_id))
            assert owed - paid <= max(owed, 0), (account_id, owed, paid)

    # --- invariants ----------------------------------------------------------------------------------
    @invariant()
    def every_transaction_balances(self):
        unbalanced = (Posting.objects.filter(transaction_id__gt=self.before).values("transaction")
                      .annotate(total=Sum("amount"), legs=Count("id")).exclude(total=0))
        assert not unbalanced.exists()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred trigger checks everything now
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def _expected_from_stripe(self) -> dict[int, int]:
        """The model's side of what Stripe moved: each settled payment once (refunded: back again), each paid
        transfer once (reversed by Stripe: owed again), from the rows' states, not from the postings."""
        moved: dict[int, int] = defaultdict(int)
        clearing = ledger.account(Purpose.STRIPE_CLEARING, "USD").pk
        for payment in Payment.objects.filter(pk__in=[p.pk for p in self.payments], status__in=SETTLED):
            receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=payment.payer).pk
            sign = 0 if payment.status == Payment.Status.REFUNDED else 1
            moved[clearing] += sign * payment.amount_cents
            moved[receivable] -= sign * payment.amount_cents
        for transfer in Transfer.objects.filter(posted_id__gt=self.before).select_related("radiologist"):
            payable = ledger.payee_account("USD", group=None, radiologist=transfer.radiologist).pk
            counter = clearing if transfer.manual_payout_id is None else ledger.account(Purpose.CASH, "USD").pk
            sign = 0 if transfer.status == Transfer.Status.REVERSED else 1
            moved[payable] += sign * transfer.amount_cents
            moved[counter] -= sign * transfer.amount_cents
        return moved

    @invariant()
    def balances_match_the_model(self):
        totals = dict(Posting.objects.filter(transaction_id__gt=self.before).values_list("account")
                      .annotate(total=Sum("amount")))
        expected = defaultdict(int, self.expected)
        for account_id, amount in self._expected_from_stripe().items():
            expected[account_id] += amount
        expected, totals = {k: v for k, v in expected.items() if v}, {k: v for k, v in totals.items() if v}
        assert expected == totals, {k: (expected.get(k), totals.get(k)) for k in expected.keys() | totals.keys()
                                    if expected.get(k) != totals.get(k)}

    @invariant()
    def nothing_is_posted_twice(self):
        reads = Counter(JournalTransaction.objects.filter(kind=JournalTransaction.Kind.READ_SIGNED,
                                                          id__gt=self.before).values_list("reference", flat=True))
        assert not [ref for ref, n in reads.items() if n > 1]
        reversed_twice = (JournalTransaction.objects.filter(kind=JournalTransaction.Kind.REVERSAL, id__gt=self.before)
                          .values("reverses").annotate(n=Count("id")).filter(n__gt=1))
        assert not reversed_twice.exists()
        once = (JournalTransaction.objects.filter(id__gt=self.before, kind__in=(Kind.PAYMENT_RECEIVED, Kind.PAYOUT))
                .values("kind", "reference", "details__earning").annotate(n=Count("id")).filter(n__gt=1))
        assert not once.exists()  # a payment settles once; an earning is paid once (by Stripe or by hand)

    @invariant()
    def no_reversed_earning_is_paid(self):
        """A payout's earning was not reversed before the payout (a later reversal is a clawback: allowed)."""
        paid = Transfer.objects.filter(earning_id__gt=self.before, posted__isnull=False,
                                       earning__reversed_by__isnull=False).values_list("posted_id",
                                                                                       "earning__reversed_by__id")
        assert all(posted < reversal for posted, reversal in paid)
