"""The fake Stripe's pytest fixtures (the server itself is billing/fake_stripe/, shared with the demo), and
helpers the Stripe tests share."""

from __future__ import annotations

import uuid

import pytest

from billing.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe
from billing.services import ledger

__all__ = ["API_KEY", "WEBHOOK_SECRET", "WEBHOOK_URL", "FakeStripe", "deliver", "earning", "fake_stripe",
           "fake_stripe_server", "stripe_off"]


@pytest.fixture(scope="session")
def fake_stripe_server():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server, settings):
    """Stripe on, pointed at a fresh fake (no SDK retries unless a test asks: our own retries are under test)."""
    fake_stripe_server.reset()
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_API_BASE = fake_stripe_server.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_TIMEOUT_SECONDS = 1
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return fake_stripe_server


@pytest.fixture
def stripe_off(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = ""


# --- helpers the Stripe tests share ------------------------------------------------------------------
WEBHOOK_URL = "/stripe/webhook/"


def deliver(client, capture, events: list[dict], fake: FakeStripe) -> list:
    """Post each event, signed, to the webhook endpoint as Stripe would (running what is queued on commit)."""
    answers = []
    for event in events:
        payload, header = fake.signed(event)
        with capture(execute=True):
            answer = client.post(WEBHOOK_URL, data=payload, content_type="application/json",
                                 HTTP_STRIPE_SIGNATURE=header)
        assert answer.status_code == 200, answer.content
        answers.append(answer)
    return answers


def earning(center, radiologist, gross_cents: int = 10_000, *, group=None, currency: str = "USD"):
    """A signed read posted to the ledger (what marketplace.services.money posts), for a fresh read request."""
    reference = str(uuid.uuid4())
    return ledger.post_read_signed(reference=reference, center=center, radiologist=radiologist, group=group,
                                   gross_cents=gross_cents, fee_basis_points=1500, currency=currency,
                                   details={"read_request": reference, "accession": f"A{reference[:6]}",
                                            "modality": "CT", "reader": radiologist.name,
                                            "reader_id": radiologist.pk})
