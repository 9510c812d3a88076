"""Stripe Connect accounts of payees (a radiologist, or a radiology group paid under its contracts).

A payee onboards through an Express account and Stripe's hosted onboarding (an account link). Our row
mirrors Stripe's flags and is refreshed by re-reading the account from Stripe (``account.updated``
may arrive late, twice or out of order, so its payload is never trusted). When payouts become
enabled, the payee's held transfers are released to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from accounts.models import Organization, RadiologistProfile
from accounts.policy import Actor
from billing import stripe_client
from billing.models import ConnectedAccount, Transfer
from billing.policy import MONEY_ROLES, is_platform_finance
from core.errors import ApplicationError, NotFound


@dataclass(frozen=True)
class Payee:
    """Who earnings go to: exactly one of a radiologist or a radiology group (as on the ledger)."""

    radiologist: RadiologistProfile | None = None
    organization: Organization | None = None

    def __post_init__(self) -> None:
        if (self.radiologist is None) == (self.organization is None):
            raise ApplicationError.for_field("payee", "Name either a radiologist or a radiology group.")

    @property
    def name(self) -> str:
        return self.radiologist.name if self.radiologist is not None else self.organization.name

    @property
    def key(self) -> str:
        """A stable id for idempotency keys and CSV rows."""
        if self.radiologist is not None:
            return f"radiologist-{self.radiologist.public_id}"
        return f"group-{self.organization.public_id}"

    def filter(self) -> dict:
        if self.radiologist is not None:
            return {"radiologist": self.radiologist}
        return {"organization": self.organization}


def can_manage(actor: Actor, payee: Payee) -> bool:
    """A radiologist onboards themselves; a group's admins and finance onboard the group; platform finance sees all."""
    if actor.user is None:
        return False
    if payee.radiologist is not None:
        return payee.radiologist.user_id == actor.user.pk or is_platform_finance(actor)
    return actor.has_role(payee.organization, *MONEY_ROLES) or is_platform_finance(actor)


def account_of(payee: Payee) -> ConnectedAccount | None:
    return ConnectedAccount.objects.filter(**payee.filter()).first()


def connected_account_create(*, actor: Actor, payee: Payee, country: str = "US") -> ConnectedAccount:
    """Create the payee's Express account at Stripe, once (a second call returns the first)."""
    if not can_manage(actor, payee):
        raise NotFound("Payee not found.")
    if payee.organization is not None and payee.organization.kind != Organization.Kind.RADIOLOGY_GROUP:
        raise ApplicationError.for_field("payee", f"{payee.organization.name} is not a radiology group.")
    existing = account_of(payee)
    if existing is not None:
        return existing
    email = payee.radiologist.user.email if payee.radiologist is not None else ""
    params = {"type": "express", "country": country.upper(), "capabilities": {"transfers": {"requested": True}},
              "metadata": {"readroom_payee": payee.key}}
    if email:
        params["email"] = email
    remote = stripe_client.client().v1.accounts.create(
        params, {"idempotency_key": stripe_client.idempotency_key("account", payee.key)})
    try:
        with transaction.atomic():
            created = ConnectedAccount.objects.create(stripe_account_id=remote.id, country=country.upper(),
                                                      email=email, **payee.filter())
    except IntegrityError:  # a concurrent request saved the same account (same idempotency key, same id)
        return account_of(payee)
    return _apply(created, remote)


def account_link_create(*, actor: Actor, payee: Payee, return_url: str, refresh_url: str) -> str:
    """A one-time URL of Stripe's hosted onboarding for the payee's account (made on first use)."""
    for field, url in (("return_url", return_url), ("refresh_url", refresh_url)):
        if not url.startswith(("https://", "http://")):
            raise ApplicationError.for_field(field, "Give an absolute http(s) URL.")
    account = connected_account_create(actor=actor, payee=payee)
    with transaction.atomic():
        locked = ConnectedAccount.objects.select_for_update().get(pk=account.pk)
        key = stripe_client.idempotency_key("account_link", locked.public_id, locked.links_issued + 1)
        link = stripe_client.client().v1.account_links.create(
            {"account": locked.stripe_account_id, "type": "account_onboarding", "return_url": return_url,
             "refresh_url": refresh_url}, {"idempotency_key": key})
        locked.links_issued += 1
        locked.save(update_fields=["links_issued", "updated_at"])
    return link.url


def _apply(account: ConnectedAccount, remote) -> ConnectedAccount:
    """Copy Stripe's view of the account onto our row; release held transfers when payouts open."""
    remote = remote.to_dict()
    requirements = remote.get("requirements") or {}
    account.payouts_enabled = bool(remote.get("payouts_enabled"))
    account.charges_enabled = bool(remote.get("charges_enabled"))
    account.details_submitted = bool(remote.get("details_submitted"))
    account.requirements_due = list(requirements.get("currently_due") or [])
    account.disabled_reason = (requirements.get("disabled_reason") or "")[:100]
    account.synced_at = datetime.now(tz=UTC)
    account.save(update_fields=["payouts_enabled", "charges_enabled", "details_submitted", "requirements_due",
                                "disabled_reason", "synced_at", "updated_at"])
    if account.payouts_enabled:
        payee = {"radiologist_id": account.radiologist_id} if account.radiologist_id else {
            "organization_id": account.organization_id}
        Transfer.objects.filter(status=Transfer.Status.HELD, **payee).update(
            status=Transfer.Status.PENDING, held_reason="", connected_account=account)
    return account


@transaction.atomic
def connected_account_sync(*, stripe_account_id: str) -> ConnectedAccount | None:
    """Re-read the account from Stripe and keep ours current (None: not an account of ours)."""
    account = ConnectedAccount.objects.select_for_update().filter(stripe_account_id=stripe_account_id).first()
    if account is None:
        return None
    return _apply(account, stripe_client.client().v1.accounts.retrieve(stripe_account_id))

