"""Small presentation helpers for ReadRoom templates (no queries, no business rules)."""

from __future__ import annotations

import datetime
import json

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from accounts.models import PHI_ROLES, Role

register = template.Library()


@register.filter
def role_label(value: str) -> str:
    """``"technologist"`` → ``"Technologist"`` (unknown values pass through)."""
    try:
        return Role(value).label
    except ValueError:
        return value


@register.filter
def initials(user) -> str:
    """Up to two initials for the avatar: from the full name, else from the email."""
    name = (getattr(user, "full_name", "") or "").strip()
    if name:
        parts = [p for p in name.replace("-", " ").split() if p[:1].isalpha()]
        letters = "".join(p[0] for p in (parts[:1] + parts[-1:] if len(parts) > 1 else parts))
        if letters:
            return letters.upper()
    email = getattr(user, "email", "") or "?"
    return email[:1].upper()


@register.filter
def days_until(value: datetime.date | None) -> int | None:
    """Whole days from today (in the zone being rendered) to ``value``; negative once past."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date()
    return (value - timezone.localdate()).days


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.simple_tag(takes_context=True)
def current(context, *url_names: str) -> SafeString:
    """``aria-current="page"`` when the request resolved to one of ``url_names``."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name in url_names:
        return mark_safe(' aria-current="page"')  # noqa: S308 - a constant string
    return mark_safe("")  # noqa: S308


@register.simple_tag
def outcome_badge(outcome: str) -> SafeString:
    return format_html('<span class="badge badge-{}">{}</span>', outcome, outcome)


@register.filter
def absolute(value):
    try:
        return abs(value)
    except TypeError:
        return value


@register.filter
def code_label(value: str) -> str:
    """``"head_and_neck"`` → ``"Head and neck"`` for stored codes without a label of their own."""
    text = str(value or "").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def sees_phi(roles) -> bool:
    """Whether any of these roles touches patient data (and so must use two-factor authentication)."""
    return bool(PHI_ROLES & set(roles or ()))
