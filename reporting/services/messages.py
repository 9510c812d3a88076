"""The message thread of a read request: the center asks the radiologist a question, the radiologist answers.

Two sides (``reporting.selectors.thread_side``): the center's admins, technologists and viewers, and the
request's assignee while assigned or after reporting. Operations read the thread (disputes) but do not
write in it. Every message is audited and tells the other side. A patient's second opinion has no
thread: its "center" is the patient's own space, and the patient and the reader talk only through the one
follow-up question (``reporting.patient``).
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace.models import Kind, ReadRequest
from marketplace.services import events
from reporting import policy, selectors
from reporting.models import Message

MAX_MESSAGE_CHARS = 4000


def clean_body(body) -> str:
    """The message as stored: text, no NUL, 1 to 4,000 characters once trimmed."""
    if not isinstance(body, str):
        raise ApplicationError.for_field("body", "The message must be text.")
    if "\x00" in body:
        raise ApplicationError.for_field("body", "The message contains a NUL character, which it cannot hold.")
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise ApplicationError.for_field("body", "Write a message.", code="required")
    if len(body) > MAX_MESSAGE_CHARS:
        raise ApplicationError.for_field(
            "body", f"A message is at most {MAX_MESSAGE_CHARS:,} characters (this has {len(body):,}).",
            code="too_long")
    return body


def closed_thread(read_request: ReadRequest) -> bool:
    """A patient's second opinion: nobody writes in its thread (the patient is reached another way)."""
    return read_request.kind == Kind.SECOND_OPINION


@transaction.atomic
def message_post(*, actor: Actor, read_request: ReadRequest, body: str,
                 request: HttpRequest | None = None) -> Message:
    """Add a message to the request's thread and notify the other side (the assignee, or the center's
    admins and technologists)."""
    side = selectors.thread_side(actor, read_request)
    if side is None or actor.user is None:
        if side is not None or policy.is_operations(actor):
            raise PermissionDenied("Only the center's people and the request's radiologist write in this thread.")
        raise NotFound("Read request not found.")
    if closed_thread(read_request):
        raise ApplicationError("A patient's second opinion has no message thread: the patient may ask you one "
                               "follow-up question after signing, which you answer in the reading workspace.",
                               code="thread_closed", status_code=409)
    body = clean_body(body)
    message = Message.objects.create(read_request=read_request, author=actor.user, from_center=side == "center",
                                     body=body)
    audit_record(action="message.posted", actor=actor.user, request=request, organization_id=read_request.center_id,
                 object_type="reporting.message", object_id=str(message.public_id),
                 extra={"read_request": str(read_request.public_id), "from_center": message.from_center,
                        "chars": len(body)})
    if message.from_center:
        recipients = [read_request.assignee.user] if read_request.assignee_id else []
        title = f"Question from {read_request.center.name}"
    else:
        recipients = events.center_people(read_request.center)
        title = f"Message from the radiologist: {read_request.study.study_description or 'read request'}"
    # The text stays in ReadRoom (it may hold patient details): the notice and its email only point to it.
    events.notify([u for u in recipients if u != actor.user], title=title,
                  body=f"{actor.user.display_name} wrote in the thread of this read request.",
                  url=events.request_url(read_request))
    return message
