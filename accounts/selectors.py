"""Reads in accounts, always scoped to the actor. A missing scope is an error, not "everything"."""

from __future__ import annotations

from dataclasses import dataclass, field

from allauth.mfa.models import Authenticator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts import policy
from accounts.models import (
    PHI_ROLES,
    AuditEvent,
    Invitation,
    License,
    Membership,
    Organization,
    OrganizationApiKey,
    PersonalApiToken,
    RadiologistProfile,
    Role,
    User,
)
from accounts.policy import Actor
from core.errors import NotFound


def organization_list(*, actor: Actor) -> QuerySet[Organization]:
    """Organizations the actor belongs to; platform operations and finance see every organization."""
    if policy.can_view_every_organization(actor):
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
    """A person's active memberships. An organization key has none (its scope is the key itself)."""
    if actor.user is None:
        return []
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


def organization_get_for_console(*, slug: str) -> Organization:
    """The organization a slug names, for the operator at the server console (management commands) only.

    The console is trusted with every organization, as ``services.api_key_create(actor=None)`` is.
    """
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise NotFound(f'No organization has the slug "{slug}".')
    return organization


# --- pages: members with their MFA status, dashboards, audit-log helpers ---------------------

def _totp_exists():
    return Exists(Authenticator.objects.filter(user_id=OuterRef("user_id"), type=Authenticator.Type.TOTP))


def membership_list_with_mfa(*, actor: Actor, organization: Organization) -> QuerySet[Membership]:
    """The organization's members, each annotated ``has_totp`` (one query, whatever the size)."""
    return membership_list(actor=actor, organization=organization).annotate(has_totp=_totp_exists())


def membership_get_for_management(*, actor: Actor, organization: Organization, public_id) -> Membership:
    """A member as an admin sees it to change roles or remove; to anyone else it does not exist."""
    if not policy.can_manage_members(actor, organization):
        raise NotFound()
    return membership_get(actor=actor, organization=organization, public_id=public_id)


def invitation_list_pending(*, actor: Actor, organization: Organization) -> QuerySet[Invitation]:
    return invitation_list(actor=actor, organization=organization).filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


@dataclass(frozen=True)
class OrganizationSummary:
    """An organization's dashboard: who is in it and, for its admins, what needs looking after."""

    organization: Organization
    member_count: int
    role_counts: dict[str, int]
    phi_members_without_mfa: int
    can_manage: bool
    pending_invitations: list[Invitation] = field(default_factory=list)
    pending_invitation_count: int = 0
    active_api_key_count: int = 0


def organization_summary(*, actor: Actor, organization: Organization) -> OrganizationSummary:
    if not policy.can_view_organization(actor, organization):
        raise NotFound()
    rows = list(Membership.objects.filter(organization=organization, is_active=True)
                .annotate(has_totp=_totp_exists()).values_list("roles", "has_totp"))
    role_counts = {role: 0 for role in Role.values}
    for roles, _ in rows:
        for role in roles:
            role_counts[role] = role_counts.get(role, 0) + 1
    without_mfa = sum(1 for roles, has_totp in rows if not has_totp and PHI_ROLES & set(roles))
    can_manage = policy.can_manage_members(actor, organization)
    summary = {}
    if can_manage:
        pending = invitation_list_pending(actor=actor, organization=organization)
        now = timezone.now()
        summary = {
            "pending_invitations": list(pending[:5]),
            "pending_invitation_count": pending.count(),
            "active_api_key_count": api_key_list(actor=actor, organization=organization)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True).count(),
        }
    return OrganizationSummary(organization=organization, member_count=len(rows), role_counts=role_counts,
                               phi_members_without_mfa=without_mfa, can_manage=can_manage, **summary)


@dataclass(frozen=True)
class SecuritySummary:
    """A person's own sign-in protection: TOTP, recovery codes left, usable API tokens."""

    has_totp: bool
    totp_since: object | None
    recovery_codes_left: int | None
    active_token_count: int


