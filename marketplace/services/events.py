"""What a change of a read request tells the world: in-app and email notices, and the webhook outbox.

Both are written in the caller's transaction. Emails and webhook sends leave only after the commit;
a webhook row that no worker picked up (a worker that died between commit and send) is found and
sent by the relay (``marketplace.webhooks.relay_pending``), so no event is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Notification, Organization, Role, User
from core.links import absolute_url
from marketplace.models import ReadRequest, WebhookDelivery, WebhookEndpoint


def notify(users: Iterable[User], *, title: str, body: str = "", url: str = "", email: bool = True) -> int:
    """One in-app notification per person, and an email after the commit."""
    users = [u for u in users if u is not None and u.is_active]
    Notification.objects.bulk_create([Notification(user=u, title=title[:200], body=body, url=url) for u in users])
    if email and users:
        recipients = [u.email for u in users]
        link = absolute_url(url)
        transaction.on_commit(lambda: [
            send_mail(subject=f"[ReadRoom] {title}", message=f"{body}\n\n{link}".strip(),
                      from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[address], fail_silently=True)
            for address in recipients])
    return len(users)


def center_people(center: Organization, *roles: str) -> list[User]:
    """Active members of the center with one of ``roles`` (admins and technologists by default)."""
    roles = set(roles or (Role.ADMIN, Role.TECHNOLOGIST))
    return [m.user for m in Membership.objects.filter(organization=center, is_active=True, user__is_active=True)
            .select_related("user") if set(m.roles) & roles]


def operations_people() -> list[User]:
    return [m.user for m in Membership.objects.filter(
        organization__kind=Organization.Kind.PLATFORM, is_active=True, user__is_active=True).select_related("user")
        if Role.ADMIN in m.roles]


def request_url(read_request: ReadRequest) -> str:
    return reverse("read_request_detail", args=[read_request.public_id])


def event_payload(read_request: ReadRequest, event_type: str, *, from_status: str = "", reason: str = "",
                  extra: dict | None = None) -> dict:
    """The body of a webhook event: what changed, on which request (no patient data beyond the center's own
    accession number and study UID, which the center already holds)."""
    study = read_request.study
    assignee = read_request.assignee
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "created_at": timezone.now().isoformat(),
        "data": {
            "read_request": {
                "id": str(read_request.public_id),
                "status": read_request.status,
                "kind": read_request.kind,
                "priority": read_request.priority,
                "deadline": read_request.deadline.isoformat(),
                "study_instance_uid": study.study_instance_uid,
                "accession_number": study.accession_number,
                "assignee": assignee.name if assignee else None,
                "quoted_cents": read_request.quoted_cents,
                "currency": read_request.currency,
            },
            "from_status": from_status or None,
            "reason": reason or None,
            **(extra or {}),
        },
    }


def webhook_enqueue(read_request: ReadRequest, event_type: str, *, from_status: str = "", reason: str = "",
                    extra: dict | None = None) -> list[WebhookDelivery]:
    """Write one outbox row per active endpoint of the center, in the caller's transaction; send after commit."""
    endpoints = list(WebhookEndpoint.objects.filter(center_id=read_request.center_id, is_active=True))
    if not endpoints:
        return []
    payload = event_payload(read_request, event_type, from_status=from_status, reason=reason, extra=extra)
    rows = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=endpoint, event_type=event_type, payload=payload) for endpoint in endpoints])
    ids = [row.pk for row in rows]  # PostgreSQL and SQLite both return the new ids from a bulk insert

    def send() -> None:
        from marketplace.tasks import deliver_webhook

        for pk in ids:
            deliver_webhook.delay(pk)

    # robust: the change is committed; a broker that is down must not turn it into an error for the caller
    # (the failure is logged and the relay sends the rows that were not published).
    transaction.on_commit(send, robust=True)
    return rows
