"""Break-glass: emergency access to one study by platform operations (reliability.md, "Access").

For when the normal path cannot wait: a STAT read stuck without an assignee, a center's urgent call
about a study nobody on duty can open. A member of platform operations who has just confirmed their second
factor states a reason and gets ``full`` access to that one study for ``BREAK_GLASS_MINUTES``, through
an ordinary ``StudyAccessGrant`` of kind ``emergency`` (so DICOMweb, the study page and the viewer
treat it like any grant and stop at its end). The start and the stop are audited with the reason
(the stop whether it is ended by hand or by expiry, see ``break_glass_close_expired``), and the
center's admins are told at once, in-app.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Notification, Organization, Role
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from core.timefmt import local_time
from studies.dicom import uid_problem
from studies.models import Study, StudyAccessGrant

MIN_REASON_LENGTH = 20


def can_break_glass(actor: Actor) -> bool:
    """Platform operations only: platform finance never sees a patient's images (design.md, "Tenancy")."""
    return actor.user is not None and actor.is_platform_operations


def _find_study(organization: Organization, study: str) -> Study:
    """The center's study by Study Instance UID or accession number (what a support call quotes)."""
    value = (study or "").strip()
    if not value:
        raise ApplicationError.for_field("study", "Give the study's Study Instance UID or accession number.")
    studies = Study.objects.filter(organization=organization, deleted_at__isnull=True)
    matches = list(studies.filter(study_instance_uid=value)[:2]) if uid_problem(value) is None else []
    if not matches:
        matches = list(studies.filter(accession_number=value)[:2])
    if not matches:
        raise ApplicationError.for_field("study", f"{organization.name} has no study with the UID or accession "
                                                  f"number {value[:64]!r}.")
    if len(matches) > 1:
        raise ApplicationError.for_field("study", f"Accession number {value!r} names several studies at "
                                                  f"{organization.name}: give the Study Instance UID.")
    return matches[0]


@transaction.atomic
def break_glass_start(*, actor: Actor, organization: Organization, study: str, reason: str,
                      request: HttpRequest | None = None) -> StudyAccessGrant:
    """Open emergency ``full`` access to one study of ``organization`` for the actor. Asking again while
    an emergency access to the same study is open returns that one (a double submit opens nothing new)."""
    if not can_break_glass(actor):
        raise NotFound()
    reason = " ".join((reason or "").split())
    if len(reason) < MIN_REASON_LENGTH:
        raise ApplicationError.for_field("reason", f"Say why (at least {MIN_REASON_LENGTH} characters): the "
                                                   "center's admins and the audit log will read it.")
    if organization.kind != Organization.Kind.IMAGING_CENTER:
        raise ApplicationError.for_field("organization", "Emergency access is to an imaging center's studies.")
    target = _find_study(organization, study)
    now = timezone.now()
    open_grant = (StudyAccessGrant.objects.select_for_update()
                  .filter(user=actor.user, study=target, kind=StudyAccessGrant.Kind.EMERGENCY,
                          revoked_at__isnull=True, expires_at__gt=now).first())
    if open_grant is not None:
        return open_grant
    grant = StudyAccessGrant.objects.create(
        user=actor.user, study=target, level=StudyAccessGrant.Level.FULL, kind=StudyAccessGrant.Kind.EMERGENCY,
        reason=reason[:300], expires_at=now + timedelta(minutes=settings.BREAK_GLASS_MINUTES),
        granted_by=actor.user)
    audit_record(action="study.break_glass_started", actor=actor.user, request=request, organization=organization,
                 object_type="studies.study", object_id=target.study_instance_uid, reason=grant.reason,
                 extra={"expires_at": grant.expires_at.isoformat(), "minutes": settings.BREAK_GLASS_MINUTES})
    _tell_center_admins(grant)
    return grant


def _tell_center_admins(grant: StudyAccessGrant) -> None:
    memberships = Membership.objects.filter(organization_id=grant.study.organization_id, user__is_active=True)
    admins = [m.user for m in memberships.select_related("user") if m.has_role(Role.ADMIN)]
    study = grant.study
    Notification.objects.bulk_create([
        Notification(user=admin, url=reverse("study_detail", args=[study.public_id]),
                     title="Emergency access opened to one of your studies",
                     body=(f"{grant.user.display_name} (ReadRoom operations) opened emergency access to study "
                           f"{study.accession_number or study.study_instance_uid} until "
                           f"{local_time(grant.expires_at, admin.time_zone)}. Reason: {grant.reason}"))
        for admin in admins])


@transaction.atomic
def break_glass_end(*, actor: Actor, grant: StudyAccessGrant, request: HttpRequest | None = None) -> None:
    """Close one's own emergency access now (idempotent)."""
    grant = StudyAccessGrant.objects.select_for_update().select_related("study__organization").get(pk=grant.pk)
    if grant.user_id != actor.user.pk or grant.kind != StudyAccessGrant.Kind.EMERGENCY:
        raise NotFound()
    if grant.revoked_at is None and grant.expires_at > timezone.now():
        _close(grant, at=timezone.now(), how="ended", request=request, actor=actor)


def break_glass_close_expired(*, now=None) -> int:
    """Record the stop of every emergency access that ran out (run every few minutes by beat). The access
    itself ended at ``expires_at`` whatever this task does: every check compares with the clock."""
    now = now or timezone.now()
    closed = 0
    expired = StudyAccessGrant.objects.filter(kind=StudyAccessGrant.Kind.EMERGENCY, revoked_at__isnull=True,
                                              expires_at__lte=now).values_list("pk", flat=True)
    for pk in list(expired[:500]):
        with transaction.atomic():
            grant = (StudyAccessGrant.objects.select_for_update().select_related("study__organization", "user")
                     .filter(pk=pk, revoked_at__isnull=True).first())
            if grant is not None:
                _close(grant, at=grant.expires_at, how="expired")
                closed += 1
    return closed


def _close(grant: StudyAccessGrant, *, at, how: str, request=None, actor: Actor | None = None) -> None:
    grant.revoked_at = at
    grant.save(update_fields=["revoked_at", "updated_at"])
    audit_record(action="study.break_glass_ended", actor=actor.user if actor else None, request=request,
                 organization=grant.study.organization, object_type="studies.study",
                 object_id=grant.study.study_instance_uid, reason=grant.reason,
                 extra={"how": how, "user": grant.user.email,
                        "minutes_open": round((at - grant.created_at).total_seconds() / 60, 1)})


def break_glass_list(*, actor: Actor) -> QuerySet[StudyAccessGrant]:
    """The actor's own emergency accesses, newest first (open ones show how long they have left)."""
    if not can_break_glass(actor):
        raise NotFound()
    return (StudyAccessGrant.objects.filter(user=actor.user, kind=StudyAccessGrant.Kind.EMERGENCY)
            .select_related("study__organization").order_by("-created_at"))


def break_glass_get(*, actor: Actor, public_id) -> StudyAccessGrant:
    grant = break_glass_list(actor=actor).filter(public_id=public_id).first()
    if grant is None:
        raise NotFound()
    return grant
