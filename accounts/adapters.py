"""allauth hooks: who may sign up, where people land, and which authenticators may be removed."""

from __future__ import annotations

import time

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import reverse

from accounts import policy


class AccountAdapter(DefaultAccountAdapter):
    """Open sign-up creates patient accounts; professionals join organizations by invitation."""

    def is_open_for_signup(self, request) -> bool:
        return True

    def get_login_redirect_url(self, request) -> str:
        return reverse("dashboard")

    def pre_authenticate(self, request, **credentials) -> None:
        """A locked-out sign-in is answered 429 Too Many Requests (issue 20), not the form again with 200: clients
        and monitoring tell a lock-out from a wrong password by the status. The page says why (allauth's words)."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError as exc:
            if getattr(exc, "code", None) != "too_many_login_attempts":
                raise
            raise ImmediateHttpResponse(render(request, "429.html", {"reason": exc.messages[0]}, status=429)) from exc

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """A sign-in moments ago counts as a re-authentication.

        Without this, a PHI user sent to enroll TOTP right after signing in would be asked for
        the password a second time before the enrollment form.
        """
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        request = self.request
        if request is None or not request.user.is_authenticated:
            return True
        window = account_settings.REAUTHENTICATION_TIMEOUT
        records = get_authentication_records(request, request.user)
        return not any(time.time() - record.get("at", 0) < window for record in records)


class MfaAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator) -> bool:
        # A PHI role must keep its second factor; it may regenerate recovery codes, not drop TOTP.
        actor = policy.actor_for_user(authenticator.user)
        return not policy.requires_mfa(actor)
