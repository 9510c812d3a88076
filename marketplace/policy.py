"""Who may do what with read requests, offers and assignments. Deny by default; views never decide.

- Admins and technologists of an imaging center (and its API keys with those roles) post and
  cancel its read requests; its admins, technologists and viewers see them (finance does not:
  requests carry clinical history).
- A radiologist sees their own offers (de-identified) and their own assignments, nothing else.
- Platform operations see every request (at-risk lists, explain views), never post or claim.
- Center admins manage the center's marketplace settings and webhooks.
"""

from __future__ import annotations

from accounts.models import Organization, Role
from accounts.policy import Actor
from core.access import Access

POST_ROLES = frozenset({Role.ADMIN, Role.TECHNOLOGIST})
VIEW_ROLES = frozenset({Role.ADMIN, Role.TECHNOLOGIST, Role.VIEWER})


def _is_center(organization: Organization | None) -> bool:
    return organization is not None and organization.kind == Organization.Kind.IMAGING_CENTER


def can_post(actor: Actor, center: Organization) -> bool:
    return _is_center(center) and actor.has_role(center, *POST_ROLES)


def can_view_center_requests(actor: Actor, center: Organization | int) -> bool:
    return actor.has_role(center, *VIEW_ROLES)


def centers_viewed(actor: Actor) -> list[int]:
    """The imaging centers whose read requests the actor sees by role."""
    return [org_id for org_id, m in actor.memberships.items()
            if _is_center(m.organization) and set(m.roles) & VIEW_ROLES]


def can_cancel(actor: Actor, center: Organization | int) -> bool:
    return actor.has_role(center, *POST_ROLES)


def is_operations(actor: Actor) -> bool:
    """Platform operations (not platform finance: requests carry clinical history)."""
    return actor.user is not None and actor.is_platform_operations


def is_radiologist(actor: Actor) -> bool:
    return actor.user is not None and Role.RADIOLOGIST in actor.all_roles


def can_manage_settings(actor: Actor, center: Organization) -> bool:
    return actor.user is not None and _is_center(center) and actor.has_role(center, Role.ADMIN)


def can_manage_webhooks(actor: Actor, center: Organization) -> bool:
    """Center admins, in person or through an API key with the admin role."""
    return _is_center(center) and actor.has_role(center, Role.ADMIN)


COVERAGE_ROLES = frozenset({Role.ADMIN, Role.VIEWER})


def can_view_coverage(actor: Actor, center: Organization) -> bool:
    """A center's coverage map: its admins and viewers (in person or by API key)."""
    return _is_center(center) and actor.has_role(center, *COVERAGE_ROLES)


def can_view_group_calendar(actor: Actor, group: Organization | None) -> bool:
    """A radiology group's calendar of its members' schedules: the group's admins."""
    return (actor.user is not None and group is not None and group.kind == Organization.Kind.RADIOLOGY_GROUP
            and actor.has_role(group, Role.ADMIN))


ROUTES: dict[str, Access] = {
    # a patient's second opinions: their own orders only (anyone else: 404)
    "opinion_order_list": Access.AUTHENTICATED,
    "opinion_order_create": Access.AUTHENTICATED,
    "opinion_order_detail": Access.AUTHENTICATED,
    "opinion_order_pay": Access.AUTHENTICATED,
    "opinion_order_cancel": Access.AUTHENTICATED,
    "opinion_order_receipt": Access.AUTHENTICATED,
    # pages
    "read_request_list": Access.ORG_MEMBER,  # the active center's requests (view roles)
    "read_request_rows": Access.ORG_MEMBER,  # the same, the rows alone (htmx polling)
    "read_request_create": Access.ORG_MEMBER,  # admins and technologists of the center
    "read_request_detail": Access.AUTHENTICATED,  # the center by role, the assignee, operations
    "read_request_cancel": Access.ORG_MEMBER,
    "read_request_explain": Access.AUTHENTICATED,  # the center by role, operations
    "radiologist_worklist": Access.AUTHENTICATED,  # radiologists: their own offers and reads
    "radiologist_worklist_rows": Access.AUTHENTICATED,
    "offer_claim": Access.AUTHENTICATED,  # the offered radiologist only
    "offer_decline": Access.AUTHENTICATED,
    "assignment_open": Access.AUTHENTICATED,  # the assignee only
    "assignment_release": Access.AUTHENTICATED,
    "reading_hours": Access.AUTHENTICATED,  # radiologists: their own hours, time off, minimum rates
    "ops_reads": Access.PLATFORM_OPERATIONS,
    "ops_reads_rows": Access.PLATFORM_OPERATIONS,
    "center_marketplace_settings": Access.ORG_ADMIN,
    "webhook_create": Access.ORG_ADMIN,
    "webhook_delete": Access.ORG_ADMIN,
    "webhook_test": Access.ORG_ADMIN,
    # the center's RIS link (issue 23): interfaces and the message log for admins, orders for the viewing roles
    "ris_interfaces": Access.ORG_ADMIN,
    "ris_interface_edit": Access.ORG_ADMIN,
    "ris_order_list": Access.ORG_MEMBER,
    "ris_order_release": Access.ORG_MEMBER,  # admins and technologists
    "ris_message_list": Access.ORG_ADMIN,
    "fhir_service_request": Access.ORG_MEMBER,  # the center's admins, technologists and its API keys
    # overflow rules (issue 18): the center's admins; the "read locally" mark: its admins and technologists
    "overflow_rules": Access.ORG_ADMIN,
    "overflow_rule_edit": Access.ORG_ADMIN,
    "overflow_rule_pause": Access.ORG_ADMIN,
    "overflow_rule_delete": Access.ORG_ADMIN,
    "study_read_locally": Access.ORG_MEMBER,
    # schedules and coverage (issue 18): a group's calendar for its admins, a center's map for admins and viewers
    "group_calendar": Access.ORG_ADMIN,
    "coverage_map": Access.ORG_MEMBER,
    "api_coverage": Access.ORG_MEMBER,
    # API
    "api_read_requests": Access.AUTHENTICATED,  # everyone signed in: their own requests only (patients too)
    "api_read_request_detail": Access.AUTHENTICATED,
    "api_read_request_cancel": Access.ORG_MEMBER,
    "api_read_request_history": Access.AUTHENTICATED,
    "api_read_request_candidates": Access.AUTHENTICATED,
    "api_offers": Access.AUTHENTICATED,
    "api_offer_claim": Access.AUTHENTICATED,
    "api_offer_decline": Access.AUTHENTICATED,
    "api_assignments": Access.AUTHENTICATED,
    "api_assignment_start": Access.AUTHENTICATED,
    "api_assignment_release": Access.AUTHENTICATED,
    "api_webhook_endpoints": Access.ORG_ADMIN,
    "api_webhook_endpoint_detail": Access.ORG_ADMIN,
    "api_webhook_endpoint_test": Access.ORG_ADMIN,
    "api_study_read_locally": Access.ORG_MEMBER,  # issue 18: the center's admins, technologists and API keys
}
