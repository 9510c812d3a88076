"""Posting a read request, and the one service that changes its state.

``read_request_transition`` locks the row, refuses any move the table ``TRANSITIONS`` does not
allow (naming the current state), saves with ``update_fields``, appends a status-change row and
writes the webhook outbox row in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credentials.vocab import Subspecialty
from accounts.models import Organization, RadiologistProfile
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace import policy, pricing
from marketplace.models import (
    ASSIGNED_STATES,
    FINISHED_STATES,
    REVIEW_KINDS,
    TRANSITIONS,
    Assignment,
    Audience,
    CenterSettings,
    Kind,
    Priority,
    ReadRequest,
    ReadRequestStatusChange,
    Status,
)
from marketplace.services import events, money
from studies.models import Study

# domain.md: stat 60 min, urgent 4 h, routine 24 h, a patient's second opinion 48 h.
DEFAULT_TAT_MINUTES = {Priority.STAT: 60, Priority.URGENT: 240, Priority.ROUTINE: 1440}
SECOND_OPINION_TAT_MINUTES = 2880


# Modalities of objects that are not images to read (reports, presentation states, key objects, ...).
NOT_IMAGING = frozenset({"SR", "PR", "KO", "SEG", "REG", "DOC"})


def imaging_modalities(study: Study) -> list[str]:
    """The study's modalities a radiologist reads (what matching and the quote go by)."""
    return [m for m in study.modalities if m not in NOT_IMAGING]


