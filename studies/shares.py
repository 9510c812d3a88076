"""A patient asks an imaging center to share a study with them (issue 17, "Bringing the images").

The center's admins see the request and approve it by choosing the study, which gives the patient a
full ``StudyAccessGrant`` (the study then appears among "My images"), or decline it. Either side can
revoke an approved share: the grant is revoked at once. Every move goes through ``share_transition``
(StudyShareRequest.TRANSITIONS) and is audited at the center.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, Role
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from studies import policy
from studies.models import Study, StudyAccessGrant, StudyShareRequest, StudyShareStatusChange

SHARE_REASON = "shared with the patient"
SHARE_GRANT_DAYS = 10 * 365  # the patient keeps their images until the share is revoked
Status = StudyShareRequest.Status


# --- reads ----------------------------------------------------------------------------------------

def share_centers() -> QuerySet[Organization]:
    """The imaging centers a patient can ask (every center on ReadRoom, by name)."""
    return Organization.objects.filter(kind=Organization.Kind.IMAGING_CENTER).order_by("name")


def _administered_centers(actor: Actor) -> list[int]:
    if actor.user is None:  # an organization's API key answers no patient
        return []
    return [org_id for org_id, m in actor.memberships.items()
            if m.organization.kind == Organization.Kind.IMAGING_CENTER and Role.ADMIN in m.roles]


def can_answer_share_requests(actor: Actor) -> bool:
    """The share-request page is for admins of an imaging center (people, not API keys)."""
    return actor.active_organization is not None and actor.active_organization.pk in _administered_centers(actor)


def share_requests_of_center(*, actor: Actor) -> QuerySet[StudyShareRequest]:
    """The active center's share requests, newest first (its admins only; anyone else: 404)."""
    if not can_answer_share_requests(actor):
        raise NotFound()
    return (StudyShareRequest.objects.filter(center=actor.active_organization)
            .select_related("patient", "study").order_by("-created_at"))


def share_requests_of_patient(*, actor: Actor) -> QuerySet[StudyShareRequest]:
    if not actor.is_patient:
        raise NotFound()
    return StudyShareRequest.objects.filter(patient=actor.user).select_related("center", "study")


def share_get(*, actor: Actor, public_id) -> StudyShareRequest:
    """A share request its patient or the center's admins may act on; anyone else gets 404."""
    condition = Q(center_id__in=_administered_centers(actor))
    if actor.is_patient:
        condition |= Q(patient=actor.user)
    share = (StudyShareRequest.objects.filter(condition, public_id=public_id)
             .select_related("center", "patient", "study", "grant").first())
    if share is None:
        raise NotFound("Share request not found.")
    return share


def share_candidate_studies(*, share: StudyShareRequest, limit: int = 20) -> list[Study]:
    """The center's studies that match what the patient gave (accession number or study date)."""
    match = Q()
    if share.accession_number:
        match |= Q(accession_number__iexact=share.accession_number)
    if share.study_date:
        match |= Q(study_date=share.study_date)
    return list(Study.objects.filter(match, organization_id=share.center_id, deleted_at__isnull=True)
                .order_by("-study_date", "-received_at")[:limit])


# --- the one workflow service ---------------------------------------------------------------------

@transaction.atomic
def share_transition(*, share: StudyShareRequest, to: str, actor: Actor, reason: str = "",
                     request: HttpRequest | None = None, **changes) -> StudyShareRequest:
    """Move a share request along StudyShareRequest.TRANSITIONS (row locked), record who/when/why, audit."""
    share = StudyShareRequest.objects.select_for_update().select_related("center").get(pk=share.pk)
    if not share.can_move_to(to):
        raise ApplicationError(f"This request is {share.get_status_display().lower()}: it cannot become "
                               f"{Status(to).label.lower()}.", code="invalid_transition")
    before = share.status
    share.status = to
    for name, value in changes.items():
        setattr(share, name, value)
    share.save(update_fields=["status", "updated_at", *changes])
    StudyShareStatusChange.objects.create(share_request=share, from_status=before, to_status=to,
                                          changed_by=actor.user, reason=reason[:300])
    audit_record(action=f"study.share_{to}", actor=actor.user, request=request, organization=share.center,
                 obj=share, reason=reason[:500],
                 extra={"patient": share.patient.email, "from": before,
                        **({"study": share.study.study_instance_uid} if share.study_id else {})})
    return share


