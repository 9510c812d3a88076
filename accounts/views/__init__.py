"""Page views of accounts (thin: shape of the input → one service or selector → a template)."""

from accounts.views.audit import audit_log, audit_log_export, audit_log_verify
from accounts.views.dashboard import dashboard
from accounts.views.invitations import invitation_accept
from accounts.views.organization import (
    api_key_create,
    api_key_list,
    api_key_revoke,
    invitation_list,
    invitation_revoke,
    member_edit,
    member_list,
    member_remove,
    organization_switch,
)
from accounts.views.settings import profile, token_create, token_list, token_revoke

__all__ = [
    "api_key_create", "api_key_list", "api_key_revoke", "audit_log", "audit_log_export", "audit_log_verify",
    "dashboard", "invitation_accept", "invitation_list", "invitation_revoke", "member_edit", "member_list",
    "member_remove", "organization_switch", "profile", "token_create", "token_list", "token_revoke",
]
