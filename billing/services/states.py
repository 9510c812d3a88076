"""The one shape every billing workflow moves in: lock the row, check its transition table, write, audit."""

from __future__ import annotations

from django.db import models, transaction
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError


@transaction.atomic
def move(row: models.Model, *, to: str, table: dict[str, frozenset[str]], noun: str, actor: Actor | None,
         reason: str = "", fields: dict | None = None, request: HttpRequest | None = None,
         extra: dict | None = None):
    """Move ``row`` (a contract, an invoice) to ``to`` if ``table`` allows it from its locked state; a refused
    move is a 409 naming the current state. Audited as ``<model>.<to>``; the caller's object follows the row."""
    locked = type(row).objects.select_for_update().get(pk=row.pk)
    if to not in table[locked.status]:
        raise ApplicationError(f"This {noun} is {locked.get_status_display().lower()}: it cannot become {to}.",
                               code="invalid_transition", status_code=409,
                               fields={"status": [f"{locked.status} → {to} is not allowed"]})
    from_status, locked.status = locked.status, to
    for name, value in (fields or {}).items():
        setattr(locked, name, value)
    locked.save()
    label = type(row)._meta.model_name
    # Contracts and invoices belong to a center; a payment to its payer.
    owner_id = getattr(locked, "center_id", None) or getattr(locked, "payer_id", None)
    audit_record(action=f"{label}.{to}", actor=actor.user if actor else None, request=request,
                 organization_id=owner_id, object_type=f"billing.{label}", object_id=str(locked.public_id),
                 reason=reason[:500], extra={"from": from_status, "to": to, **(extra or {})})
    row.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked
