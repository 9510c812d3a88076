"""Navigation flags for the study pages, decided by studies.policy (templates hold no rules)."""

from accounts import policy as accounts_policy
from studies import break_glass, policy, shares


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    actor = accounts_policy.actor_from_request(request)
    org = actor.active_organization
    return {
        "nav_studies": org is not None and org.kind != org.Kind.PLATFORM
        and policy.can_view_own_organization_studies(actor, org),
        "nav_upload": org is not None and policy.can_send_studies(actor, org),
        "nav_break_glass": break_glass.can_break_glass(actor),
        "nav_share_requests": shares.can_answer_share_requests(actor),
    }
