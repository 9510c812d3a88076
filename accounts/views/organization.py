"""Organization pages: switch, members (roles, removal), invitations, API keys."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import policy, selectors, services
from accounts.forms import ApiKeyCreateForm, InvitationCreateForm, MemberRolesForm, OrganizationSwitchForm
from accounts.mfa import fresh_mfa_required
from accounts.models import Role
from accounts.views.common import (
    active_organization,
    actor_of,
    message_refusal,
    page_errors,
    render_secret_once,
    rule_refusals,
    safe_next,
)
from core.errors import NotFound
from core.timefmt import local_time

PAGE_SIZE = 50


@login_required
@require_POST
@page_errors
def organization_switch(request):
    """Make another of the user's organizations the active one, then go back where they were."""
    form = OrganizationSwitchForm(request.POST)
    if not form.is_valid():
        raise NotFound()
    actor = actor_of(request)
    organization = selectors.organization_get(actor=actor, public_id=form.cleaned_data["organization"])
    services.organization_switch_active(actor=actor, request=request, organization=organization)
    messages.success(request, f"You are now working in {organization.name}.")
    return redirect(safe_next(request, form.cleaned_data.get("next"), reverse("dashboard")))


# --- members ------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def member_list(request):
    actor = actor_of(request)
    organization = active_organization(actor)
    members = selectors.membership_list_with_mfa(actor=actor, organization=organization)
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/members.html", {
        "organization": organization,
        "page_obj": page,
        "can_manage": policy.can_manage_members(actor, organization),
    })


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def member_edit(request, public_id):
    """An admin changes a member's roles."""
    actor = actor_of(request)
    organization = active_organization(actor)
    membership = selectors.membership_get_for_management(actor=actor, organization=organization,
                                                         public_id=public_id)
    form = MemberRolesForm(request.POST or None, initial={"roles": membership.roles})
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.membership_set_roles(actor=actor, membership=membership, roles=form.cleaned_data["roles"],
                                          request=request)
        if call.ok:
            messages.success(request, f"Roles of {membership.user.display_name} saved.")
            return redirect("member_list")
    return render(request, "accounts/member_edit.html", {"organization": organization, "membership": membership,
                                                         "form": form})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def member_remove(request, public_id):
    """An admin removes a member (asks first on GET)."""
    actor = actor_of(request)
    organization = active_organization(actor)
    membership = selectors.membership_get_for_management(actor=actor, organization=organization,
                                                         public_id=public_id)
    errors: list[str] = []
    if request.method == "POST":
        with rule_refusals(lambda exc: errors.append(exc.message)) as call:
            services.membership_deactivate(actor=actor, membership=membership, request=request)
        if call.ok:
            messages.success(request, f"{membership.user.display_name} was removed from {organization.name}.")
            return redirect("member_list")
    return render(request, "accounts/member_remove.html", {"organization": organization, "membership": membership,
                                                           "error": errors[0] if errors else None},
                  status=400 if errors else 200)


# --- invitations ----------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def invitation_list(request):
    """Admins see the organization's invitations and invite someone by email."""
    actor = actor_of(request)
    organization = active_organization(actor)
    invitations = selectors.invitation_list(actor=actor, organization=organization)
    form = InvitationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            invitation, _token = services.invitation_create(
                actor=actor, organization=organization, email=form.cleaned_data["email"],
                role=form.cleaned_data["role"], request=request)
        if call.ok:
            when = local_time(invitation.expires_at, request.user.time_zone)
            messages.success(request, f"Invitation sent to {invitation.email} as {Role(invitation.role).label}. "
                                      f"The link works once and expires on {when}.")
            return redirect("invitation_list")
    page = Paginator(invitations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/invitations.html", {"organization": organization, "form": form,
                                                         "page_obj": page},
                  status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def invitation_revoke(request, public_id):
    actor = actor_of(request)
    organization = active_organization(actor)
    invitation = selectors.invitation_get(actor=actor, organization=organization, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        services.invitation_revoke(actor=actor, invitation=invitation, request=request)
    if call.ok:
        messages.success(request, f"The invitation to {invitation.email} was revoked; its link no longer works.")
    return redirect("invitation_list")


# --- organization API keys ----------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def api_key_list(request):
    actor = actor_of(request)
    organization = active_organization(actor)
    keys = selectors.api_key_list(actor=actor, organization=organization)
    page = Paginator(keys, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/api_keys.html", {"organization": organization, "page_obj": page})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def api_key_create(request):
    """Admins only (404 for others, before anything else); creating a key needs a fresh MFA check."""
    actor = actor_of(request)
    organization = active_organization(actor)
    selectors.api_key_list(actor=actor, organization=organization)  # raises NotFound for non-admins
    return _api_key_create(request, actor=actor, organization=organization)


@fresh_mfa_required
def _api_key_create(request, *, actor, organization):
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            key, secret = services.api_key_create(actor=actor, organization=organization,
                                                  name=form.cleaned_data["name"], roles=form.cleaned_data["roles"],
                                                  request=request)
        if call.ok:
            return render_secret_once(request, title="API key created", credential=key, secret=secret, kind="key",
                                      back_url_name="api_key_list", back_label="Back to API keys")
    return render(request, "accounts/api_key_create.html", {"organization": organization, "form": form},
                  status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def api_key_revoke(request, public_id):
    actor = actor_of(request)
    organization = active_organization(actor)
    key = selectors.api_key_get(actor=actor, organization=organization, public_id=public_id)
    services.api_key_revoke(actor=actor, key=key, request=request)
    messages.success(request, f"API key “{key.name}” was revoked; requests using it are refused from now on.")
    return redirect("api_key_list")
