"""The one way to write the audit log, and the check that its hash chain is intact."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.http import HttpRequest

from accounts.models import AuditEvent, Organization, User

GENESIS_HASH = "0" * 64
_CHAIN_LOCK_KEY = 0x52454144524F4F4D  # "READROOM": one advisory lock serialises appends on PostgreSQL


@dataclass(frozen=True)
class RequestContext:
    """Where an action came from (taken from the request when there is one)."""

    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> RequestContext:
        if request is None:
            return cls()
        # REMOTE_ADDR is what the socket saw; behind a proxy, a trusted proxy sets it correctly.
        return cls(ip_address=request.META.get("REMOTE_ADDR") or None,
                   user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:300])


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    request: HttpRequest | None = None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    organization: Organization | None = None,
    reason: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    extra: dict | None = None,
) -> AuditEvent:
    """Append one audit event, chained to the previous one. Never updates an existing row."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "public_id", None) or obj.pk)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    context = RequestContext.from_request(request)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditEvent.objects.order_by("-id").values_list("row_hash", flat=True).first()
        event = AuditEvent(
            actor=actor,
            actor_email=actor.email if actor else "",
            action=action,
            object_type=object_type,
            object_id=object_id,
            organization=organization,
            ip_address=context.ip_address,
            user_agent=context.user_agent,
            reason=reason[:500],
            outcome=outcome,
            extra=extra or {},
            prev_hash=last or GENESIS_HASH,
        )
        event.row_hash = event.compute_hash()
        event.save(force_insert=True)
    return event


def audit_verify_chain() -> list[int]:
    """Return the ids of rows whose hash or link does not match (empty when the log is intact)."""
    broken: list[int] = []
    expected_prev = GENESIS_HASH
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != expected_prev or event.compute_hash() != event.row_hash:
            broken.append(event.id)
        expected_prev = event.row_hash
    return broken
