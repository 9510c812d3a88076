"""The signed-in person's in-app notifications: the list, mark one read, mark all read.

Thin: each view calls one selector or service of ``accounts.notifications``, which scope every
read and write to the actor (someone else's notification is 404, like a missing one).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import notifications
from accounts.views.common import actor_of, page_errors, safe_next

PAGE_SIZE = 25


def _back(request) -> str:
    return safe_next(request, request.POST.get("next"), reverse("notification_list"))


@login_required
@require_http_methods(["GET"])
@page_errors
def notification_list(request):
    """My notifications, newest first, unread ones highlighted, 25 a page."""
    actor = actor_of(request)
    page = Paginator(notifications.notification_list(actor=actor), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/notifications.html", {"page_obj": page})


@login_required
@require_POST
@page_errors
def notification_mark_read(request, public_id):
    """Mark one of my notifications read."""
    actor = actor_of(request)
    notification = notifications.notification_get(actor=actor, public_id=public_id)
    notifications.notification_mark_read(actor=actor, notification=notification)
    return redirect(_back(request))


@login_required
@require_POST
@page_errors
def notification_mark_all_read(request):
    actor = actor_of(request)
    count = notifications.notifications_mark_all_read(actor=actor)
    if count:
        messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked as read.")
    return redirect(_back(request))
