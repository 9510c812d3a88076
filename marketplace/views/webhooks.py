"""Webhook endpoints from the center's marketplace settings page: add, remove, test-send (admins only;
everyone else, and any other center's endpoint, gets 404). The list itself is ``_webhooks.html``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.views.common import active_organization, actor_of, message_refusal, page_errors, rule_refusals
from marketplace import webhooks
from marketplace.models import WebhookDelivery
from marketplace.services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_test,
)

SETTINGS_PAGE = "center_marketplace_settings"


@login_required
@require_POST
@page_errors
def webhook_create(request):
    actor = actor_of(request)
    center = active_organization(actor)
    webhooks.endpoint_list(actor=actor, center=center)  # 404 for anyone who does not manage them
    with rule_refusals(lambda exc: messages.error(
            request, "; ".join(m for ms in exc.fields.values() for m in ms) or exc.message)) as call:
        endpoint = webhook_endpoint_create(actor=actor, center=center, url=request.POST.get("url", ""),
                                           description=request.POST.get("description", ""), request=request)
    if not call.ok:
        return redirect(SETTINGS_PAGE)
    # The secret exists only in this response (never in a message cookie or a later page).
    response = render(request, "marketplace/webhook_secret.html", {"endpoint": endpoint})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@page_errors
def webhook_delete(request, public_id):
    actor = actor_of(request)
    endpoint = webhooks.endpoint_get(actor=actor, center=active_organization(actor), public_id=public_id)
    webhook_endpoint_delete(actor=actor, endpoint=endpoint, request=request)
    messages.success(request, f"Webhook endpoint {endpoint.url} removed; it receives no more events.")
    return redirect(SETTINGS_PAGE)


@login_required
@require_POST
@page_errors
def webhook_test(request, public_id):
    """The "test-send" button: a signed ``ping`` now, and what the endpoint answered."""
    actor = actor_of(request)
    endpoint = webhooks.endpoint_get(actor=actor, center=active_organization(actor), public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        delivery = webhook_endpoint_test(actor=actor, endpoint=endpoint, request=request)
    if call.ok:
        if delivery.status == WebhookDelivery.Status.DELIVERED:
            messages.success(request, f"Test event delivered to {endpoint.url} (HTTP {delivery.last_status_code}).")
        else:
            messages.error(request, f"Test event to {endpoint.url} failed: {delivery.last_error or 'no answer'}. "
                                    "It will be retried.")
    return redirect(SETTINGS_PAGE)
