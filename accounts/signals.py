"""Audit sign-ins, failures and sign-outs; start the session clocks at login."""

import time

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.audit import audit_record
from accounts.models import AuditEvent


@receiver(user_logged_in)
def _on_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        from accounts.middleware import LAST_ACTIVITY_KEY, LOGIN_AT_KEY

        request.session[LOGIN_AT_KEY] = request.session[LAST_ACTIVITY_KEY] = time.time()
    audit_record(action="auth.login", actor=user, request=request)


@receiver(user_login_failed)
def _on_login_failed(sender, credentials, request=None, **kwargs):
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_record(action="auth.login_failed", request=request, outcome=AuditEvent.Outcome.DENIED,
                 extra={"email": email})


@receiver(user_logged_out)
def _on_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action="auth.logout", actor=user, request=request)
