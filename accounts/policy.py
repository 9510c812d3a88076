"""Who may do what, in one place. Services and selectors call these; views never decide.

An ``Actor`` is the acting principal for one request: a user with their memberships, or an
organization API key. Deny is the default: every check answers False unless a rule allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest

from accounts.models import PHI_ROLES, Membership, Organization, OrganizationApiKey, PatientProfile, Role, User
from core.access import Access

ACTIVE_ORG_SESSION_KEY = "readroom_active_org"


@dataclass(frozen=True)
class Actor:
    """The acting principal. ``memberships`` maps organization id → membership (active only)."""

    user: User | None
    memberships: dict[int, Membership] = field(default_factory=dict)
    active_organization: Organization | None = None
    api_key: OrganizationApiKey | None = None
    personal_space_id: int | None = None  # a patient's own images (PatientProfile.space)

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None or self.api_key is not None

    @property
    def is_platform_staff(self) -> bool:
        # People only: an API key of the platform organization is an integration, not operations staff.
        return self.user is not None and any(
            m.organization.kind == Organization.Kind.PLATFORM for m in self.memberships.values())

    @property
    def is_platform_operations(self) -> bool:
        """Operations: the admin role in the platform organization (verification, break-glass, support)."""
        return self._has_platform_role(Role.ADMIN)

    @property
    def is_platform_finance(self) -> bool:
        """Platform finance: money and the audit log, never a patient's images or clinical data."""
        return self._has_platform_role(Role.FINANCE)

    def _has_platform_role(self, role: str) -> bool:
        # Being a member of the platform grants nothing by itself: the role decides (design.md, "Tenancy").
        return self.user is not None and any(
            m.organization.kind == Organization.Kind.PLATFORM and role in m.roles for m in self.memberships.values())

    @property
    def is_patient(self) -> bool:
        return self.user is not None and self.user.kind == User.Kind.PATIENT and not self.memberships

    def roles_in(self, organization: Organization | int | None) -> frozenset[str]:
        if organization is None:
            return frozenset()
        org_id = organization if isinstance(organization, int) else organization.pk
        membership = self.memberships.get(org_id)
        return frozenset(membership.roles) if membership else frozenset()

    def has_role(self, organization: Organization | int | None, *roles: str) -> bool:
        return bool(self.roles_in(organization) & set(roles))

    @property
    def all_roles(self) -> frozenset[str]:
        return frozenset(r for m in self.memberships.values() for r in m.roles)

    @property
    def active_roles(self) -> frozenset[str]:
        return self.roles_in(self.active_organization)

    @property
    def audit_user(self) -> User | None:
        return self.user


ANONYMOUS = Actor(user=None)


def actor_for_user(user: User | None, *, active_org_id: int | None = None) -> Actor:
    """Load the user's active memberships once; pick the active organization (session choice or first)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    memberships = {
        m.organization_id: m
        for m in Membership.objects.filter(user=user, is_active=True).select_related("organization")
    }
    active = memberships.get(active_org_id) if active_org_id else None
    if active is None and memberships:
        active = sorted(memberships.values(), key=lambda m: m.organization.name)[0]
    space_id = None
    if user.kind == User.Kind.PATIENT and not memberships:
        space_id = PatientProfile.objects.filter(user=user).values_list("space_id", flat=True).first()
    return Actor(user=user, memberships=memberships, active_organization=active.organization if active else None,
                 personal_space_id=space_id)


def actor_for_api_key(key: OrganizationApiKey) -> Actor:
    """An organization key acts inside its organization only, with the roles it was given."""
    membership = Membership(organization=key.organization, roles=list(key.roles), is_active=True)
    return Actor(user=None, memberships={key.organization_id: membership},
                 active_organization=key.organization, api_key=key)


def actor_from_request(request: HttpRequest) -> Actor:
    """The actor of a request, computed once. DRF authentication may replace the user later."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, OrganizationApiKey):
        return actor_for_api_key(auth)
    cached = getattr(request, "_readroom_actor", None)
    user = getattr(request, "user", None)
    if cached is not None and cached.user == (user if user and user.is_authenticated else None):
        return cached
    session = getattr(request, "session", None)
    active_org_id = session.get(ACTIVE_ORG_SESSION_KEY) if session is not None else None
    actor = actor_for_user(user, active_org_id=active_org_id)
    request._readroom_actor = actor
    return actor


# --- rules ------------------------------------------------------------------------------------

def requires_mfa(actor: Actor) -> bool:
    """Roles that touch patient data (and platform staff) must have MFA before any such page or API."""
    if actor.user is None:
        return False
    return actor.is_platform_staff or bool(actor.all_roles & PHI_ROLES)


def has_idle_timeout(actor: Actor) -> bool:
    return requires_mfa(actor)


def can_view_every_organization(actor: Actor) -> bool:
    """Operations support every organization and finance bills them: both see all organizations and members."""
    return actor.is_platform_operations or actor.is_platform_finance


def can_view_organization(actor: Actor, organization: Organization) -> bool:
    return can_view_every_organization(actor) or organization.pk in actor.memberships


def can_view_members(actor: Actor, organization: Organization) -> bool:
    return can_view_organization(actor, organization)


def can_manage_members(actor: Actor, organization: Organization) -> bool:
    """Only an admin of the organization itself invites, changes roles or removes members."""
    return actor.user is not None and actor.has_role(organization, Role.ADMIN)


