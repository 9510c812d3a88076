"""Reads in accounts, always scoped to the actor. A missing scope is an error, not "everything"."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts import policy
from accounts.models import AuditEvent, Invitation, Membership, Organization, OrganizationApiKey, PersonalApiToken
from accounts.policy import Actor
from core.errors import NotFound


def organization_list(*, actor: Actor) -> QuerySet[Organization]:
    """Organizations the actor belongs to; platform staff see every organization."""
    if actor.is_platform_staff:
        return Organization.objects.all()
    return Organization.objects.filter(pk__in=list(actor.memberships))


def organization_get(*, actor: Actor, public_id) -> Organization:
    organization = organization_list(actor=actor).filter(public_id=public_id).first()
    if organization is None:
        raise NotFound()
    return organization


def membership_list(*, actor: Actor, organization: Organization) -> QuerySet[Membership]:
    if not policy.can_view_members(actor, organization):
        raise NotFound()
    return (Membership.objects.filter(organization=organization, is_active=True)
            .select_related("user", "organization").order_by("user__email"))


def membership_get(*, actor: Actor, organization: Organization, public_id) -> Membership:
    membership = membership_list(actor=actor, organization=organization).filter(public_id=public_id).first()
    if membership is None:
        raise NotFound()
    return membership


def my_memberships(*, actor: Actor) -> list[Membership]:
    return sorted(actor.memberships.values(), key=lambda m: m.organization.name)


def invitation_list(*, actor: Actor, organization: Organization) -> QuerySet[Invitation]:
    """Invitations are visible to the organization's admins only; everyone else sees 404."""
    if not policy.can_manage_members(actor, organization):
        raise NotFound()
    return Invitation.objects.filter(organization=organization).select_related("invited_by", "organization")


def invitation_get(*, actor: Actor, organization: Organization, public_id) -> Invitation:
    invitation = invitation_list(actor=actor, organization=organization).filter(public_id=public_id).first()
    if invitation is None:
        raise NotFound()
    return invitation


def api_key_list(*, actor: Actor, organization: Organization) -> QuerySet[OrganizationApiKey]:
    if not policy.can_manage_api_keys(actor, organization):
        raise NotFound()
    return (OrganizationApiKey.objects.filter(organization=organization)
            .select_related("organization", "created_by").order_by("-created_at"))


def api_key_get(*, actor: Actor, organization: Organization, public_id) -> OrganizationApiKey:
    key = api_key_list(actor=actor, organization=organization).filter(public_id=public_id).first()
    if key is None:
        raise NotFound()
    return key


def personal_token_list(*, actor: Actor) -> QuerySet[PersonalApiToken]:
    if actor.user is None:
        return PersonalApiToken.objects.none()
    return PersonalApiToken.objects.filter(user=actor.user).order_by("-created_at")


def personal_token_get(*, actor: Actor, public_id) -> PersonalApiToken:
    token = personal_token_list(actor=actor).filter(public_id=public_id).first()
    if token is None:
        raise NotFound()
    return token


def audit_event_list(*, actor: Actor) -> QuerySet[AuditEvent]:
    """The audit log is for platform operations only."""
    if not policy.can_view_audit_log(actor):
        raise NotFound()
    return AuditEvent.objects.select_related("organization").order_by("-id")
