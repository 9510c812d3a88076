"""Writes on studies other than ingest (ingest has its own module): grants, jurisdiction, deletion."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from studies import policy
from studies.models import Study, StudyAccessGrant


@transaction.atomic
def study_access_grant_create(*, actor: Actor | None, study: Study, user: User, level: str, reason: str,
                              expires_at: datetime, request: HttpRequest | None = None) -> StudyAccessGrant:
    """Give a radiologist ``preview`` or ``full`` access to one study until ``expires_at``.

    The marketplace calls this when it offers (preview) or assigns (full) a case; until then a
    center admin (or the operator's console, ``actor=None``) does.
    """
    if actor is not None:
        if not policy.can_view_own_organization_studies(actor, study.organization_id):
            raise NotFound("Study not found.")
        if not policy.can_manage_studies(actor, study.organization_id):
            raise PermissionDenied("Only an admin of the center can grant access to its studies.")
    if level not in (policy.FULL, policy.PREVIEW):
        raise ApplicationError.for_field("level", "Choose preview or full.")
    if not (reason or "").strip():
        raise ApplicationError.for_field("reason", "Say why this access is granted.")
    if expires_at <= timezone.now():
        raise ApplicationError.for_field("expires_at", "The expiry must be in the future.")
    grant = StudyAccessGrant.objects.create(user=user, study=study, level=level, reason=reason.strip()[:300],
                                            expires_at=expires_at, granted_by=actor.user if actor else None)
    audit_record(action="study.access_granted", actor=actor.user if actor else None, request=request,
                 organization=study.organization, object_type="studies.study", object_id=study.study_instance_uid,
                 reason=grant.reason, extra={"grantee": user.email, "level": level,
                                             "expires_at": expires_at.isoformat()})
    return grant


@transaction.atomic
def study_access_grant_revoke(*, actor: Actor | None, grant: StudyAccessGrant,
                              request: HttpRequest | None = None) -> None:
    if actor is not None and not policy.can_manage_studies(actor, grant.study.organization_id):
        raise NotFound()
    if grant.revoked_at is None:
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at", "updated_at"])
        audit_record(action="study.access_revoked", actor=actor.user if actor else None, request=request,
                     organization=grant.study.organization, object_type="studies.study",
                     object_id=grant.study.study_instance_uid, extra={"grantee": grant.user.email})


def study_access_record(*, actor: Actor, access, fetched: str, request: HttpRequest | None = None,
                        object_id: str = "") -> None:
    """Audit one access to a study's data: who, which study, at what level, what was fetched."""
    study = access.study
    audit_record(action="study.accessed", actor=actor.user, request=request, organization=study.organization,
                 object_type="studies.study", object_id=object_id or study.study_instance_uid,
                 extra={"level": access.level, "fetched": fetched,
                        **({"api_key": actor.api_key.prefix} if actor.api_key else {})})
