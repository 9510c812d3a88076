"""Who may do what with reports. Deny by default; views never decide.

- The assignee of a read request writes its report, releases it as preliminary (STAT), signs it,
  adds addenda to it once final, and flags a critical result when signing.
- The center's admins, technologists and viewers read its reports (preliminary and final, never a
  draft), acknowledge critical results, and write in the request's message thread; finance does not
  (reports are clinical).
- Platform operations read every report and every critical result (escalation), never write one.
- A center's or group's admins edit their own templates; platform operations edit the platform's.
- A patient reads their own signed second opinion and asks its reader one follow-up question; the
  reader answers it once (``reporting.patient``).
- The patient shares a signed second opinion with their doctor by an expiring link and a code; whoever
  holds both reads it, without an account, until it expires or is revoked (``reporting.shares``).
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
WORKSPACE_ROUTES: dict[str, Access] = {
    # the assignee only (reporting.selectors.assigned_request); anyone else 404
    "report_workspace": Access.AUTHENTICATED,
    "report_autosave": Access.AUTHENTICATED,
    "report_template_switch": Access.AUTHENTICATED,
    "report_release_preliminary": Access.AUTHENTICATED,
    "report_sign": Access.AUTHENTICATED,
    "report_addendum": Access.AUTHENTICATED,
}
CENTER_ROUTES: dict[str, Access] = {
    "read_request_report": Access.AUTHENTICATED,  # the report panel: the center by role, operations, the reader
    "read_request_report_download": Access.AUTHENTICATED,  # the same people; audited
}
CRITICAL_ROUTES: dict[str, Access] = {
    "critical_result_list": Access.ORG_MEMBER,  # the active center's admins, technologists, viewers
    "critical_result_acknowledge": Access.ORG_MEMBER,  # admins, technologists (viewers 403, others 404)
    "ops_critical_results": Access.PLATFORM_OPERATIONS,
    # the thread: the center by role and the assignee write, operations read; anyone else 404
    "read_request_messages": Access.AUTHENTICATED,
}
TEMPLATE_ROUTES: dict[str, Access] = {
    # Templates: platform operations (active in the platform organization) or the active center's or
    # group's admins; anyone else 404.
    "report_template_list": Access.ORG_ADMIN,
    "report_template_create": Access.ORG_ADMIN,
    "report_template_edit": Access.ORG_ADMIN,
    "report_template_set_active": Access.ORG_ADMIN,
    # Macros: a radiologist's own; anyone else 404.
    "macro_list": Access.AUTHENTICATED,
    "macro_edit": Access.AUTHENTICATED,
    "macro_delete": Access.AUTHENTICATED,
}
PATIENT_ROUTES: dict[str, Access] = {
    # the ordering patient only (reporting.patient.opinion_order_get); anyone else 404
    "patient_report": Access.AUTHENTICATED,
    "patient_report_pdf": Access.AUTHENTICATED,
    "patient_question_ask": Access.AUTHENTICATED,
    # the reader of that second opinion only (reporting.selectors.assigned_request); anyone else 404
    "patient_question_answer": Access.AUTHENTICATED,
    "patient_questions_waiting": Access.AUTHENTICATED,  # a radiologist's own; anyone else 404
}
SHARE_ROUTES: dict[str, Access] = {
    # the ordering patient only (marketplace.order_selectors.order_get); anyone else 404
    "doctor_share_list": Access.AUTHENTICATED,
    "doctor_share_revoke": Access.AUTHENTICATED,
    # the patient's doctor, without an account: the link's token, then its code (reporting.share_access)
    "shared_report": Access.TOKEN,
    "shared_image": Access.TOKEN,
}
API_ROUTES: dict[str, Access] = {
    "api_read_request_report": Access.AUTHENTICATED,  # the center by role, operations, the reader (404 otherwise)
}

QUALITY_STATS_ROUTES: dict[str, Access] = {
    # Quality (reporting.quality.selectors decides each object: 404 for anyone else).
    "read_request_quality": Access.AUTHENTICATED,  # the chain panel: as the request's page
    "overread_reply": Access.AUTHENTICATED,  # the original reader, the overreader, the center by role, operations
    "overread_addendum_request": Access.AUTHENTICATED,  # the center's admins and technologists
    "quality_reviews_received": Access.AUTHENTICATED,  # a radiologist's own; anyone else 404
    "quality_arbitration_queue": Access.AUTHENTICATED,  # radiologists (the queue: what they may arbitrate)
    "quality_arbitration": Access.AUTHENTICATED,  # a QA radiologist of the review's programme
    "quality_settings": Access.ORG_ADMIN,  # the active center's or group's admins
    "group_signed_reports": Access.AUTHENTICATED,  # a reading group's admins and named QA radiologists
    # reporting.quality.stats_access: a center's viewing roles (not finance) and operations see the center's;
    # a group's admins and operations the group's; anyone else 404 (the active organization, or one named)
    "quality_stats": Access.ORG_MEMBER,
    "quality_stats_of": Access.ORG_MEMBER,
    "quality_mine": Access.AUTHENTICATED,  # a radiologist's own figures; anyone else 404
    "ops_quality": Access.PLATFORM_OPERATIONS,  # every reader and the outliers
}

ROUTES: dict[str, Access] = {**WORKSPACE_ROUTES, **CENTER_ROUTES, **CRITICAL_ROUTES, **TEMPLATE_ROUTES,
                             **PATIENT_ROUTES, **SHARE_ROUTES, **API_ROUTES}
ROUTES.update(QUALITY_STATS_ROUTES)
# FHIR (issue 23): the report of a RIS order; the order's center by role or its API key (404 otherwise)
ROUTES["fhir_diagnostic_report"] = Access.AUTHENTICATED
