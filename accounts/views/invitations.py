"""Accepting an invitation: signed in with the invited email, or creating the account on the spot."""

from __future__ import annotations

from urllib.parse import urlencode

from allauth.account.internal.flows.login import record_authentication
from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import policy, selectors, services
from accounts.forms import InvitationRegisterForm
from accounts.mfa import has_totp
from accounts.models import PHI_ROLES, Role
from core.errors import ApplicationError, NotFound

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _invalid(request):
    """Unknown, expired, used, revoked and someone else's invitations all look the same."""
    return render(request, "accounts/invitation_invalid.html", status=404)


def _after_joining(request, membership):
    """Make the new organization active; a role that sees patient data goes to TOTP enrollment first."""
    actor = policy.actor_for_user(request.user)
    services.organization_switch_active(actor=actor, request=request, organization=membership.organization)
    roles = ", ".join(Role(r).label for r in membership.roles)
    messages.success(request, f"Welcome to {membership.organization.name}. Your role: {roles}.")
    if PHI_ROLES & set(membership.roles) and not has_totp(request.user):
        return redirect(f"{reverse('mfa_activate_totp')}?{urlencode({'next': reverse('dashboard')})}")
    return redirect("dashboard")


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token):
    try:
        invitation = services.invitation_for_token(token)
    except NotFound:
        return _invalid(request)
    context = {"invitation": invitation, "role_label": Role(invitation.role).label,
               "needs_mfa": invitation.role in PHI_ROLES}

    if request.user.is_authenticated:
        if request.user.email.lower() != invitation.email.lower():
            return _invalid(request)
        if request.method == "POST":
            try:
                membership = services.invitation_accept(token=token, user=request.user, request=request)
            except NotFound:
                return _invalid(request)
            return _after_joining(request, membership)
        return render(request, "accounts/invitation_accept.html", {**context, "mode": "accept"})

    if selectors.account_exists_for_invitation(invitation=invitation):
        login_url = f"{reverse('account_login')}?{urlencode({'next': request.path})}"
        return render(request, "accounts/invitation_accept.html", {**context, "mode": "sign_in",
                                                                   "login_url": login_url})

    form = InvitationRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_register_and_accept(token=token, full_name=form.cleaned_data["full_name"],
                                                           password=form.cleaned_data["password"], request=request)
        except NotFound:
            return _invalid(request)
        except ApplicationError as exc:
            form.add_application_error(exc)
        else:
            login(request, user, backend=MODEL_BACKEND)
            # They just chose this password: record it as allauth's sign-in would, so that enrolling
            # TOTP right now does not ask for the same password again.
            record_authentication(request, user, method="password", email=user.email)
            membership = policy.actor_for_user(user).memberships[invitation.organization_id]
            return _after_joining(request, membership)
    return render(request, "accounts/invitation_accept.html", {**context, "mode": "register", "form": form},
                  status=400 if form.errors else 200)
