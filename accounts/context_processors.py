"""What the base template needs to draw navigation that fits the actor's roles."""

from accounts import policy
from accounts.models import Role


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
        "nav_is_platform_staff": actor.is_platform_staff,
        "nav_can_view_audit": policy.can_view_audit_log(actor),
        "nav_is_patient": actor.is_patient,
    }
