"""The demo's Stripe Connect payouts (issue 15, point 7), through the real services against the fake Stripe.

Stripe is off in the demo (the embedded default), so for the length of this step the fake Stripe
(billing/fake_stripe/) runs in-process on a loopback port with Stripe switched on against it:

- Dr. Nakamura onboards and Stripe enables his payouts: every earning he is owed is sent as a transfer
  (``transfers_run``), Stripe pays them out in one payout, and finance's reconciliation of that payout is
  stored on it — with one difference planted on Stripe's side (one transfer's amount off by one cent).
- Dr. Alvarez's account exists but her onboarding is not finished: her transfers are held, with the reason.
- Everyone else owed has no Stripe account (their transfers are held too; finance may pay them by hand).

Afterwards the fake is gone and the pages show what was stored; nothing calls Stripe while it is off.
Idempotent: once the payout exists the step does nothing and starts no server. All or nothing: the step
runs in one database transaction, so a failure leaves no account the next (fresh) fake would not know.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import RadiologistProfile
from accounts.policy import actor_for_user
from billing import stripe_client
from billing.fake_stripe import FakeStripe, fake_stripe_running
from billing.models import ConnectedAccount, StripePayout, Transfer
from billing.services import connect, reconcile, transfers, webhooks

PAYOUTS_ENABLED = "dr.nakamura@radiologists.demo"
ONBOARDING_UNFINISHED = "dr.alvarez@radiologists.demo"
STRIPE_PAYEES = (PAYOUTS_ENABLED, ONBOARDING_UNFINISHED)


def _profile(email: str) -> RadiologistProfile | None:
    return RadiologistProfile.objects.select_related("user").filter(user__email=email).first()


def _account(fake: FakeStripe, profile: RadiologistProfile, *, finish_onboarding: bool) -> ConnectedAccount:
    """The radiologist sets up payouts from their earnings page; Stripe enables them once onboarding is done."""
    account = connect.connected_account_create(actor=actor_for_user(profile.user),
                                               payee=connect.Payee(radiologist=profile))
    if finish_onboarding:
        fake.set_account(account.stripe_account_id)
    return connect.connected_account_sync(stripe_account_id=account.stripe_account_id)


def _payout_with_one_difference(fake: FakeStripe, account: ConnectedAccount) -> StripePayout:
    """Stripe pays out the account's balance; one transfer in it is a cent short on Stripe's side; the payout
    is recorded as ``payout.paid`` records it and reconciled against the ledger."""
    remote = fake.create_payout(account.stripe_account_id)
    first = Transfer.objects.filter(connected_account=account, status=Transfer.Status.SENT).order_by("id").first()
    fake.tamper(first.stripe_transfer_id, -1)
    payout = webhooks.payout_refresh(stripe_payout_id=remote["id"], stripe_account_id=account.stripe_account_id)
    reconcile.payout_reconcile(payout=payout)
    return payout


def load_demo_stripe(report) -> None:
    """Add the Connect accounts, transfers and the reconciled payout once (``report``: the billing demo's)."""
    enabled, unfinished = _profile(PAYOUTS_ENABLED), _profile(ONBOARDING_UNFINISHED)
    if enabled is None or unfinished is None:
        return
    if StripePayout.objects.filter(connected_account__radiologist=enabled).exists():
        report.unchanged += 1
        return
    if stripe_client.enabled():  # a real Stripe account: the fake's controls (onboarding, payouts) are not ours
        report.lines.append("Stripe is on: the demo's Stripe payouts are left out (they are played on the fake).")
        return
    transfers.transfers_discover()
    if not Transfer.objects.filter(radiologist=enabled, status__in=transfers.OPEN).exists():
        return  # nothing to pay him yet (a demo without signed reads)
    with fake_stripe_running() as fake, transaction.atomic():
        paid = _account(fake, enabled, finish_onboarding=True)
        waiting = _account(fake, unfinished, finish_onboarding=False)
        transfers.transfers_run()
        payout = _payout_with_one_difference(fake, paid)
    held = Transfer.objects.filter(radiologist=unfinished, status=Transfer.Status.HELD).count()
    report.created += 3  # two Connect accounts and the payout
    report.lines += [
        f"{enabled.name}: payouts enabled on Stripe account {paid.stripe_account_id}; "
        f"{Transfer.objects.filter(stripe_payout=payout).count()} transfer(s) carried by payout "
        f"{payout.stripe_payout_id} ({len(payout.reconciliation['issues'])} reconciliation difference: one cent)",
        f"{unfinished.name}: Stripe account {waiting.stripe_account_id} still onboarding; {held} transfer(s) held",
    ]