def own_security_summary(*, actor: Actor) -> SecuritySummary:
    if actor.user is None:
        raise NotFound()
    authenticators = {a.type: a for a in Authenticator.objects.filter(user=actor.user)}
    totp = authenticators.get(Authenticator.Type.TOTP)
    codes = authenticators.get(Authenticator.Type.RECOVERY_CODES)
    now = timezone.now()
    tokens = personal_token_list(actor=actor).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now),
                                                     revoked_at__isnull=True)
    return SecuritySummary(
        has_totp=totp is not None,
        totp_since=totp.created_at if totp else None,
        recovery_codes_left=len(codes.wrap().get_unused_codes()) if codes else None,
        active_token_count=tokens.count(),
    )


def radiologist_profile_own(*, actor: Actor) -> RadiologistProfile | None:
    """The actor's own radiologist profile with licenses (soonest expiry first), or None."""
    if actor.user is None:
        return None
    licenses = License.objects.order_by("expires_on", "country", "region")
    return (RadiologistProfile.objects.filter(user=actor.user)
            .prefetch_related(Prefetch("licenses", queryset=licenses)).first())


@dataclass(frozen=True)
class PlatformOverview:
    """What platform operations watch: tenants by kind, people, PHI members without MFA, recent audit."""

    organizations_by_kind: list[tuple[str, int]]
    organization_total: int
    user_total: int
    patient_total: int
    professional_total: int
    phi_members_without_mfa: int
    recent_events: list[AuditEvent]


def platform_overview(*, actor: Actor, recent: int = 8) -> PlatformOverview:
    if not policy.can_view_every_organization(actor):
        raise NotFound()
    counts = dict(Organization.objects.order_by().values_list("kind").annotate(n=Count("id")))
    by_kind = [(label, counts.get(value, 0)) for value, label in Organization.Kind.choices]
    users = User.objects.aggregate(
        total=Count("id"),
        patients=Count("id", filter=Q(kind=User.Kind.PATIENT)),
        professionals=Count("id", filter=Q(kind=User.Kind.PROFESSIONAL)),
    )
    # Roles live in a JSON list, which SQLite cannot search: read the two small columns and count here.
    phi_users = {user_id for user_id, roles in Membership.objects.filter(is_active=True, user__is_active=True)
                 .values_list("user_id", "roles") if PHI_ROLES & set(roles)}
    phi_users |= set(Membership.objects.filter(is_active=True, user__is_active=True,
                                               organization__kind=Organization.Kind.PLATFORM)
                     .values_list("user_id", flat=True))
    enrolled = set(Authenticator.objects.filter(type=Authenticator.Type.TOTP, user_id__in=phi_users)
                   .values_list("user_id", flat=True))
    events = list(audit_event_list(actor=actor)[:recent]) if policy.can_view_audit_log(actor) else []
    return PlatformOverview(
        organizations_by_kind=by_kind,
        organization_total=sum(counts.values()),
        user_total=users["total"],
        patient_total=users["patients"],
        professional_total=users["professionals"],
        phi_members_without_mfa=len(phi_users - enrolled),
        recent_events=events,
    )


def audit_action_names(*, actor: Actor, limit: int = 300) -> list[str]:
    """The distinct action names in the audit log (for the filter's suggestions)."""
    return list(audit_event_list(actor=actor).order_by("action").values_list("action", flat=True)
                .distinct()[:limit])


def account_exists_for_invitation(*, invitation: Invitation) -> bool:
    """Whether the invited email already has an account (then the invitee signs in to accept)."""
    return User.objects.filter(email__iexact=invitation.email).exists()


def audit_chain_broken_rows(*, actor: Actor) -> list[int]:
    """Ids of audit rows whose hash chain does not verify (empty when intact). Reads the whole log."""
    from accounts.audit import audit_verify_chain

    if not policy.can_view_audit_log(actor):
        raise NotFound()
    return audit_verify_chain()
