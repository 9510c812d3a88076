"""Presentation helpers of the finance pages: money, percentages, what a reader earns, the nav links."""

from __future__ import annotations

import uuid

from django import template
from django.urls import reverse

from accounts.models import Role
from billing import policy
from billing.models import JournalTransaction
from core.money import format_money

register = template.Library()


@register.filter
def amount(cents, currency="USD") -> str:
    return format_money(int(cents or 0), currency or "USD")


@register.filter
def percent(basis_points) -> str:
    """1500 → ``15 %``; 1250 → ``12.5 %``."""
    value = int(basis_points or 0) / 100
    return f"{value:g} %"


@register.filter
def earning(cents, basis_points) -> int:
    """What the reader earns of ``cents`` at that fee (the ledger's rounding)."""
    cents = int(cents or 0)
    return cents - min(cents, (cents * int(basis_points or 0) + 5_000) // 10_000)


@register.filter
def kind_label(kind: str) -> str:
    try:
        return JournalTransaction.Kind(kind).label
    except ValueError:
        return kind


@register.simple_tag(takes_context=True)
def billing_nav(context) -> dict:
    """Which finance links the signed-in person gets (read from the actor the page already built)."""
    actor = context.get("actor")
    if actor is None or actor.user is None:
        return {}
    money_roles = any(set(m.roles) & policy.MONEY_ROLES for m in actor.memberships.values())
    return {"finance": policy.is_platform_finance(actor), "billing": money_roles,
            "earnings": Role.RADIOLOGIST in actor.all_roles}


@register.filter
def read_url(reference: str) -> str:
    """The read request page of a ledger reference (a read request's public id), or "" for any other."""
    try:
        return reverse("read_request_detail", args=[uuid.UUID(str(reference))])
    except ValueError:
        return ""
