"""Who may see and send studies. Study access is decided here and nowhere else.

- Members of the owning organization see its studies in full by role (admin, technologist,
  radiologist, viewer); finance does not see images.
- A radiologist of another organization sees a study only through an active ``StudyAccessGrant``:
  ``preview`` (de-identified metadata and thumbnails) or ``full``.
- Sending studies (upload, STOW-RS, C-STORE) is for admins and technologists of the center, and
  for its API keys with the technologist role.
- Everyone else: the study does not exist (404).
"""

from __future__ import annotations

from accounts.models import Organization, Role
from accounts.policy import Actor
from core.access import Access

FULL = "full"
PREVIEW = "preview"
STUDY_VIEW_ROLES = frozenset({Role.ADMIN, Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.VIEWER})
STUDY_SEND_ROLES = frozenset({Role.ADMIN, Role.TECHNOLOGIST})


def can_view_own_organization_studies(actor: Actor, organization: Organization | int) -> bool:
    return actor.has_role(organization, *STUDY_VIEW_ROLES)


def can_send_studies(actor: Actor, organization: Organization) -> bool:
    return organization.kind == Organization.Kind.IMAGING_CENTER and actor.has_role(organization, *STUDY_SEND_ROLES)


def can_manage_studies(actor: Actor, organization: Organization | int) -> bool:
    """Edit jurisdiction, delete studies, grant access, see a study's audit trail: center admins."""
    return actor.user is not None and actor.has_role(organization, Role.ADMIN)


def organizations_with_study_view(actor: Actor) -> list[int]:
    return [org_id for org_id, m in actor.memberships.items() if set(m.roles) & STUDY_VIEW_ROLES]


def level_from_grant(grant_level: str | None) -> str | None:
    return grant_level if grant_level in (FULL, PREVIEW) else None


ROUTES: dict[str, Access] = {}
