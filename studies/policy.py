"""Who may see and send studies. Study access is decided here and nowhere else.

- Members of the owning organization see its studies in full by role (admin, technologist,
  radiologist, viewer); finance does not see images.
- A radiologist of another organization sees a study only through an active ``StudyAccessGrant``:
  ``preview`` (de-identified metadata and thumbnails) or ``full``.
- Sending studies (upload, STOW-RS, C-STORE) is for admins and technologists of the center, and
  for its API keys with the technologist role.
- A patient owns their personal space (``Actor.personal_space_id``): they see, upload and delete
  their own images there, as a center's admin would in the center.
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


def owns_space(actor: Actor, organization: Organization | int | None) -> bool:
    """The patient whose personal space this is."""
    org_id = organization.pk if isinstance(organization, Organization) else organization
    return actor.personal_space_id is not None and org_id == actor.personal_space_id


def can_view_own_organization_studies(actor: Actor, organization: Organization | int) -> bool:
    return actor.has_role(organization, *STUDY_VIEW_ROLES) or owns_space(actor, organization)


def can_send_studies(actor: Actor, organization: Organization) -> bool:
    if owns_space(actor, organization):
        return True
    return organization.kind == Organization.Kind.IMAGING_CENTER and actor.has_role(organization, *STUDY_SEND_ROLES)


def can_manage_studies(actor: Actor, organization: Organization | int) -> bool:
    """Edit jurisdiction, delete studies, grant access, see a study's audit trail: center admins (and a
    patient in their own space)."""
    return actor.user is not None and (actor.has_role(organization, Role.ADMIN) or owns_space(actor, organization))


def organizations_with_study_view(actor: Actor) -> list[int]:
    own = [org_id for org_id, m in actor.memberships.items() if set(m.roles) & STUDY_VIEW_ROLES]
    return own + [actor.personal_space_id] if actor.personal_space_id is not None else own


ROUTES: dict[str, Access] = {}

# DICOMweb (studies/dicomweb/urls.py): any authenticated principal (session, personal token or
# organization key) may call; what each one sees is decided per study by the selectors above.
ROUTES.update({name: Access.AUTHENTICATED for name in (
    "dicomweb_studies", "dicomweb_study", "dicomweb_study_series", "dicomweb_series", "dicomweb_study_instances",
    "dicomweb_series_instances", "dicomweb_instances", "dicomweb_study_metadata", "dicomweb_study_rendered",
    "dicomweb_study_thumbnail", "dicomweb_series_retrieve", "dicomweb_series_metadata", "dicomweb_series_rendered",
    "dicomweb_series_thumbnail", "dicomweb_instance_retrieve", "dicomweb_instance_metadata",
    "dicomweb_instance_rendered", "dicomweb_instance_thumbnail", "dicomweb_instance_frames",
    "dicomweb_frames_rendered", "dicomweb_instance_bulkdata",
)})

# Study pages (studies/urls.py). The list and the upload act in the active organization; a study's
# own pages are reached by its public id, and the selectors answer 404 for a study the actor may not see.
ROUTES.update({
    "study_list": Access.ORG_MEMBER,  # roles that see studies (finance: 404); radiologists see their grants
    "study_upload": Access.ORG_MEMBER,  # admins and technologists of an imaging center
    "study_upload_file": Access.ORG_MEMBER,
    "study_detail": Access.AUTHENTICATED,  # members by role, radiologists through a grant
    "study_jurisdiction": Access.ORG_ADMIN,
    "study_delete": Access.ORG_ADMIN,
    "study_restore": Access.ORG_ADMIN,
    # break-glass (studies/break_glass.py): platform operations, after a fresh second factor
    "study_break_glass": Access.PLATFORM_OPERATIONS,
    "study_break_glass_end": Access.PLATFORM_OPERATIONS,
})

# The OHIF Viewer (studies/viewer_views.py): the shell for anyone who sees studies (the studies in its
# URL are checked like any study: 404 when not visible, 403 at preview level); its configuration
# names only our own DICOMweb root and is public, like the viewer's script files.
ROUTES.update({
    "viewer_app": Access.AUTHENTICATED,
    "viewer_app_route": Access.AUTHENTICATED,
    "viewer_app_config": Access.PUBLIC,
    "viewer_service_worker": Access.PUBLIC,  # names the viewer's public script files, as WhiteNoise serves them
    "viewer_init_service_worker": Access.PUBLIC,  # an empty script in place of OHIF's
})


# A patient's own images (studies/patient_views.py, under /my/): patients only, anyone else 404; a study's
# pages answer only for a study the patient sees (their space's, or one a center shared with them).
ROUTES.update({name: Access.AUTHENTICATED for name in (
    "patient_images", "patient_upload", "patient_upload_file", "patient_study", "patient_study_delete",
    "patient_original_report_upload", "patient_share_request", "patient_share_revoke",
    "original_report_file",  # whoever sees the study in full: its patient (and its second reader)
)})
# Patients' share requests, answered by the admins of the imaging center asked (studies/shares.py).
ROUTES.update({name: Access.ORG_ADMIN for name in (
    "share_request_list", "share_request_approve", "share_request_decline", "share_request_revoke")})


def can_browse_studies(actor: Actor) -> bool:
    """The study pages are for roles that see images, in a center or a radiology group (not the platform)."""
    return any(m.organization.kind != Organization.Kind.PLATFORM and set(m.roles) & STUDY_VIEW_ROLES
               for m in actor.memberships.values())
