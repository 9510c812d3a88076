"""Writes on studies other than ingest (ingest has its own module): grants, jurisdiction, deletion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record, audit_record_many
from accounts.credentials.vocab import clean_jurisdiction
from accounts.models import User
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from studies import policy
from studies.models import Instance, OriginalReport, Study, StudyAccessGrant

logger = logging.getLogger(__name__)


@transaction.atomic
def study_access_grant_create(*, actor: Actor | None, study: Study, user: User, level: str, reason: str,
                              expires_at: datetime, request: HttpRequest | None = None,
                              hide_reports: bool = False) -> StudyAccessGrant:
    """Give a radiologist ``preview`` or ``full`` access to one study until ``expires_at``.

    The marketplace calls this when it assigns (full) a case; until then a center admin (or the operator's
    console, ``actor=None``) does. ``hide_reports``: a blinded peer reviewer, who must not see the study's
    signed reports (they name their reader).
    """
    if actor is not None:
        if not policy.can_view_own_organization_studies(actor, study.organization_id):
            raise NotFound("Study not found.")
        if not policy.can_manage_studies(actor, study.organization_id):
            raise PermissionDenied("Only an admin of the center can grant access to its studies.")
    return study_access_grants_create(actor=actor, study=study, users=[user], level=level, reason=reason,
                                      expires_at=expires_at, request=request, hide_reports=hide_reports)[0]


@transaction.atomic
def study_access_grants_create(*, actor: Actor | None, study: Study, users: list[User], level: str, reason: str,
                               expires_at: datetime, request: HttpRequest | None = None,
                               hide_reports: bool = False) -> list[StudyAccessGrant]:
    """The same grant to several users at once (the marketplace offering a read to a tier of readers): one
    INSERT and one audit record per grant, sent together. No policy check: callers are operator-level
    (``actor=None``) or ``study_access_grant_create``, which checks first."""
    if level not in (policy.FULL, policy.PREVIEW):
        raise ApplicationError.for_field("level", "Choose preview or full.")
    if not (reason or "").strip():
        raise ApplicationError.for_field("reason", "Say why this access is granted.")
    if expires_at <= timezone.now():
        raise ApplicationError.for_field("expires_at", "The expiry must be in the future.")
    reason = reason.strip()[:300]
    granted_by = actor.user if actor else None
    grants = StudyAccessGrant.objects.bulk_create([
        StudyAccessGrant(user=user, study=study, level=level, reason=reason, expires_at=expires_at,
                         granted_by=granted_by, hide_reports=hide_reports) for user in users])
    audit_record_many([
        dict(action="study.access_granted", actor=granted_by, request=request, organization_id=study.organization_id,
             object_type="studies.study", object_id=study.study_instance_uid, reason=reason,
             extra={"grantee": grant.user.email, "level": level, "expires_at": expires_at.isoformat()})
        for grant in grants])
    return grants


@transaction.atomic
def study_access_grant_revoke(*, actor: Actor | None, grant: StudyAccessGrant,
                              request: HttpRequest | None = None) -> None:
    if actor is not None and not policy.can_manage_studies(actor, grant.study.organization_id):
        raise NotFound()
    study_access_grants_revoke(actor=actor, grants=[grant], request=request)


@transaction.atomic
def study_access_grants_revoke(*, actor: Actor | None, grants: list[StudyAccessGrant | None],
                               request: HttpRequest | None = None) -> None:
    """End several grants at once (a claimed read's other offers): one UPDATE and one audit record per grant
    ended, sent together; ``None`` and grants already revoked are passed over. Load each grant's study and
    user with it (``select_related``). No policy check, as for ``study_access_grants_create``."""
    live = [grant for grant in grants if grant is not None and grant.revoked_at is None]
    if not live:
        return
    now = timezone.now()
    StudyAccessGrant.objects.filter(pk__in=[grant.pk for grant in live], revoked_at__isnull=True).update(
        revoked_at=now, updated_at=now)
    for grant in live:
        grant.revoked_at = grant.updated_at = now
    audit_record_many([
        dict(action="study.access_revoked", actor=actor.user if actor else None, request=request,
             organization_id=grant.study.organization_id, object_type="studies.study",
             object_id=grant.study.study_instance_uid, extra={"grantee": grant.user.email})
        for grant in live])


def study_access_record(*, actor: Actor, access, fetched: str, request: HttpRequest | None = None,
                        object_id: str = "") -> None:
    """Audit one access to a study's data: who, which study, at what level, what was fetched."""
    study = access.study
    audit_record(action="study.accessed", actor=actor.user, request=request, organization_id=study.organization_id,
                 object_type="studies.study", object_id=object_id or study.study_instance_uid,
                 extra={"level": access.level, "fetched": fetched,
                        **({"api_key": actor.api_key.prefix} if actor.api_key else {})}, phi_read=True)


def viewer_session_record(*, actor: Actor, accesses: list, route: str, request: HttpRequest | None = None) -> None:
    """Audit the opening of a viewer session: who opened which study (each one), when, in which viewer mode.
    The images the viewer then fetches are audited request by request by DICOMweb."""
    for access in accesses:
        study = access.study
        audit_record(action="study.viewer_opened", actor=actor.user, request=request,
                     organization_id=study.organization_id,
                     object_type="studies.study", object_id=study.study_instance_uid,
                     extra={"level": access.level, "viewer": "ohif", "mode": route[:40],
                            "studies": len(accesses)})


# --- study pages: jurisdiction, soft delete / restore / purge, list access ---------------------


def _check_manage(actor: Actor, study: Study, what: str) -> None:
    if not policy.can_view_own_organization_studies(actor, study.organization_id) \
            and not policy.can_manage_studies(actor, study.organization_id):
        raise NotFound("Study not found.")
    if not policy.can_manage_studies(actor, study.organization_id):
        raise PermissionDenied(f"Only an admin of the center can {what}.")


@transaction.atomic
def study_update_jurisdiction(*, actor: Actor, study: Study, country: str, region: str,
                              request: HttpRequest | None = None) -> Study:
    """A center admin corrects where the patient was imaged (the marketplace matches licenses on it).

    Country: ISO 3166-1 alpha-2 ("US"); region: the state or province code ("TX", "ON"), required
    where licenses are issued per state or province.
    """
    _check_manage(actor, study, "change a study's jurisdiction")
    country, region = clean_jurisdiction(country, region)
    study = Study.objects.select_for_update().get(pk=study.pk)
    before = study.jurisdiction
    if (study.jurisdiction_country, study.jurisdiction_region) == (country, region):
        return study
    study.jurisdiction_country, study.jurisdiction_region = country, region
    study.save(update_fields=["jurisdiction_country", "jurisdiction_region", "updated_at"])
    audit_record(action="study.jurisdiction_changed", actor=actor.user, request=request,
                 organization=study.organization, object_type="studies.study", object_id=study.study_instance_uid,
                 extra={"from": before, "to": study.jurisdiction})
    return study


def study_purge_after(study: Study) -> datetime | None:
    """When a soft-deleted study's files and rows may be purged (None while it is not deleted)."""
    if study.deleted_at is None:
        return None
    return study.deleted_at + timedelta(days=settings.STUDY_RETENTION_DAYS)


# Higher layers (the marketplace's second-opinion orders) refuse a deletion while something open depends on the
# study; studies cannot import them, so they register a guard at start-up: guard(study) → a refusal or None.
_DELETE_GUARDS: list[Callable[[Study], str | None]] = []


def register_delete_guard(guard: Callable[[Study], str | None]) -> None:
    """Register ``guard(study) -> str | None``: a message refuses the study's deletion with that message."""
    if guard not in _DELETE_GUARDS:
        _DELETE_GUARDS.append(guard)


def study_delete_refusal(study: Study) -> str | None:
    """The first registered guard's reason to keep this study, or None when it may be deleted."""
    for guard in _DELETE_GUARDS:
        message = guard(study)
        if message:
            return message
    return None


@transaction.atomic
def study_soft_delete(*, actor: Actor, study: Study, reason: str, request: HttpRequest | None = None) -> Study:
    """A center admin deletes a study: it disappears from every list, search and DICOMweb answer at once,
    while its files are kept for ``STUDY_RETENTION_DAYS`` (restorable until then), then purged."""
    _check_manage(actor, study, "delete a study")
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError.for_field("reason", "Say why the study is deleted.")
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.deleted_at is not None:
        raise ApplicationError("This study is already deleted.", code="already_deleted")
    refusal = study_delete_refusal(study)
    if refusal:
        raise ApplicationError(refusal, code="delete_guarded")
    study.deleted_at = timezone.now()
    study.deleted_by = actor.user
    study.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    audit_record(action="study.deleted", actor=actor.user, request=request, organization=study.organization,
                 object_type="studies.study", object_id=study.study_instance_uid, reason=reason[:500],
                 extra={"purge_after": study_purge_after(study).isoformat()})
    return study


@transaction.atomic
def study_restore(*, actor: Actor, study: Study, request: HttpRequest | None = None) -> Study:
    """A center admin brings back a soft-deleted study while it is inside the retention window."""
    _check_manage(actor, study, "restore a study")
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.deleted_at is None:
        raise ApplicationError("This study is not deleted.", code="not_deleted")
    if study_purge_after(study) <= timezone.now():
        raise ApplicationError("The retention window of this study has passed: it is being purged and cannot be "
                               "restored.", code="retention_passed")
    deleted_at = study.deleted_at
    study.deleted_at = None
    study.deleted_by = None
    study.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    audit_record(action="study.restored", actor=actor.user, request=request, organization=study.organization,
                 object_type="studies.study", object_id=study.study_instance_uid,
                 extra={"deleted_at": deleted_at.isoformat()})
    return study


@dataclass
class PurgeResult:
    studies: int = 0
    instances: int = 0
    files: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)


