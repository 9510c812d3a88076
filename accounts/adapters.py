"""allauth hooks: who may sign up, where people land, and which authenticators may be removed."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.urls import reverse

from accounts import policy


class AccountAdapter(DefaultAccountAdapter):
    """Open sign-up creates patient accounts; professionals join organizations by invitation."""

    def is_open_for_signup(self, request) -> bool:
        return True

    def get_login_redirect_url(self, request) -> str:
        return reverse("dashboard")


class MfaAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator) -> bool:
        # A PHI role must keep its second factor; it may regenerate recovery codes, not drop TOTP.
        actor = policy.actor_for_user(authenticator.user)
        return not policy.requires_mfa(actor)
