"""The REST API, version 1 (included under /api/v1/). Objects are addressed by their public UUIDs."""

from django.urls import path

from accounts.api import access, credentials, me, organizations

ORG = "organizations/<uuid:organization_id>"

urlpatterns = [
    path("me/", me.MeView.as_view(), name="api_me"),
    path("memberships/", me.MyMembershipListView.as_view(), name="api_memberships"),
    path("tokens/", me.PersonalTokenListView.as_view(), name="api_tokens"),
    path("tokens/<uuid:public_id>/", me.PersonalTokenDetailView.as_view(), name="api_token_detail"),
    path("organizations/", organizations.OrganizationListView.as_view(), name="api_organizations"),
    path("organizations/<uuid:public_id>/", organizations.OrganizationDetailView.as_view(),
         name="api_organization_detail"),
    path("organizations/<uuid:public_id>/activate/", organizations.OrganizationActivateView.as_view(),
         name="api_organization_activate"),
    path(f"{ORG}/members/", organizations.MemberListView.as_view(), name="api_members"),
    path(f"{ORG}/members/<uuid:public_id>/", organizations.MemberDetailView.as_view(), name="api_member_detail"),
    path(f"{ORG}/invitations/", access.InvitationListView.as_view(), name="api_invitations"),
    path(f"{ORG}/invitations/<uuid:public_id>/", access.InvitationDetailView.as_view(),
         name="api_invitation_detail"),
    path(f"{ORG}/api-keys/", access.ApiKeyListView.as_view(), name="api_api_keys"),
    path(f"{ORG}/api-keys/<uuid:public_id>/", access.ApiKeyDetailView.as_view(), name="api_api_key_detail"),
    # credentialing
    path("me/radiologist-profile/", credentials.MyRadiologistProfileView.as_view(),
         name="api_my_radiologist_profile"),
    path("me/radiologist-profile/submit/", credentials.MyProfileSubmitView.as_view(),
         name="api_my_radiologist_profile_submit"),
    path("me/credentials/<str:kind>/", credentials.MyCredentialListView.as_view(), name="api_my_credentials"),
    path("me/credentials/<str:kind>/<uuid:public_id>/", credentials.MyCredentialDetailView.as_view(),
         name="api_my_credential_detail"),
    path("me/credentials/<str:kind>/<uuid:public_id>/documents/", credentials.MyCredentialDocumentView.as_view(),
         name="api_my_credential_documents"),
    path("credentials/pending/", credentials.VerificationQueueView.as_view(), name="api_verification_queue"),
    path("credentials/<str:kind>/<uuid:public_id>/decision/", credentials.CredentialDecisionView.as_view(),
         name="api_credential_decision"),
    path("radiologists/", credentials.RadiologistDirectoryView.as_view(), name="api_radiologists"),
    path("radiologists/<uuid:public_id>/", credentials.RadiologistDetailView.as_view(), name="api_radiologist_detail"),
    path("radiologists/<uuid:public_id>/eligibility/", credentials.RadiologistEligibilityView.as_view(),
         name="api_radiologist_eligibility"),
    path(f"{ORG}/privileges/", credentials.PrivilegeListView.as_view(), name="api_privileges"),
    path(f"{ORG}/privileges/<uuid:public_id>/", credentials.PrivilegeDetailView.as_view(),
         name="api_privilege_detail"),
]
