"""Page routes of accounts. Access rules live in accounts.policy (applied by selectors and services)."""

from django.urls import path

from accounts import views
from accounts.views import credentials as credential_views
from accounts.views import notifications as notification_views
from accounts.views import patient as patient_views

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
    # a patient's details (their personal space opens with the first save)
    path("my/details/", patient_views.patient_details, name="patient_details"),
    # the person's own in-app notifications
    path("notifications/", notification_views.notification_list, name="notification_list"),
    path("notifications/<uuid:public_id>/read/", notification_views.notification_mark_read,
         name="notification_mark_read"),
    path("notifications/read-all/", notification_views.notification_mark_all_read,
         name="notification_mark_all_read"),
    # platform operations
    path("ops/audit/", views.audit_log, name="audit_log"),
    path("ops/audit/export.csv", views.audit_log_export, name="audit_log_export"),
    path("ops/audit/verify/", views.audit_log_verify, name="audit_log_verify"),
    # credentialing: the radiologist's own credentials and onboarding
    path("credentials/", credential_views.credentials_mine, name="credentials_mine"),
    path("credentials/documents/<uuid:public_id>/", credential_views.credential_document, name="credential_document"),
    path("credentials/<str:kind>/new/", credential_views.credential_add, name="credential_add"),
    path("credentials/<str:kind>/<uuid:public_id>/", credential_views.credential_edit, name="credential_edit"),
    path("credentials/<str:kind>/<uuid:public_id>/delete/", credential_views.credential_delete,
         name="credential_delete"),
    path("credentials/<str:kind>/<uuid:public_id>/documents/", credential_views.credential_document_upload,
         name="credential_document_upload"),
    path("onboarding/", credential_views.onboarding, name="onboarding"),
    path("onboarding/<str:step>/", credential_views.onboarding_step, name="onboarding_step"),
    # credentialing: platform operations, group admins, centers
    path("ops/credentials/", credential_views.verification_queue, name="verification_queue"),
    path("ops/credentials/<str:kind>/<uuid:public_id>/", credential_views.verification_review,
         name="verification_review"),
    path("org/credentials/", credential_views.group_credentials, name="group_credentials"),
    path("org/privileges/", credential_views.center_privileges, name="center_privileges"),
    path("org/privileges/grant/", credential_views.privilege_grant, name="privilege_grant"),
    path("org/privileges/<uuid:public_id>/", credential_views.privilege_change, name="privilege_change"),
    path("radiologists/", credential_views.directory, name="radiologist_directory"),
    path("radiologists/<uuid:public_id>/", credential_views.radiologist_profile_public,
         name="radiologist_profile_public"),
    path("radiologists/<uuid:public_id>/photo/", credential_views.radiologist_photo, name="radiologist_photo"),
]
