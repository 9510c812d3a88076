"""Page routes of accounts. Access rules live in accounts.policy (applied by selectors and services)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    # the active organization
    path("org/switch/", views.organization_switch, name="organization_switch"),
    path("org/members/", views.member_list, name="member_list"),
    path("org/members/<uuid:public_id>/", views.member_edit, name="member_edit"),
    path("org/members/<uuid:public_id>/remove/", views.member_remove, name="member_remove"),
    path("org/invitations/", views.invitation_list, name="invitation_list"),
    path("org/invitations/<uuid:public_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("org/api-keys/", views.api_key_list, name="api_key_list"),
    path("org/api-keys/new/", views.api_key_create, name="api_key_create"),
    path("org/api-keys/<uuid:public_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    # the person's own settings
    path("settings/profile/", views.profile, name="profile"),
    path("settings/tokens/", views.token_list, name="token_list"),
    path("settings/tokens/new/", views.token_create, name="token_create"),
    path("settings/tokens/<uuid:public_id>/revoke/", views.token_revoke, name="token_revoke"),
    # platform operations
    path("ops/audit/", views.audit_log, name="audit_log"),
    path("ops/audit/export.csv", views.audit_log_export, name="audit_log_export"),
    path("ops/audit/verify/", views.audit_log_verify, name="audit_log_verify"),
]
