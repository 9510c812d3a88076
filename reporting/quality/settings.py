"""A center's or a radiology group's peer-review programme: its sampling rate and its QA radiologists, set by
its admins (audited)."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile, Role
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from reporting.quality_models import DEFAULT_REVIEW_BASIS_POINTS, QualitySettings

PROGRAMME_KINDS = (Organization.Kind.IMAGING_CENTER, Organization.Kind.RADIOLOGY_GROUP)


def programme_of(actor: Actor) -> Organization:
    """The admin's active center or group (404 for anyone else)."""
    organization = actor.active_organization
    if (organization is None or organization.kind not in PROGRAMME_KINDS
            or not actor.has_role(organization, Role.ADMIN)):
        raise NotFound()
    return organization


def current(organization: Organization) -> QualitySettings:
    """The programme's settings, unsaved defaults until its admins change them (a group: no sampling)."""
    found = QualitySettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    default = DEFAULT_REVIEW_BASIS_POINTS if organization.kind == Organization.Kind.IMAGING_CENTER else 0
    return QualitySettings(organization=organization, review_basis_points=default)


@transaction.atomic
def quality_settings_update(*, actor: Actor, basis_points: int, qa_radiologists: list[RadiologistProfile],
                            request: HttpRequest | None = None) -> QualitySettings:
    organization = programme_of(actor)
    if not 0 <= basis_points <= 10_000:
        raise ApplicationError.for_field("review_percent", "Between 0 % and 100 %.")
    row, _ = QualitySettings.objects.update_or_create(organization=organization,
                                                      defaults={"review_basis_points": basis_points})
    row.qa_radiologists.set(qa_radiologists)
    audit_record(action="quality.settings_changed", actor=actor.user, request=request, organization=organization,
                 object_type="reporting.qualitysettings", object_id=str(row.public_id),
                 extra={"review_basis_points": basis_points, "qa_radiologists": [p.pk for p in qa_radiologists]})
    return row
