"""What the base template needs to draw navigation that fits the actor's roles."""

from accounts import notifications, policy
from accounts.credentials import policy as credential_policy
from accounts.models import Organization, Role


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    actor = policy.actor_from_request(request)
    roles = actor.active_roles
    org = actor.active_organization
    return {
        "actor": actor,
        "active_organization": org,
        "active_roles": sorted(roles),
        "my_memberships": sorted(actor.memberships.values(), key=lambda m: m.organization.name),
        "nav_is_admin": Role.ADMIN in roles,
        "nav_can_verify": credential_policy.is_verifier(actor),
        "nav_admin_site": policy.can_use_admin_site(actor),
        "nav_can_view_audit": policy.can_view_audit_log(actor),
        "nav_is_patient": actor.is_patient,
        "nav_is_radiologist": credential_policy.is_radiologist(actor),
        "nav_group_credentials": org is not None and org.kind == Organization.Kind.RADIOLOGY_GROUP
        and Role.ADMIN in roles,
        "nav_directory": org is not None and org.kind == Organization.Kind.IMAGING_CENTER,
        "nav_privileges": org is not None and org.kind == Organization.Kind.IMAGING_CENTER and Role.ADMIN in roles,
        # one COUNT on the (user, read_at) index, for the badge in the user menu
        "nav_unread_notifications": notifications.notification_unread_count(actor=actor),
    }