# --- use cases ------------------------------------------------------------------------------------

@transaction.atomic
def share_request_create(*, actor: Actor, center_public_id, accession_number: str, study_date: dt.date | None,
                         note: str = "", request: HttpRequest | None = None) -> StudyShareRequest:
    """A patient asks a center to share a study, named by accession number or study date (one is needed)."""
    if not actor.is_patient:
        raise NotFound()
    center = share_centers().filter(public_id=center_public_id).first() if center_public_id else None
    if center is None:
        raise ApplicationError.for_field("center", "Choose the imaging center from the list.")
    accession_number = (accession_number or "").strip()[:16]
    if not accession_number and study_date is None:
        raise ApplicationError.for_field("accession_number", "Give the accession number or the study date, so the "
                                                             "center can find your study.")
    if study_date is not None and study_date > timezone.localdate():
        raise ApplicationError.for_field("study_date", "The study date cannot be in the future.")
    share = StudyShareRequest.objects.create(patient=actor.user, center=center, accession_number=accession_number,
                                             study_date=study_date, note=(note or "").strip()[:300])
    StudyShareStatusChange.objects.create(share_request=share, to_status=Status.REQUESTED, changed_by=actor.user)
    audit_record(action="study.share_requested", actor=actor.user, request=request, organization=center, obj=share,
                 extra={"accession_number": accession_number,
                        "study_date": study_date.isoformat() if study_date else ""})
    return share


def _check_center_admin(actor: Actor, share: StudyShareRequest) -> None:
    if share.center_id not in _administered_centers(actor):
        raise NotFound("Share request not found.")


@transaction.atomic
def share_request_approve(*, actor: Actor, share: StudyShareRequest, study_public_id,
                          request: HttpRequest | None = None) -> StudyShareRequest:
    """A center admin shares the chosen study of the center with the patient: a full grant, audited."""
    _check_center_admin(actor, share)
    study = Study.objects.filter(public_id=study_public_id, organization_id=share.center_id,
                                 deleted_at__isnull=True).first() if study_public_id else None
    if study is None:
        raise ApplicationError.for_field("study", "Choose one of the center's studies to share.")
    if not share.can_move_to(Status.APPROVED):
        raise ApplicationError("This request has already been answered.", code="invalid_transition")
    from studies.services import study_access_grant_create

    grant = study_access_grant_create(actor=actor, study=study, user=share.patient, level=policy.FULL,
                                      reason=SHARE_REASON, expires_at=timezone.now() + timedelta(days=SHARE_GRANT_DAYS),
                                      request=request)
    return share_transition(share=share, to=Status.APPROVED, actor=actor, request=request, study=study,
                            grant=grant, decided_at=timezone.now())


def share_request_decline(*, actor: Actor, share: StudyShareRequest, reason: str,
                          request: HttpRequest | None = None) -> StudyShareRequest:
    """A center admin declines with a reason the patient sees (e.g. no such study here)."""
    _check_center_admin(actor, share)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError.for_field("reason", "Tell the patient why (they see this).")
    return share_transition(share=share, to=Status.DECLINED, actor=actor, reason=reason, request=request,
                            decided_at=timezone.now())


@transaction.atomic
def share_revoke(*, actor: Actor, share: StudyShareRequest, request: HttpRequest | None = None) -> StudyShareRequest:
    """The center's admins or the patient end an approved share: the patient's grant is revoked at once."""
    is_patient = actor.is_patient and share.patient_id == actor.user.pk
    if not is_patient and share.center_id not in _administered_centers(actor):
        raise NotFound("Share request not found.")
    if share.status != Status.APPROVED:
        raise ApplicationError("Only a study that is shared can stop being shared.", code="invalid_transition")
    share = share_transition(share=share, to=Status.REVOKED, actor=actor, request=request,
                             reason="revoked by the patient" if is_patient else "revoked by the center")
    grant = StudyAccessGrant.objects.select_for_update().filter(pk=share.grant_id, revoked_at__isnull=True).first()
    if grant is not None:
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at", "updated_at"])
        audit_record(action="study.access_revoked", actor=actor.user, request=request, organization=share.center,
                     object_type="studies.study", object_id=share.study.study_instance_uid if share.study else "",
                     extra={"grantee": share.patient.email, "share": str(share.public_id)})
    return share