def can_manage_api_keys(actor: Actor, organization: Organization) -> bool:
    return actor.user is not None and actor.has_role(organization, Role.ADMIN)


def can_view_audit_log(actor: Actor) -> bool:
    """Operations and platform finance read (and export, and verify) the audit log."""
    return actor.user is not None and (actor.is_platform_operations or actor.is_platform_finance)


def can_use_admin_site(actor: Actor) -> bool:
    """The admin site edits any row (studies included): operations with ``is_staff`` only, never finance."""
    return actor.user is not None and actor.user.is_staff and actor.is_platform_operations


# --- who may reach each route (held to behaviour by tests/test_route_policy.py) -----------------

ROUTES: dict[str, Access] = {
    # pages
    "dashboard": Access.AUTHENTICATED,
    "organization_switch": Access.AUTHENTICATED,
    "profile": Access.AUTHENTICATED,
    "token_list": Access.AUTHENTICATED,
    "token_create": Access.AUTHENTICATED,
    "token_revoke": Access.AUTHENTICATED,
    "patient_details": Access.AUTHENTICATED,  # patients only (anyone else: 404)
    "notification_list": Access.AUTHENTICATED,  # each person's own notifications only
    "notification_mark_read": Access.AUTHENTICATED,
    "notification_mark_all_read": Access.AUTHENTICATED,
    "member_list": Access.ORG_MEMBER,
    "member_edit": Access.ORG_ADMIN,
    "member_remove": Access.ORG_ADMIN,
    "invitation_list": Access.ORG_ADMIN,
    "invitation_revoke": Access.ORG_ADMIN,
    "api_key_list": Access.ORG_ADMIN,
    "api_key_create": Access.ORG_ADMIN,
    "api_key_revoke": Access.ORG_ADMIN,
    "audit_log": Access.PLATFORM_OVERSIGHT,
    "audit_log_export": Access.PLATFORM_OVERSIGHT,
    "audit_log_verify": Access.PLATFORM_OVERSIGHT,
    "invitation_accept": Access.TOKEN,
    # API
    "api_me": Access.AUTHENTICATED,
    "api_memberships": Access.AUTHENTICATED,
    "api_tokens": Access.AUTHENTICATED,
    "api_token_detail": Access.AUTHENTICATED,
    "api_organizations": Access.AUTHENTICATED,
    "api_organization_detail": Access.ORG_MEMBER,
    "api_organization_activate": Access.ORG_MEMBER,
    "api_members": Access.ORG_MEMBER,
    "api_member_detail": Access.ORG_MEMBER,  # reading; changing roles or removing is admin-only
    "api_invitations": Access.ORG_ADMIN,
    "api_invitation_detail": Access.ORG_ADMIN,
    "api_api_keys": Access.ORG_ADMIN,
    "api_api_key_detail": Access.ORG_ADMIN,
    # credentialing pages (accounts.credentials.policy decides; others' items are 404)
    "credentials_mine": Access.AUTHENTICATED,  # radiologists: their own items
    "credential_add": Access.AUTHENTICATED,
    "credential_edit": Access.AUTHENTICATED,
    "credential_delete": Access.AUTHENTICATED,
    "credential_document_upload": Access.AUTHENTICATED,
    "credential_document": Access.AUTHENTICATED,  # the owner and platform staff
    "onboarding": Access.AUTHENTICATED,
    "onboarding_step": Access.AUTHENTICATED,
    "verification_queue": Access.PLATFORM_OPERATIONS,
    "verification_review": Access.PLATFORM_OPERATIONS,
    "group_credentials": Access.ORG_ADMIN,  # admins of a radiology group
    "center_privileges": Access.ORG_ADMIN,  # admins of an imaging center
    "privilege_grant": Access.ORG_ADMIN,
    "privilege_change": Access.ORG_ADMIN,
    "radiologist_directory": Access.ORG_MEMBER,  # people of imaging centers, platform staff
    "radiologist_profile_public": Access.ORG_MEMBER,  # any professional
    "radiologist_photo": Access.ORG_MEMBER,
    # credentialing API
    "api_my_radiologist_profile": Access.AUTHENTICATED,
    "api_my_radiologist_profile_submit": Access.AUTHENTICATED,
    "api_my_credentials": Access.AUTHENTICATED,
    "api_my_credential_detail": Access.AUTHENTICATED,
    "api_my_credential_documents": Access.AUTHENTICATED,
    "api_verification_queue": Access.PLATFORM_OPERATIONS,
    "api_credential_decision": Access.PLATFORM_OPERATIONS,
    "api_radiologists": Access.ORG_MEMBER,
    "api_radiologist_detail": Access.ORG_MEMBER,
    "api_radiologist_eligibility": Access.ORG_MEMBER,  # people of the active imaging center
    "api_privileges": Access.ORG_ADMIN,
    "api_privilege_detail": Access.ORG_ADMIN,
}

# Routes of installed third-party apps, by name prefix: they apply their own checks, and our
# middleware adds the MFA gate and session timeouts on top.
DELEGATED_ROUTE_PREFIXES: dict[str, str] = {
    "account_": "django-allauth: sign-in, sign-up, password and email pages (public or own account)",
    "mfa_": "django-allauth MFA: own authenticators, signed-in users only",
    "admin:": "Django admin: platform operations with is_staff only (accounts.admin)",
}
