"""The ledger under a long random sequence of postings (issue 15's figure: ≥ 10,000 steps, every invariant).

Runs tests/billing/ledger_machine.py's state machine against the database in DATABASE_URL (PostgreSQL:
its deferred balance trigger is forced after every step), inside one transaction rolled back at the end,
and prints the steps run, the seed, and the time per step beside the target.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readroom_bench \
        uv run python bench/ledger_stateful.py [--steps 10000] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import override_settings  # noqa: E402
from hypothesis import HealthCheck, seed, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

from billing.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe  # noqa: E402
from tests.billing.ledger_machine import LedgerMachine, stripe_world  # noqa: E402
from tests.factories import MembershipFactory, OrganizationFactory  # noqa: E402
from tests.marketplace.helpers import make_radiologist  # noqa: E402

STEPS_PER_EXAMPLE = 100


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    examples = max(1, args.steps // STEPS_PER_EXAMPLE)
    print(f"ledger state machine on {connection.vendor}: {examples} runs x {STEPS_PER_EXAMPLE} steps, "
          f"seed {args.seed}")
    fake = FakeStripe().start()  # Stripe on, against the fake on a loopback port
    started = time.perf_counter()
    try:
        with transaction.atomic(), override_settings(
                STRIPE_SECRET_KEY=API_KEY, STRIPE_API_BASE=fake.url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                STRIPE_TIMEOUT_SECONDS=5, STRIPE_MAX_NETWORK_RETRIES=0):
            platform = OrganizationFactory(name="Bench platform", slug="bench-platform", kind="platform")
            finance = MembershipFactory(user__email="bench-finance@example.test", organization=platform,
                                        roles=["finance"]).user
            centers = [OrganizationFactory(name=f"Bench center {i}", slug=f"bench-center-{i}", region="TX")
                       for i in range(2)]
            readers = [make_radiologist() for _ in range(3)]
            LedgerMachine.world = (centers, readers, finance, fake, stripe_world(fake, readers))
            steps = 0
            machine_teardown = LedgerMachine.teardown

            def count_steps(machine):
                nonlocal steps
                steps += machine.steps
                machine_teardown(machine)

            LedgerMachine.teardown = count_steps
            round_seed = args.seed
            while steps < args.steps:  # Hypothesis draws up to STEPS_PER_EXAMPLE steps per run: go on to the target
                seed(round_seed)(lambda: run_state_machine_as_test(LedgerMachine, settings=settings(
                    max_examples=examples, stateful_step_count=STEPS_PER_EXAMPLE, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))))()
                round_seed += 1
            raise Rollback
    except Rollback:
        pass
    finally:
        fake.stop()
    took = time.perf_counter() - started
    label = "steps (posts, retries, credits, adjustments, reversals, payments, refunds, payouts, webhooks)"
    print(f"{label:<90} {steps:>8}   target >= {args.steps}")
    print(f"{'invariant failures':<90} {0:>8}   target 0")
    print(f"{'time per step, ms (invariants checked after each)':<90} {1000 * took / max(steps, 1):>8.2f}")


if __name__ == "__main__":
    main()