def study_purge_expired(*, now: datetime | None = None, limit: int = 100) -> PurgeResult:
    """Remove the files and rows of studies soft-deleted more than ``STUDY_RETENTION_DAYS`` ago.

    Run by a scheduled task (operator level, no actor). Idempotent: a study is purged in its own
    transaction with its row locked, re-checked first (a restore or new images may have revived it),
    files before rows, so a crash leaves at worst a deleted study whose files are partly gone (the
    next run finishes it), never a file without its row.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.STUDY_RETENTION_DAYS)
    result = PurgeResult()
    candidates = list(Study.objects.filter(deleted_at__lt=cutoff).order_by("deleted_at")
                      .values_list("pk", flat=True)[:limit])
    for study_id in candidates:
        try:
            _purge_one(study_id, cutoff, result)
        except Exception:  # one study's storage failure must not stop the others; it is retried next run
            logger.exception("purging study %s failed; it stays deleted and is retried next run", study_id)
            result.failed.append(str(study_id))
    return result


@transaction.atomic
def _purge_one(study_id: int, cutoff: datetime, result: PurgeResult) -> None:
    study = Study.objects.select_for_update().filter(pk=study_id, deleted_at__lt=cutoff).first()
    if study is None:
        return  # restored (or already purged) meanwhile
    instances = list(Instance.objects.filter(study=study).values_list("storage_key", "size"))
    reports = list(OriginalReport.objects.filter(study=study).values_list("file", "size"))  # a patient's upload
    for key, size in instances + reports:
        if default_storage.exists(key):
            default_storage.delete(key)
            result.files += 1
            result.bytes += size
    organization, uid = study.organization, study.study_instance_uid
    deleted_at, deleted_by = study.deleted_at, study.deleted_by_id
    study.delete()  # series, instances and grants go with it
    result.studies += 1
    result.instances += len(instances)
    audit_record(action="study.purged", organization=organization, object_type="studies.study", object_id=uid,
                 extra={"deleted_at": deleted_at.isoformat(), "deleted_by": deleted_by, "instances": len(instances),
                        "retention_days": settings.STUDY_RETENTION_DAYS})


def study_list_access_record(*, actor: Actor, rows: list, filters: dict, request: HttpRequest | None = None) -> None:
    """Audit one view of the study list: which studies were shown with patient data (one row per page view)."""
    shown = [row.study_instance_uid for row in rows if row.is_full]
    if not shown:
        return
    audit_record(action="study.list_viewed", actor=actor.user, request=request,
                 organization=actor.active_organization, object_type="studies.study",
                 extra={"studies": shown, "filters": filters,
                        **({"api_key": actor.api_key.prefix} if actor.api_key else {})}, phi_read=True)
