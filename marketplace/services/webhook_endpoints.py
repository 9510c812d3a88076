"""A center's webhook endpoints: add one (the address rule), remove one, send it a test event. Admins only."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace import policy, webhooks
from marketplace.models import WebhookDelivery, WebhookEndpoint

MAX_ENDPOINTS = 10


def _require_admin(actor: Actor, center: Organization | None) -> None:
    if center is None or not policy.can_manage_webhooks(actor, center):
        raise NotFound()


@transaction.atomic
def webhook_endpoint_create(*, actor: Actor, center: Organization, url: str, description: str = "",
                            request: HttpRequest | None = None) -> WebhookEndpoint:
    """Add an endpoint that will receive every state change of the center's read requests.

    The URL must be https in production (and whenever private addresses are refused), and its host must
    not be or resolve to a private, loopback, link-local, multicast or reserved address unless
    ``WEBHOOK_ALLOW_PRIVATE``. The secret is generated here; the caller shows it once."""
    _require_admin(actor, center)
    url = (url or "").strip()
    if len(url) > WebhookEndpoint._meta.get_field("url").max_length:
        raise ApplicationError.for_field("url", "The URL is too long (at most 500 characters).")
    webhooks.check_url(url)
    description = (description or "").strip()
    if len(description) > 200:
        raise ApplicationError.for_field("description", "At most 200 characters.")
    if WebhookEndpoint.objects.filter(center=center, is_active=True).count() >= MAX_ENDPOINTS:
        raise ApplicationError.for_field("url", f"A center has at most {MAX_ENDPOINTS} webhook endpoints.",
                                         code="too_many_endpoints")
    endpoint = WebhookEndpoint.objects.create(center=center, url=url, description=description,
                                              created_by=actor.user)
    audit_record(action="webhook_endpoint.created", actor=actor.audit_user, request=request, obj=endpoint,
                 organization=center, extra={"url": url})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Actor, endpoint: WebhookEndpoint, request: HttpRequest | None = None) -> None:
    """Deactivate the endpoint (its delivery log stays for the audit); what it had not yet received is
    given up rather than sent to an address the center removed."""
    _require_admin(actor, endpoint.center)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if not locked.is_active:
        raise NotFound()
    locked.is_active = False
    locked.save(update_fields=["is_active", "updated_at"])
    given_up = WebhookDelivery.objects.filter(endpoint=locked, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED, last_error="The endpoint was removed.")
    endpoint.is_active = False
    audit_record(action="webhook_endpoint.deleted", actor=actor.audit_user, request=request, obj=locked,
                 organization=locked.center, extra={"url": locked.url, "pending_given_up": given_up})


def webhook_endpoint_test(*, actor: Actor, endpoint: WebhookEndpoint,
                          request: HttpRequest | None = None) -> WebhookDelivery:
    """Queue a ``ping`` event for this endpoint and send it now (the "test-send" button). The row is an
    ordinary outbox row: if this send fails, the relay retries it like any other."""
    _require_admin(actor, endpoint.center)
    if not endpoint.is_active:
        raise NotFound()
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_type="ping", next_attempt_at=now, payload={
            "id": str(uuid.uuid4()),
            "type": "ping",
            "created_at": now.isoformat(),
            "data": {"endpoint": {"id": str(endpoint.public_id), "url": endpoint.url},
                     "center": {"id": str(endpoint.center.public_id), "name": endpoint.center.name}},
        })
        audit_record(action="webhook_endpoint.tested", actor=actor.audit_user, request=request, obj=endpoint,
                     organization=endpoint.center, extra={"delivery": str(delivery.event_id)})
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    return delivery
