"""A local server speaking Stripe's HTTP protocol, for the tests and the demo only: never used in production.

The official SDK is pointed at it through ``STRIPE_API_BASE`` (billing.stripe_client). It keeps state in
memory for what ReadRoom calls — Connect accounts, account links, transfers, payouts and balance
transactions (``server.py``); Checkout sessions with their hosted page, payment intents, charges and refunds
(``checkout.py``) — and has Python controls to play Stripe's side: finish an account's onboarding, make a
payout, inject failures and reconciliation differences. The pytest fixtures live in tests/billing/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.test import override_settings

from billing.fake_stripe.protocol import API_KEY, WEBHOOK_SECRET
from billing.fake_stripe.server import FakeStripe

__all__ = ["API_KEY", "WEBHOOK_SECRET", "FakeStripe", "fake_stripe_running"]


@contextmanager
def fake_stripe_running(**more_settings) -> Iterator[FakeStripe]:
    """A fresh fake on an ephemeral loopback port, with Stripe switched on against it until the block ends
    (then the server stops and the settings are what they were)."""
    fake = FakeStripe().start()
    try:
        with override_settings(STRIPE_SECRET_KEY=API_KEY, STRIPE_API_BASE=fake.url,
                               STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, **more_settings):
            yield fake
    finally:
        fake.stop()
