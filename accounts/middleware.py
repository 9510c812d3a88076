"""Request-wide account rules: the actor, session timeouts for PHI roles, and MFA enrollment."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from accounts import policy
from accounts.audit import audit_record
from accounts.mfa import has_totp
from core.api import error_body

LAST_ACTIVITY_KEY = "readroom_last_activity"
LOGIN_AT_KEY = "readroom_login_at"
MFA_OK_KEY = "readroom_mfa_enrolled"

# Paths a user who must enroll in MFA may still reach: sign-in/out, enrollment itself, assets.
MFA_EXEMPT_PREFIXES = ("/accounts/", "/static/", "/healthz", "/favicon.ico", "/invitations/")


def is_machine_request(request) -> bool:
    return request.path.startswith(("/api/", "/dicomweb/"))


class ActiveOrganizationMiddleware:
    """Attach ``request.actor`` (computed lazily, once)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.actor = SimpleLazyObject(lambda: policy.actor_from_request(request))
        return self.get_response(request)


class SessionSecurityMiddleware:
    """End idle sessions of PHI roles (default 15 min) and every session after an absolute limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            session = request.session
            session.setdefault(LOGIN_AT_KEY, now)
            last = session.get(LAST_ACTIVITY_KEY, now)
            actor = policy.actor_from_request(request)
            idle_limit = settings.SESSION_IDLE_TIMEOUT_SECONDS if policy.has_idle_timeout(actor) else None
            expired_idle = idle_limit is not None and now - last > idle_limit
            expired_absolute = now - session[LOGIN_AT_KEY] > settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS
            if expired_idle or expired_absolute:
                why = "idle" if expired_idle else "absolute"
                audit_record(action="auth.session_expired", actor=user, request=request, extra={"why": why})
                logout(request)
                if is_machine_request(request):
                    return JsonResponse(error_body("session_expired", "Your session has ended; sign in again."),
                                        status=401)
                messages.info(request, "Your session ended after a period of inactivity. Please sign in again."
                              if expired_idle else "Your session has ended. Please sign in again.")
                return redirect(f"{reverse('account_login')}?next={request.get_full_path()}")
            session[LAST_ACTIVITY_KEY] = now
        return self.get_response(request)


class MfaEnrollmentMiddleware:
    """A user whose roles touch PHI is sent to enroll TOTP before any other page or API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and not request.path.startswith(MFA_EXEMPT_PREFIXES)
                and not request.session.get(MFA_OK_KEY)):
            needs_mfa = policy.requires_mfa(policy.actor_from_request(request))
            if needs_mfa and not has_totp(user):
                return mfa_enrollment_response(request)
            if needs_mfa:
                request.session[MFA_OK_KEY] = True
        return self.get_response(request)


def mfa_enrollment_response(request):
    message = "Your role gives access to patient data: set up two-factor authentication (TOTP) first."
    if is_machine_request(request):
        return JsonResponse(error_body("mfa_enrollment_required", f"{message} Go to "
                                       f"{reverse('mfa_activate_totp')}."), status=403)
    messages.warning(request, message)
    return redirect(f"{reverse('mfa_activate_totp')}?next={request.get_full_path()}")
