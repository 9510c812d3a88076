"""Fixtures of the billing tests: the fake Stripe (the server in billing/fake_stripe/, its fixtures in
tests/billing/fake_stripe.py), Stripe switched off, and the money people of the cast (platform finance, the
group's admin), enrolled in TOTP as they must be."""

import pytest

from tests.billing.checkout_helpers import order_hooks, space  # noqa: F401
from tests.billing.fake_stripe import fake_stripe, fake_stripe_server, stripe_off  # noqa: F401
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory


@pytest.fixture
def finance(cast):
    """A platform finance person."""
    user = MembershipFactory(user__email="pf@example.test", organization=cast.platform, roles=["finance"]).user
    enroll_totp(user)
    return user


@pytest.fixture
def group_admin(cast):
    """An admin of the cast's radiology group."""
    user = MembershipFactory(user__email="ga@example.test", organization=cast.group, roles=["admin"]).user
    enroll_totp(user)
    return user
