"""A person's own settings: profile (name, time zone) and personal API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import PersonalTokenCreateForm, ProfileForm
from accounts.views.common import actor_of, fresh_mfa_if_enrolled, page_errors, render_secret_once, rule_refusals


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def profile(request):
    actor = actor_of(request)
    user = request.user
    form = ProfileForm(request.POST or None, initial={"full_name": user.full_name, "time_zone": user.time_zone})
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.user_update_profile(actor=actor, full_name=form.cleaned_data["full_name"],
                                         time_zone=form.cleaned_data["time_zone"], request=request)
        if call.ok:
            messages.success(request, "Profile saved.")
            return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form, "memberships": selectors.my_memberships(
        actor=actor)}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET"])
@page_errors
def token_list(request):
    actor = actor_of(request)
    page = Paginator(selectors.personal_token_list(actor=actor), 50).get_page(request.GET.get("page"))
    return render(request, "accounts/tokens.html", {"page_obj": page})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
@fresh_mfa_if_enrolled
def token_create(request):
    """Create a personal token; with TOTP enrolled, the person confirms a fresh code first."""
    actor = actor_of(request)
    form = PersonalTokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            token, secret = services.personal_token_create(
                actor=actor, name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data.get("expires_in_days"), request=request)
        if call.ok:
            return render_secret_once(request, title="API token created", credential=token, secret=secret,
                                      kind="token", back_url_name="token_list", back_label="Back to API tokens")
    return render(request, "accounts/token_create.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def token_revoke(request, public_id):
    actor = actor_of(request)
    token = selectors.personal_token_get(actor=actor, public_id=public_id)
    services.personal_token_revoke(actor=actor, token=token, request=request)
    messages.success(request, f"Token “{token.name}” was revoked.")
    return redirect("token_list")
