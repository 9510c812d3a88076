"""The message thread of a read request ("ask the radiologist a question"): the list and the form.

An htmx fragment that the request's page and the reading workspace load by URL name (GET), and that
posts into itself (POST): htmx gets the fragment back, a browser without it gets the thread as a page.
Access by ``reporting.selectors.message_thread_get`` (404) and ``reporting.services.messages`` (403 for
operations, who read but do not write). Reading the thread is a read of patient data: audited.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.audit import audit_record
from accounts.views.common import actor_of, page_errors, rule_refusals
from reporting import selectors
from reporting.services.messages import MAX_MESSAGE_CHARS, closed_thread, message_post


def _render(request, actor, read_request, *, body: str = "", errors: list[str] | None = None, status: int = 200):
    context = {"rr": read_request, "thread": list(selectors.messages_of(read_request)), "body": body,
               "errors": errors or [], "can_post": selectors.thread_side(actor, read_request) is not None
               and not closed_thread(read_request),
               "max_chars": MAX_MESSAGE_CHARS}
    if request.htmx:
        # htmx swaps only 2xx answers: a refused message comes back as the fragment with its error shown.
        return render(request, "reporting/_messages.html", context)
    return render(request, "reporting/_messages_page.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def read_request_messages(request, public_id):
    actor = actor_of(request)
    read_request = selectors.message_thread_get(actor=actor, public_id=public_id)
    if request.method == "POST":
        errors: list[str] = []
        body = request.POST.get("body", "")
        with rule_refusals(lambda exc: errors.extend([m for ms in exc.fields.values() for m in ms]
                                                     or [exc.message])) as call:
            message_post(actor=actor, read_request=read_request, body=body, request=request)
        if not call.ok:
            return _render(request, actor, read_request, body=body, errors=errors, status=400)
        if not request.htmx:
            return redirect("read_request_messages", public_id=read_request.public_id)
    audit_record(action="read_request.messages_viewed", actor=actor.user, request=request,
                 organization_id=read_request.center_id, object_type="marketplace.readrequest",
                 object_id=str(read_request.public_id), phi_read=True)
    return _render(request, actor, read_request)


urlpatterns = [
    path("reads/<uuid:public_id>/messages/", read_request_messages, name="read_request_messages"),
]
