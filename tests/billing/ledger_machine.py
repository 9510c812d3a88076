"""A Hypothesis state machine over the ledger's posting rules, shared by the test (short runs) and
bench/ledger_stateful.py (≥ 10,000 steps).

It posts reads (retried: the same natural key again, even with other figures), cancellation fees,
service-level credits, finance adjustments and reversals in random order and keeps its own model of
every account's balance. After every step: each transaction balances (also checked by PostgreSQL's
deferred trigger, forced to run now), each balance equals both the model's and the sum of its postings,
no read is posted twice, and a reversal happens at most once per transaction.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db import connection
from django.db.models import Count, Sum
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from billing.models import JournalTransaction, LedgerAccount, Posting
from billing.services import ledger

Purpose = LedgerAccount.Purpose
REFERENCES = st.sampled_from([f"r{i}" for i in range(40)])  # a small pool: retries happen often


class LedgerMachine(RuleBasedStateMachine):
    """Needs ``LedgerMachine.world = (centers, readers, finance_user)`` set before it runs."""

    world: tuple = ()

    def __init__(self):
        super().__init__()
        self.centers, self.readers, self.finance = self.world
        self.expected: dict[int, int] = defaultdict(int)
        # Invariants read this example's transactions only (ids above the last one before it), so that a
        # long run stays linear; the balance trigger and the model hold the rest.
        self.before = JournalTransaction.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.run = self.before  # the natural keys of this example are unique to it
        self.posted_reads: set[str] = set()
        self.entries: list[JournalTransaction] = []
        self.steps = 0

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

    @invariant()
    def every_transaction_balances(self):
        unbalanced = (Posting.objects.filter(transaction_id__gt=self.before).values("transaction")
                      .annotate(total=Sum("amount"), legs=Count("id")).exclude(total=0))
        assert not unbalanced.exists()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred trigger checks everything now
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    @invariant()
    def balances_match_the_model(self):
        totals = dict(Posting.objects.filter(transaction_id__gt=self.before).values_list("account")
                      .annotate(total=Sum("amount")))
        assert {k: v for k, v in self.expected.items() if v} == {k: v for k, v in totals.items() if v}

    @invariant()
    def nothing_is_posted_twice(self):
        reads = Counter(JournalTransaction.objects.filter(kind=JournalTransaction.Kind.READ_SIGNED,
                                                          id__gt=self.before).values_list("reference", flat=True))
        assert not [ref for ref, n in reads.items() if n > 1]
        reversed_twice = (JournalTransaction.objects.filter(kind=JournalTransaction.Kind.REVERSAL, id__gt=self.before)
                          .values("reverses").annotate(n=Count("id")).filter(n__gt=1))
        assert not reversed_twice.exists()
