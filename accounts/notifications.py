"""In-app notifications: a person's own notices (reads and writes), always scoped to the actor.

The rows are written by other services (credential expiry reminders, ``accounts.credentials.services``);
this module is what the notifications page, the nav badge and their tests go through. Another
person's notification, like a missing one, is NotFound.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.credentials.models import Notification
from accounts.policy import Actor
from core.errors import NotFound

# --- selectors ----------------------------------------------------------------------------------


def notification_list(*, actor: Actor) -> QuerySet[Notification]:
    """The actor's notifications, newest first (nobody else's; none for a key or anonymous actor)."""
    if actor.user is None:
        return Notification.objects.none()
    return Notification.objects.filter(user=actor.user).order_by("-created_at", "-id")


def notification_get(*, actor: Actor, public_id) -> Notification:
    """One of the actor's notifications; another person's or a missing one is NotFound."""
    notification = notification_list(actor=actor).filter(public_id=public_id).first()
    if notification is None:
        raise NotFound()
    return notification


def notification_unread_count(*, actor: Actor) -> int:
    """How many of the actor's notifications are unread: one COUNT over the (user, read_at) index."""
    if actor.user is None:
        return 0
    return Notification.objects.filter(user=actor.user, read_at__isnull=True).count()


# --- services -----------------------------------------------------------------------------------


@transaction.atomic
def notification_mark_read(*, actor: Actor, notification: Notification) -> Notification:
    """Mark one of the actor's own notifications read; marking a read one again changes nothing."""
    if actor.user is None or notification.user_id != actor.user.pk:
        raise NotFound()
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, actor: Actor) -> int:
    """Mark every unread notification of the actor read, in one UPDATE; returns how many changed."""
    if actor.user is None:
        return 0
    return Notification.objects.filter(user=actor.user, read_at__isnull=True).update(read_at=timezone.now())
