"""The one way to write the audit log, and the check that its hash chain is intact."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest

from accounts.models import AuditEvent, Organization, User
from core.sql import in_round_trip, sent_together

logger = logging.getLogger(__name__)

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
    organization_id: int | None = None,
    reason: str = "",
    outcome: str = AuditEvent.Outcome.SUCCESS,
    extra: dict | None = None,
    phi_read: bool = False,
) -> AuditEvent:
    """Append one audit event, chained to the previous one. Never updates an existing row.

    Inside ``core.sql.one_round_trip`` the event is committed with the block's other statements, at its end,
    and comes back without its id and hashes.

    ``phi_read``: the event records a read of patient data (a search, a view, a retrieve), the most frequent
    kind by far. Outside a transaction on PostgreSQL it is committed without waiting for the WAL flush
    (docs/decisions/0007), unless ``AUDIT_PHI_READS_DURABLE`` is set; it is committed before the caller goes
    on either way. Every other event, and any event inside a transaction, waits for its flush."""
    event = _event(action=action, actor=actor, request=request, obj=obj, object_type=object_type, object_id=object_id,
                   organization=organization, organization_id=organization_id, reason=reason, outcome=outcome,
                   extra=extra)
    if connection.vendor == "postgresql" and _tail_matches_model():
        if connection.in_atomic_block:  # a failed append must not abort the caller's transaction
            with transaction.atomic():
                return _append_in_database(event, synchronous=True)  # the caller's writes commit with it
        # One statement: its own transaction (or the round trip's), committed at once.
        return _append_in_database(event, synchronous=not phi_read or settings.AUDIT_PHI_READS_DURABLE)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditEvent.objects.order_by("-id").values_list("row_hash", flat=True).first()
        event.prev_hash = last or GENESIS_HASH
        event.row_hash = event.compute_hash()
        event.save(force_insert=True)
    return event


def audit_record_many(records: list[dict]) -> None:
    """Append several events (each given as ``audit_record``'s keyword arguments) inside the caller's
    transaction, sent to PostgreSQL together: one round trip for a batch, such as a tier of offers' grants.

    Unlike ``audit_record`` there is no savepoint around each append: a failed append fails the caller's
    transaction, so the records and the rows they describe commit together or not at all."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block or not _tail_matches_model():
        for kwargs in records:
            audit_record(**kwargs)
        return
    events = [_event(**kwargs) for kwargs in records]
    with sent_together():
        for event in events:
            _append_in_database(event, synchronous=True)


def _event(*, action: str, actor: User | None = None, request: HttpRequest | None = None, obj=None,
           object_type: str = "", object_id: str = "", organization: Organization | None = None,
           organization_id: int | None = None, reason: str = "", outcome: str = AuditEvent.Outcome.SUCCESS,
           extra: dict | None = None, phi_read: bool = False) -> AuditEvent:
    """The unsaved event ``audit_record`` appends (``phi_read`` only changes how it is committed)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "public_id", None) or obj.pk)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    context = RequestContext.from_request(request)
    return AuditEvent(
        actor=actor,
        actor_email=actor.email if actor else "",
        action=action,
        object_type=object_type,
        object_id=object_id,
        organization_id=organization.pk if organization is not None else organization_id,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        reason=reason[:500],
        outcome=outcome,
        extra=extra or {},
    )


def _payload_tail(event: AuditEvent) -> str:
    """``AuditEvent.compute_hash``'s JSON payload after its first element (the previous hash) and comma:
    the payload is ``'["' + prev_hash + '",' + tail``."""
    return json.dumps(
        [event.created_at.isoformat(), event.actor_id, event.actor_email, event.action, event.object_type,
         event.object_id, event.organization_id, event.ip_address, event.user_agent, event.reason, event.outcome,
         event.extra],
        sort_keys=True, separators=(",", ":"), default=str,
    )[1:]


@functools.cache
def _tail_matches_model() -> bool:
    """Whether ``_payload_tail`` still hashes like ``AuditEvent.compute_hash`` (checked once per process on
    an example with every kind of value; if the model's payload ever changes, appends fall back to the
    Python path rather than write hashes that ``audit_verify_chain`` would reject)."""
    sample = AuditEvent(created_at=datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC), actor_id=7, actor_email="a@b.c",
                        action="x.y", object_type="t", object_id="1.2", organization_id=3, ip_address="::1",
                        user_agent="ü", reason="r", outcome="success", extra={"b": [1, 2.5, None], "a": "é"},
                        prev_hash="f" * 64)
    payload = '["' + sample.prev_hash + '",' + _payload_tail(sample)
    if hashlib.sha256(payload.encode()).hexdigest() == sample.compute_hash():
        return True
    logger.error("the audit payload differs from AuditEvent.compute_hash: appending in Python")
    return False


def _append_in_database(event: AuditEvent, *, synchronous: bool) -> AuditEvent:
    """PostgreSQL: one call to ``readroom_audit_append`` (migrations 0005, 0006) takes the chain lock, reads
    the last hash, hashes and inserts, inside the database: the lock is held for one statement and its
    commit, not across five client round trips. The payload is ``compute_hash``'s, sent without its first
    element (the previous hash, which only the database knows under the lock). ``synchronous`` false: the
    transaction commits without waiting for its WAL flush."""
    field = AuditEvent._meta.get_field("extra")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, event_prev_hash, event_row_hash FROM readroom_audit_append(%s::bigint, %s::text, "
            "%s::timestamptz, %s::bigint, %s::text, %s::text, %s::text, %s::text, %s::bigint, %s::inet, %s::text, "
            "%s::text, %s::text, %s::jsonb, %s::boolean)",
            [_CHAIN_LOCK_KEY, _payload_tail(event), event.created_at, event.actor_id, event.actor_email, event.action,
             event.object_type, event.object_id, event.organization_id, event.ip_address, event.user_agent,
             event.reason, event.outcome, field.get_db_prep_save(event.extra, connection), synchronous],
        )
        if in_round_trip():
            # Sent with the statements around it (core.sql.one_round_trip): it commits, or raises, when they
            # end. Its id and hashes would cost a round trip of their own, and nobody reads them.
            return event
        event.id, event.prev_hash, event.row_hash = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias
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
