"""The one place the official ``stripe`` SDK is configured (design.md, "Run modes").

``STRIPE_SECRET_KEY`` empty: Stripe is off (the embedded default) and nothing here may be called.
``STRIPE_API_BASE`` points the SDK at a local server speaking Stripe's protocol (tests, demo).
Every write carries an idempotency key derived from our own ids (``idempotency_key``), so a retry,
by the SDK or by our next run, is answered with the first call's object instead of a second one.
"""

from __future__ import annotations

from functools import lru_cache

import stripe
from django.conf import settings

from core.errors import ApplicationError

WEBHOOK_TOLERANCE_SECONDS = 300  # reliability.md: a signature older than 5 minutes is refused


def enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, timeout: int, retries: int) -> stripe.StripeClient:
    bases = {"api": api_base, "connect": api_base} if api_base else None
    return stripe.StripeClient(api_key, base_addresses=bases, max_network_retries=retries,
                               http_client=stripe.RequestsClient(timeout=timeout))


def client() -> stripe.StripeClient:
    """The SDK client for the current settings (one per configuration, reused between calls)."""
    if not enabled():
        raise ApplicationError("Stripe is off (STRIPE_SECRET_KEY is empty).", code="stripe_off", status_code=409)
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE.rstrip("/"),
                   settings.STRIPE_TIMEOUT_SECONDS, settings.STRIPE_MAX_NETWORK_RETRIES)


def idempotency_key(*parts: object) -> str:
    """A key from our own ids (Stripe keeps keys 24 h and allows 255 characters)."""
    key = ":".join(str(part) for part in parts)
    if len(key) > 255:
        raise ValueError(f"idempotency key too long: {key[:60]}…")
    return key


def construct_event(payload: bytes, signature: str | None) -> stripe.Event:
    """Verify ``Stripe-Signature`` over the raw body (raises ``stripe.SignatureVerificationError``)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise stripe.SignatureVerificationError("No STRIPE_WEBHOOK_SECRET is configured.", signature, payload)
    return stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
