"""Who may do what with reports. Deny by default; views never decide.

- The assignee of a read request writes its report, releases it as preliminary (STAT), signs it,
  adds addenda to it once final, and flags a critical result when signing.
- The center's admins, technologists and viewers read its reports (preliminary and final, never a
  draft), acknowledge critical results, and write in the request's message thread; finance does not
  (reports are clinical).
- Platform operations read every report and every critical result (escalation), never write one.
- A center's or group's admins edit their own templates; platform operations edit the platform's.
"""

from __future__ import annotations

from accounts.models import Organization, Role
from accounts.policy import Actor
from core.access import Access
from marketplace import policy as marketplace_policy

CENTER_READ_ROLES = marketplace_policy.VIEW_ROLES
ACKNOWLEDGE_ROLES = frozenset({Role.ADMIN, Role.TECHNOLOGIST})


def center_reads_reports(actor: Actor, center_id: int) -> bool:
    return actor.has_role(center_id, *CENTER_READ_ROLES)


def can_acknowledge(actor: Actor, center_id: int) -> bool:
    return actor.user is not None and actor.has_role(center_id, *ACKNOWLEDGE_ROLES)


def is_operations(actor: Actor) -> bool:
    return marketplace_policy.is_operations(actor)


def can_edit_template_of(actor: Actor, owner: Organization | None) -> bool:
    """Platform templates: operations; an organization's own: its admins."""
    if actor.user is None:
        return False
    if owner is None:
        return is_operations(actor)
    return owner.kind in (Organization.Kind.IMAGING_CENTER, Organization.Kind.RADIOLOGY_GROUP) and actor.has_role(
        owner, Role.ADMIN)


# One block per area (each module of reporting/views and reporting/api adds its own names here).
WORKSPACE_ROUTES: dict[str, Access] = {}
CENTER_ROUTES: dict[str, Access] = {}
CRITICAL_ROUTES: dict[str, Access] = {}
TEMPLATE_ROUTES: dict[str, Access] = {}
API_ROUTES: dict[str, Access] = {}

ROUTES: dict[str, Access] = {**WORKSPACE_ROUTES, **CENTER_ROUTES, **CRITICAL_ROUTES, **TEMPLATE_ROUTES, **API_ROUTES}