def _err(field_name: str, message: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError.for_field(field_name, message, code=code)


def center_settings(center: Organization) -> CenterSettings:
    """The center's marketplace settings (created with the defaults on first use)."""
    settings_row, _ = CenterSettings.objects.get_or_create(center=center)
    return settings_row


def turnaround_minutes(center: Organization, *, priority: str, kind: str) -> int:
    """The center's own TAT for this priority, else domain.md's default."""
    row = CenterSettings.objects.filter(center=center).first()
    if kind == Kind.SECOND_OPINION:
        return row.second_opinion_minutes if row else SECOND_OPINION_TAT_MINUTES
    if row is not None:
        return getattr(row, f"{priority}_minutes")
    return DEFAULT_TAT_MINUTES[priority]


def default_deadline(center: Organization, *, priority: str, kind: str, now: datetime) -> datetime:
    """When a request posted ``now`` is due unless the center names a deadline."""
    return now + timedelta(minutes=turnaround_minutes(center, priority=priority, kind=kind))


# --- the state machine ----------------------------------------------------------------------------

@transaction.atomic
def read_request_transition(*, read_request: ReadRequest, to: str, actor: Actor | None, reason: str = "",
                            fields: dict | None = None, request: HttpRequest | None = None) -> ReadRequest:
    """The one way a read request changes state (table ``TRANSITIONS``); ``actor=None`` is the platform's clock.

    ``fields`` are other columns written with the move (e.g. ``assignee``). A refused move is a 409
    naming the current state.
    """
    locked = ReadRequest.objects.select_for_update().get(pk=read_request.pk)
    if to not in TRANSITIONS.get(locked.status, frozenset()):
        raise ApplicationError(
            f"This read request is {locked.get_status_display().lower()}: it cannot become "
            f"{Status(to).label.lower()}.", code="invalid_transition", status_code=409,
            fields={"status": [f"{locked.status} → {to} is not allowed"]})
    from_status = locked.status
    locked.status = to
    changed = ["status", "updated_at"]
    for name, value in (fields or {}).items():
        setattr(locked, name, value)
        changed.append(name)
    locked.save(update_fields=changed)
    actor_user = actor.user if actor is not None else None
    ReadRequestStatusChange.objects.create(read_request=locked, from_status=from_status, to_status=to,
                                           actor=actor_user, reason=(reason or "")[:500])
    audit_record(action=f"read_request.{to}", actor=actor_user, request=request, organization_id=locked.center_id,
                 object_type="marketplace.readrequest", object_id=str(locked.public_id), reason=(reason or "")[:500],
                 extra={"from": from_status, "to": to})
    events.webhook_enqueue(locked, f"read_request.{to}", from_status=from_status, reason=reason)
    if locked.kind == Kind.SECOND_OPINION:
        from marketplace.services.orders import on_request_moved

        on_request_moved(locked, to)  # the patient hears of it in plain words
    # The caller's object follows the row.
    read_request.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


# --- posting ----------------------------------------------------------------------------------------

@dataclass
class PostData:
    """What a center says when it asks for a read (validated by ``read_request_post``)."""

    study: Study
    kind: str = Kind.PRIMARY
    priority: str = Priority.ROUTINE
    subspecialty: str = ""
    clinical_history: str = ""
    reason_for_exam: str = ""
    special_instructions: str = ""
    comparison_studies: list[Study] = field(default_factory=list)
    audience: str = Audience.MARKETPLACE
    preferred_radiologists: list[RadiologistProfile] = field(default_factory=list)
    preferred_groups: list[Organization] = field(default_factory=list)
    widen_after_minutes: int | None = None
    direct_radiologist: RadiologistProfile | None = None
    direct_group: Organization | None = None
    original_request: ReadRequest | None = None
    deadline: datetime | None = None  # else now + the center's TAT for the priority
    publish: bool = True  # False keeps it a draft
    jurisdiction: str = ""  # else the study's; a patient's second opinion: where the patient lives
    levels: int = 1  # 2: a second reader signs before the report is final (a primary read only)
    payer: Organization | None = None  # else the center (a group's own peer-review programme pays itself)

    @classmethod
    def review_of(cls, original: ReadRequest, *, kind: str, priority: str, **fields) -> PostData:
        """A read of ``original``'s study about its report (a second level, an overread, a peer review): the
        same study, subspecialty, history, reason and jurisdiction, pointing back at it."""
        return cls(study=original.study, kind=kind, priority=priority, subspecialty=original.subspecialty,
                   clinical_history=original.clinical_history, reason_for_exam=original.reason_for_exam,
                   original_request=original, jurisdiction=original.jurisdiction, **fields)


def body_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _check_may_post(actor: Actor, center: Organization, study: Study) -> None:
    if study.organization_id != center.pk or study.deleted_at is not None:
        raise NotFound("Study not found.")
    if not policy.can_post(actor, center):
        if center.pk not in actor.memberships:
            raise NotFound("Study not found.")  # another tenant's study looks like a missing one
        raise PermissionDenied("Only admins and technologists of the center post read requests.")


def _validate(center: Organization, data: PostData, now: datetime) -> dict:
    study = data.study
    if data.kind not in Kind.values:
        raise _err("kind", f"Choose one of: {', '.join(Kind.values)}.")
    if data.priority not in Priority.values:
        raise _err("priority", f"Choose one of: {', '.join(Priority.values)}.")
    if data.subspecialty and data.subspecialty not in Subspecialty.values:
        raise _err("subspecialty", f"Unknown subspecialty {data.subspecialty!r}.")
    if data.audience not in Audience.values:
        raise _err("audience", f"Choose one of: {', '.join(Audience.values)}.")
    modalities = imaging_modalities(study)
    if not modalities:
        raise _err("study", "This study has no imaging modality in its index: it cannot be matched to readers.")
    if not (data.jurisdiction or study.jurisdiction_country):
        raise _err("study", "This study has no jurisdiction (where the patient was imaged): set it on the study "
                            "page first.")
    if data.deadline is not None:
        if data.deadline <= now:
            raise _err("deadline", "The deadline is in the past.")
        deadline = data.deadline
    else:
        deadline = default_deadline(center, priority=data.priority, kind=data.kind, now=now)
    original_reader = None
    if data.kind in REVIEW_KINDS and data.original_request is not None:
        original = data.original_request
        if original.study_id != study.pk or (original.center_id != center.pk and data.kind != Kind.SECOND_OPINION):
            raise NotFound("The original read request was not found for this study.")
        if original.status not in (Status.REPORTED, Status.CLOSED):
            raise _err("original_request", f"The original read is {original.get_status_display().lower()}: only "
                                           "a signed report can be overread.", code="not_signed")
        original_reader = original.assignee
    elif data.kind in (Kind.OVERREAD, Kind.PEER_REVIEW):
        raise _err("original_request", "An overread names the signed read it reviews.", code="required")
    if data.levels not in (1, 2):
        raise _err("levels", "A read has one or two levels.")
    if data.levels == 2 and data.kind != Kind.PRIMARY:
        raise _err("levels", "Only a primary read can need a second level.")
    if data.audience == Audience.DIRECT and bool(data.direct_radiologist) == bool(data.direct_group):
        raise _err("direct_radiologist", "A direct request goes to exactly one radiologist or one group.")
    if data.direct_group is not None and data.direct_group.kind != Organization.Kind.RADIOLOGY_GROUP:
        raise _err("direct_group", "Choose a radiology group.")
    if data.audience == Audience.PREFERRED and not (data.preferred_radiologists or data.preferred_groups):
        raise _err("preferred_radiologists", "Name at least one preferred radiologist or group.", code="required")
    for other in data.comparison_studies:
        if (other.organization_id != study.organization_id or other.pk == study.pk
                or other.patient_id != study.patient_id):
            raise _err("comparison_studies", "Comparison studies are the same patient's earlier studies at this "
                                             "center.")
    return {"modalities": modalities, "deadline": deadline, "original_reader": original_reader}


@transaction.atomic
def read_request_post(*, actor: Actor, center: Organization, data: PostData, idempotency_key: str | None = None,
                      idempotency_body: dict | None = None, request: HttpRequest | None = None,
                      now: datetime | None = None) -> tuple[ReadRequest, bool]:
    """A center asks for one study to be read: quote locked, deadline set, then published to offers.

    Returns ``(request, created)``; with an ``idempotency_key`` already used by this center, the first
    request comes back (``created`` False), or 422 when the body differs.
    """
    _check_may_post(actor, center, data.study)
    return read_request_create(actor=actor, center=center, data=data, idempotency_key=idempotency_key,
                               idempotency_body=idempotency_body, request=request, now=now)


@transaction.atomic
def read_request_create(*, actor: Actor, center: Organization, data: PostData, idempotency_key: str | None = None,
                        idempotency_body: dict | None = None, request: HttpRequest | None = None,
                        now: datetime | None = None) -> tuple[ReadRequest, bool]:
    """Post a read request whose asker the caller has already checked (``read_request_post`` for a
    center's people; a paid second-opinion order for its patient, ``actor`` then being the patient)."""
    now = now or timezone.now()
    digest = body_hash(idempotency_body or {}) if idempotency_key else ""
    if idempotency_key:
        earlier = ReadRequest.objects.filter(center=center, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.idempotency_hash != digest:
                raise ApplicationError("This Idempotency-Key was used with a different request body.",
                                       code="idempotency_key_reused", status_code=422)
            return earlier, False
    if data.study.organization_id != center.pk and data.kind != Kind.SECOND_OPINION:
        raise NotFound("Study not found.")
    checked = _validate(center, data, now)
    quote = pricing.quote_for(center=center, modalities=checked["modalities"], priority=data.priority, kind=data.kind,
                              at=now, group=data.direct_group, radiologist=data.direct_radiologist)
    body_part = next((s.body_part_examined for s in data.study.series.all() if s.body_part_examined), "")
    try:
        with transaction.atomic():
            read_request = ReadRequest.objects.create(
                center=center, study=data.study, kind=data.kind, priority=data.priority, deadline=checked["deadline"],
                subspecialty=data.subspecialty, modalities=checked["modalities"], body_part=body_part,
                jurisdiction=data.jurisdiction or data.study.jurisdiction,
                clinical_history=data.clinical_history.strip(),
                reason_for_exam=data.reason_for_exam.strip()[:500],
                special_instructions=data.special_instructions.strip(), posted_by=actor.user,
                audience=data.audience, widen_after_minutes=data.widen_after_minutes,
                direct_radiologist=data.direct_radiologist, direct_group=data.direct_group,
                original_request=data.original_request, original_reader=checked["original_reader"],
                quoted_cents=quote.cents, currency=quote.currency, fee_basis_points=quote.fee_basis_points,
                contract_id=quote.contract_id, levels=data.levels, payer=data.payer,
                idempotency_key=idempotency_key or None,
                idempotency_hash=digest)
    except IntegrityError:
        # Another request with the same key committed meanwhile: answer as for a replay.
        earlier = ReadRequest.objects.filter(center=center, idempotency_key=idempotency_key).first()
        if earlier is None or earlier.idempotency_hash != digest:
            raise ApplicationError("This Idempotency-Key was used with a different request body.",
                                   code="idempotency_key_reused", status_code=422) from None
        return earlier, False
    read_request.comparison_studies.set(data.comparison_studies)
    read_request.preferred_radiologists.set(data.preferred_radiologists)
    read_request.preferred_groups.set(data.preferred_groups)
    audit_record(action="read_request.posted", actor=actor.user, request=request, organization=center,
                 object_type="marketplace.readrequest", object_id=str(read_request.public_id),
                 extra={"study": data.study.study_instance_uid, "priority": data.priority, "kind": data.kind,
                        "quoted_cents": quote.cents, "currency": quote.currency, "band": quote.band,
                        "contract": quote.contract_id,
                        **({"api_key": actor.api_key.prefix} if actor.api_key else {})})
    if data.publish:
        from marketplace.services.offers import read_request_publish

        # The published row (tier, STAT flag) is what the caller gets back.
        read_request = read_request_publish(read_request=read_request, actor=actor, request=request, at=now)
    return read_request, True


@transaction.atomic
def read_request_cancel(*, actor: Actor, read_request: ReadRequest, reason: str,
                        request: HttpRequest | None = None) -> ReadRequest:
    """The center withdraws a request it no longer needs; refused once a report was signed."""
    if not policy.can_cancel(actor, read_request.center_id):
        if policy.can_view_center_requests(actor, read_request.center_id):
            raise PermissionDenied("Only admins and technologists of the center cancel read requests.")
        raise NotFound()
    return read_request_withdraw(actor=actor, read_request=read_request, reason=reason, request=request)


@transaction.atomic
def read_request_withdraw(*, actor: Actor, read_request: ReadRequest, reason: str,
                          request: HttpRequest | None = None) -> ReadRequest:
    """Cancel a request for whoever the caller has checked may (``read_request_cancel``: the center; a
    second-opinion order: its patient, or the clock that refunds it)."""
    reason = (reason or "").strip()
    if not reason:
        raise _err("reason", "Say why the read is no longer needed.", code="required")
    # Judged by the row, not by the caller's copy (a claim may have landed since it was read).
    current = ReadRequest.objects.select_for_update().get(pk=read_request.pk)
    if current.status in FINISHED_STATES:
        raise ApplicationError(f"This read request is {current.get_status_display().lower()}: it can no longer "
                               "be cancelled.", code="invalid_transition", status_code=409,
                               fields={"status": [f"{current.status} → cancelled is not allowed"]})
    was_assigned = current.status in ASSIGNED_STATES
    assignee = current.assignee
    read_request = read_request_transition(read_request=read_request, to=Status.CANCELLED, actor=actor,
                                           reason=reason, fields={"cancel_reason": reason[:500]}, request=request)
    from marketplace.services.offers import end_access

    end_access(read_request, offer_status="withdrawn", assignment_status=Assignment.Status.CANCELLED)
    if was_assigned and assignee is not None:
        money.post_cancelled_after_claim(read_request, assignee)
        events.notify([assignee.user], title="A read you were assigned was cancelled",
                      body=f"{read_request.center.name} cancelled it: {reason}", url=events.request_url(read_request))
    return read_request
