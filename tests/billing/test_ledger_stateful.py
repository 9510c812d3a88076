"""Random sequences of postings keep every ledger invariant (a short run; bench/ledger_stateful.py runs
the same machine for at least 10,000 steps)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.billing.ledger_machine import LedgerMachine, stripe_world
from tests.factories import MembershipFactory, OrganizationFactory
from tests.marketplace.helpers import make_radiologist

pytestmark = pytest.mark.django_db


def test_random_postings_keep_the_ledger_balanced_and_exact(cast, fake_stripe):
    finance = MembershipFactory(user__email="pf@example.test", organization=cast.platform, roles=["finance"]).user
    centers = [cast.center, OrganizationFactory(name="Second center", slug="second", region="TX")]
    readers = [make_radiologist() for _ in range(3)]
    LedgerMachine.world = (centers, readers, finance, fake_stripe, stripe_world(fake_stripe, readers))
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=5, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)))
