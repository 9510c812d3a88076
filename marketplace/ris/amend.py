"""A changed order (HL7 XO, issue 23) amends its open read request: clinical history and priority.

The quote locked at posting stands (a reader may have accepted it); a new priority moves the deadline to the
posting time plus the center's turnaround for it (never into the past), and the assignee, if any, is told.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from core.errors import ApplicationError
from marketplace.models import FINISHED_STATES, ReadRequest
from marketplace.services import events
from marketplace.services.requests import turnaround_minutes

SOONEST_DEADLINE = timedelta(minutes=15)  # a later priority change never leaves a read due already


@transaction.atomic
def read_request_amend(*, read_request: ReadRequest, clinical_history: str, priority: str, actor=None,
                       reason: str) -> ReadRequest:
    """Write the order's new clinical history and priority on its read request (refused once finished)."""
    locked = ReadRequest.objects.select_for_update().get(pk=read_request.pk)
    if locked.status in FINISHED_STATES:
        raise ApplicationError(f"This read request is {locked.get_status_display().lower()}: it can no longer "
                               "change.", code="invalid_transition", status_code=409)
    changed: dict[str, object] = {}
    if clinical_history.strip() != locked.clinical_history:
        changed["clinical_history"] = clinical_history.strip()
    if priority != locked.priority:
        now = timezone.now()
        start = locked.published_at or locked.created_at
        due = start + timedelta(minutes=turnaround_minutes(locked.center, priority=priority, kind=locked.kind))
        changed.update(priority=priority, deadline=max(due, now + SOONEST_DEADLINE))
    if not changed:
        return locked
    for name, value in changed.items():
        setattr(locked, name, value)
    locked.save(update_fields=[*changed, "updated_at"])
    audit_record(action="read_request.amended", actor=getattr(actor, "user", None),
                 organization_id=locked.center_id, object_type="marketplace.readrequest",
                 object_id=str(locked.public_id), reason=reason[:500],
                 extra={"fields": sorted(changed), "priority": locked.priority})
    events.webhook_enqueue(locked, "read_request.amended", from_status=locked.status, reason=reason)
    if locked.assignee is not None:
        events.notify([locked.assignee.user], title="A read you are assigned was changed by the center",
                      body=f"Changed: {', '.join(sorted(changed)).replace('_', ' ')}.",
                      url=events.request_url(locked))
    read_request.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked
