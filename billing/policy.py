"""Who may do what with money. Deny by default; views never decide.

- A center's admins and finance people see the center's contracts (and, later, invoices); its admins
  draft, propose, accept and end them.
- A radiology group's admins and finance people see the group's contracts; its admins accept and end
  them. An independent radiologist sees and accepts their own.
- Platform finance sees every contract and the ledger; platform operations do not handle money.
"""

from __future__ import annotations

from accounts.models import Organization, Role
from accounts.policy import Actor
from billing.models import Contract
from core.access import Access

MONEY_ROLES = frozenset({Role.ADMIN, Role.FINANCE})


def is_platform_finance(actor: Actor) -> bool:
    return actor.user is not None and actor.is_platform_finance


def can_see_contract(actor: Actor, contract: Contract) -> bool:
    if is_platform_finance(actor) or actor.has_role(contract.center_id, *MONEY_ROLES):
        return True
    if contract.group_id is not None:
        return actor.has_role(contract.group_id, *MONEY_ROLES)
    return actor.user is not None and contract.radiologist.user_id == actor.user.pk


def can_see_invoice(actor: Actor, invoice) -> bool:
    """A center's admins and finance see its invoices; platform finance sees all."""
    return is_platform_finance(actor) or actor.has_role(invoice.center_id, *MONEY_ROLES)


def can_draft_for(actor: Actor, center: Organization) -> bool:
    """A center's admins write its contracts' terms."""
    return center.kind == Organization.Kind.IMAGING_CENTER and actor.has_role(center, Role.ADMIN)


def can_accept_for_center(actor: Actor, contract: Contract) -> bool:
    return actor.user is not None and actor.has_role(contract.center_id, Role.ADMIN)


def can_accept_for_reader(actor: Actor, contract: Contract) -> bool:
    if actor.user is None:
        return False
    if contract.group_id is not None:
        return actor.has_role(contract.group_id, Role.ADMIN)
    return contract.radiologist.user_id == actor.user.pk


# The finance pages (billing/views); the Stripe routes are declared in ROUTES below.
PAGE_ROUTES: dict[str, Access] = {
    "contract_list": Access.AUTHENTICATED,  # the actor's own contracts (empty for most)
    "contract_create": Access.ORG_ADMIN,  # a center's admins
    "contract_detail": Access.AUTHENTICATED,  # either side's admins and finance, the radiologist, platform finance
    "contract_action": Access.AUTHENTICATED,
    "invoice_list": Access.AUTHENTICATED,  # a center's admins and finance; platform finance (all, and generates)
    "invoice_detail": Access.AUTHENTICATED,
    "invoice_action": Access.PLATFORM_OVERSIGHT,  # platform finance issues, records payment, voids
    "invoice_download": Access.AUTHENTICATED,
    "earnings": Access.AUTHENTICATED,  # a radiologist's own statement; a group's for its admins and finance
    "finance_dashboard": Access.PLATFORM_OVERSIGHT,  # platform finance only
    "payout_list": Access.PLATFORM_OVERSIGHT,  # platform finance only: what is owed, payments, Stripe payouts
    "payout_detail": Access.PLATFORM_OVERSIGHT,
    "manual_payout_detail": Access.PLATFORM_OVERSIGHT,
    "payout_onboarding": Access.AUTHENTICATED,  # a radiologist for themselves, a group's money people for it
    # Card payments: the payer alone (the patient of the paying personal space, the paying center's money people).
    "payment_return": Access.AUTHENTICATED,
    "payment_test_pay": Access.AUTHENTICATED,
    "invoice_pay_card": Access.AUTHENTICATED,  # a center's admins and finance, for its issued invoices
}

ROUTES: dict[str, Access] = {
    **PAGE_ROUTES,
    # Stripe's webhooks: anyone may post, only a valid Stripe-Signature is acted on.
    "stripe_webhook": Access.PUBLIC,
}
