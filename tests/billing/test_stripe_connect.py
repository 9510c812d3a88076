"""Onboarding a payee to Stripe Connect (Express account, account link) through the official SDK against the
fake Stripe: once per payee, keys from our ids, someone else's payee is 404, Stripe off is a clear refusal."""

from __future__ import annotations

import pytest
import stripe

from accounts.credentials.models import RadiologistProfile
from accounts.policy import actor_for_user
from billing import stripe_client
from billing.models import ConnectedAccount
from billing.services import connect
from core.errors import ApplicationError, NotFound
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
RETURN, REFRESH = "https://readroom.test/earnings/", "https://readroom.test/earnings/onboard/"


@pytest.fixture
def reader(cast):
    return RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago")


def test_a_radiologist_onboards_to_an_express_account_once(cast, reader, fake_stripe):
    me = actor_for_user(cast.radiologist)
    first = connect.account_link_create(actor=me, payee=connect.Payee(radiologist=reader), return_url=RETURN,
                                        refresh_url=REFRESH)
    second = connect.account_link_create(actor=me, payee=connect.Payee(radiologist=reader), return_url=RETURN,
                                         refresh_url=REFRESH)
    account = ConnectedAccount.objects.get()
    assert account.radiologist == reader
    assert first.startswith(f"{fake_stripe.url}/express/onboarding/{account.stripe_account_id}/")
    assert second != first  # a fresh link each time (they expire), on the same account
    remote = fake_stripe.accounts[account.stripe_account_id]
    assert (remote["type"], remote["email"]) == ("express", cast.radiologist.email)
    assert remote["metadata"] == {"readroom_payee": f"radiologist-{reader.public_id}"}
    posts = [(path, key) for method, path, key in fake_stripe.requests if method == "POST"]
    assert posts == [("/v1/accounts", f"account:radiologist-{reader.public_id}"),
                     ("/v1/account_links", f"account_link:{account.public_id}:1"),
                     ("/v1/account_links", f"account_link:{account.public_id}:2")]
    assert (account.payouts_enabled, account.requirements_due[:1]) == (False, ["external_account"])
    assert account.links_issued == 2


def test_a_lost_answer_to_account_creation_is_recovered_by_the_same_key(cast, reader, fake_stripe):
    fake_stripe.fail_next("/v1/accounts", status=200, delay=1.5, after_processing=True)
    payee = connect.Payee(radiologist=reader)
    with pytest.raises(stripe.APIConnectionError):
        connect.connected_account_create(actor=actor_for_user(cast.radiologist), payee=payee)
    account = connect.connected_account_create(actor=actor_for_user(cast.radiologist), payee=payee)
    assert list(fake_stripe.accounts) == [account.stripe_account_id]


def test_someone_elses_payee_is_404(cast, reader, fake_stripe):
    stranger = actor_for_user(UserFactory())
    with pytest.raises(NotFound):
        connect.connected_account_create(actor=stranger, payee=connect.Payee(radiologist=reader))
    with pytest.raises(NotFound):
        connect.account_link_create(actor=actor_for_user(cast.center_admin),
                                    payee=connect.Payee(organization=cast.group), return_url=RETURN,
                                    refresh_url=REFRESH)
    assert fake_stripe.requests == []
    assert not ConnectedAccount.objects.exists()


def test_a_groups_finance_onboards_the_group_but_a_center_is_no_payee(cast, fake_stripe):
    finance = MembershipFactory(organization=cast.group, roles=["finance"]).user
    account = connect.connected_account_create(actor=actor_for_user(finance),
                                               payee=connect.Payee(organization=cast.group))
    assert account.organization == cast.group
    center_admin = actor_for_user(cast.center_admin)
    with pytest.raises(ApplicationError) as refused:
        connect.connected_account_create(actor=center_admin, payee=connect.Payee(organization=cast.center))
    assert "payee" in refused.value.fields


@pytest.mark.parametrize("field", ["return_url", "refresh_url"])
def test_an_account_link_needs_absolute_urls(cast, reader, fake_stripe, field):
    urls = {"return_url": RETURN, "refresh_url": REFRESH, field: "/earnings/"}
    with pytest.raises(ApplicationError) as refused:
        connect.account_link_create(actor=actor_for_user(cast.radiologist), payee=connect.Payee(radiologist=reader),
                                    **urls)
    assert field in refused.value.fields


def test_a_payee_is_either_a_radiologist_or_a_group(cast, reader):
    with pytest.raises(ApplicationError) as refused:
        connect.Payee(radiologist=reader, organization=cast.group)
    assert "payee" in refused.value.fields


def test_with_stripe_off_onboarding_is_refused_clearly(cast, reader, stripe_off):
    with pytest.raises(ApplicationError) as refused:
        connect.connected_account_create(actor=actor_for_user(cast.radiologist),
                                         payee=connect.Payee(radiologist=reader))
    assert refused.value.code == "stripe_off"
    assert not stripe_client.enabled()


def test_sync_of_an_account_that_is_not_ours_changes_nothing(fake_stripe):
    assert connect.connected_account_sync(stripe_account_id="acct_not_ours") is None
    assert fake_stripe.requests == []
