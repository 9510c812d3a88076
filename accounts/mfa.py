"""MFA rules: who must be enrolled, and the one reusable "fresh MFA" check for sensitive actions."""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse

from core.errors import PermissionDenied


def has_totp(user) -> bool:
    return bool(user and user.is_authenticated and is_mfa_enabled(user, [Authenticator.Type.TOTP]))


def seconds_since_mfa(request: HttpRequest) -> float | None:
    """How long ago this session last passed an MFA check (login or re-authentication)."""
    records = [r for r in get_authentication_records(request, request.user) if r.get("method") == "mfa"]
    if not records:
        return None
    return time.time() - max(r["at"] for r in records)


def has_fresh_mfa(request: HttpRequest, *, max_age: int | None = None) -> bool:
    age = seconds_since_mfa(request)
    return age is not None and age <= (max_age if max_age is not None else settings.FRESH_MFA_SECONDS)


def fresh_mfa_url(next_url: str) -> str:
    return f"{reverse('mfa_reauthenticate')}?{urlencode({'next': next_url})}"


def require_fresh_mfa(request: HttpRequest, *, max_age: int | None = None) -> None:
    """Raise unless the session passed MFA within ``max_age`` seconds (API form of the check)."""
    if not has_fresh_mfa(request, max_age=max_age):
        raise PermissionDenied(
            f"This action needs a fresh MFA check: confirm your code at {reverse('mfa_reauthenticate')} "
            "and retry.", code="mfa_reauthentication_required")


def fresh_mfa_required(view=None, *, max_age: int | None = None):
    """Decorator for page views doing sensitive things (signing, payout details, API keys).

    Sends the user to enter a TOTP code, then back to the same page.
    """

    def decorator(func):
        @wraps(func)
        def wrapper(request, *args, **kwargs):
            if not has_fresh_mfa(request, max_age=max_age):
                return redirect(fresh_mfa_url(request.get_full_path()))
            return func(request, *args, **kwargs)

        return wrapper

    return decorator(view) if view is not None else decorator
