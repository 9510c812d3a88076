"""Who may do what with radiologist profiles and credentials. Deny by default.

(The credentialing rules of ``accounts``; ``accounts.policy`` holds the actor and the route table.)
"""

from __future__ import annotations

from accounts.models import Organization, Role
from accounts.policy import Actor


def is_radiologist(actor: Actor) -> bool:
    """A person with the radiologist role somewhere keeps a profile and credentials of their own."""
    return actor.user is not None and Role.RADIOLOGIST in actor.all_roles


def owns(actor: Actor, profile) -> bool:
    return actor.user is not None and profile.user_id == actor.user.pk


def can_edit_credentials(actor: Actor, profile) -> bool:
    """Radiologists edit their own profile and items only; nobody edits someone else's."""
    return owns(actor, profile)


def can_view_credentials(actor: Actor, profile) -> bool:
    """The owner and platform operations see every item and document of a profile."""
    return owns(actor, profile) or is_verifier(actor)


def is_verifier(actor: Actor) -> bool:
    """Credential verification is platform operations' work (not platform finance's)."""
    return actor.user is not None and actor.is_platform_operations


def can_verify(actor: Actor, profile) -> bool:
    """Operations decide on items, never on their own (a radiologist cannot verify themselves)."""
    return is_verifier(actor) and not owns(actor, profile)


def is_center_admin(actor: Actor, center: Organization) -> bool:
    return (actor.user is not None and center.kind == Organization.Kind.IMAGING_CENTER
            and actor.has_role(center, Role.ADMIN))


def is_center_member(actor: Actor, center: Organization) -> bool:
    """Someone working at this imaging center (any role): may ask who can read for it."""
    return actor.user is not None and center.kind == Organization.Kind.IMAGING_CENTER and \
        center.pk in actor.memberships


def can_manage_privileges(actor: Actor, center: Organization) -> bool:
    """Only an admin of the imaging center itself grants, suspends and revokes its privileges."""
    return is_center_admin(actor, center)


def can_view_group_grid(actor: Actor, group: Organization) -> bool:
    """A radiology group's admins see their members' credential status; so does platform operations."""
    if group.kind != Organization.Kind.RADIOLOGY_GROUP or actor.user is None:
        return False
    return actor.has_role(group, Role.ADMIN) or actor.is_platform_operations


def can_use_directory(actor: Actor) -> bool:
    """Imaging centers (any of their people) and platform operations search the directory."""
    if actor.user is None:
        return False
    return actor.is_platform_operations or any(
        m.organization.kind == Organization.Kind.IMAGING_CENTER for m in actor.memberships.values())


def can_view_public_profile(actor: Actor) -> bool:
    """A radiologist's public profile (verified items only) is for signed-in professionals."""
    return actor.user is not None and bool(actor.memberships)
