"""Fixtures of the billing tests: the fake Stripe (tests/billing/fake_stripe.py) and Stripe switched off."""

from tests.billing.fake_stripe import fake_stripe, fake_stripe_server, stripe_off  # noqa: F401
