"""The REST API, version 1 (included under /api/v1/). Objects are addressed by their public UUIDs."""

from django.urls import path

from accounts.api import access, me, organizations

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
]
