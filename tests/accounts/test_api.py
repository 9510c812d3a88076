"""The accounts REST API for people: me, organizations, memberships, members, invitations, schema."""

from __future__ import annotations

import re
import secrets

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import policy, services
from accounts.models import ApiCredential, AuditEvent, Invitation, Membership
from tests.factories import MembershipFactory


def url(name: str, *args) -> str:
    return reverse(name, args=[str(a) for a in args])


def membership_of(user, organization) -> Membership:
    return Membership.objects.get(user=user, organization=organization)


def bearer_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# --- me ---------------------------------------------------------------------------------------

def test_me_describes_the_user_with_memberships_and_active_organization(cast, login):
    response = login(cast.center_admin, api=True).get(url("api_me"))

    assert response.status_code == 200
    body = response.json()
    assert body["principal"] == "user"
    assert body["public_id"] == str(cast.center_admin.public_id)
    assert body["email"] == "center_admin@example.test"
    assert body["kind"] == "professional"
    assert body["mfa_enrolled"] is True
    assert body["is_platform_staff"] is False
    assert body["active_organization"]["slug"] == "lakeside"
    assert [(m["organization"]["slug"], m["roles"]) for m in body["memberships"]] == [("lakeside", ["admin"])]


def test_me_for_a_patient_has_no_memberships_and_needs_no_mfa(cast, login):
    body = login(cast.patient, api=True).get(url("api_me")).json()

    assert body["kind"] == "patient"
    assert body["memberships"] == []
    assert body["active_organization"] is None
    assert body["mfa_enrolled"] is False


def test_me_marks_platform_staff(cast, login):
    assert login(cast.platform_staff, api=True).get(url("api_me")).json()["is_platform_staff"] is True


def test_patch_me_changes_name_and_time_zone_and_is_audited(cast, login):
    user = cast.technologist
    response = login(user, api=True).patch(url("api_me"), {"full_name": "  Tess Tech ", "time_zone": "Europe/Berlin"},
                                           format="json")

    assert response.status_code == 200
    assert response.json()["full_name"] == "Tess Tech"
    assert response.json()["time_zone"] == "Europe/Berlin"
    user.refresh_from_db()
    assert (user.full_name, user.time_zone) == ("Tess Tech", "Europe/Berlin")
    event = AuditEvent.objects.get(action="user.profile_updated", actor=user)
    assert event.extra == {"fields": ["full_name", "time_zone"]}


def test_patch_me_rejects_an_unknown_time_zone_naming_the_field(cast, login):
    response = login(cast.patient, api=True).patch(url("api_me"), {"time_zone": "Mars/Olympus_Mons"}, format="json")

    assert response.status_code == 400
    assert "time_zone" in response.json()["error"]["fields"]
    cast.patient.refresh_from_db()
    assert cast.patient.time_zone != "Mars/Olympus_Mons"


def test_patch_me_refuses_fields_other_than_name_and_time_zone(cast, login):
    response = login(cast.patient, api=True).patch(url("api_me"),
                                                   {"email": "evil@example.test", "kind": "professional"},
                                                   format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email", "kind"}
    cast.patient.refresh_from_db()
    assert (cast.patient.email, cast.patient.kind) == ("patient@example.test", "patient")


# --- organizations and my memberships ---------------------------------------------------------

def test_organizations_lists_only_my_organizations(cast, login):
    response = login(cast.technologist, api=True).get(url("api_organizations"))

    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert [o["slug"] for o in response.json()["results"]] == ["lakeside"]


def test_platform_staff_see_every_organization(cast, login):
    body = login(cast.platform_staff, api=True).get(url("api_organizations")).json()

    assert {o["slug"] for o in body["results"]} == {"lakeside", "harbor", "nighthawk", "readroom-ops"}


def test_organization_detail_is_404_for_a_foreign_organization(cast, login):
    client = login(cast.other_admin, api=True)

    own = client.get(url("api_organization_detail", cast.other_center.public_id))
    foreign = client.get(url("api_organization_detail", cast.center.public_id))

    assert own.status_code == 200
    assert own.json()["jurisdiction"] == "US-FL"
    assert foreign.status_code == 404


def test_my_memberships_lists_each_organization_with_my_roles(cast, login):
    MembershipFactory(user=cast.center_finance, organization=cast.group, roles=["finance", "viewer"])

    response = login(cast.center_finance, api=True).get(url("api_memberships"))

    assert response.status_code == 200
    assert [(m["organization"]["slug"], m["roles"]) for m in response.json()["results"]] == [
        ("lakeside", ["finance"]), ("nighthawk", ["finance", "viewer"])]


def test_activate_switches_the_sessions_active_organization(cast, login):
    MembershipFactory(user=cast.center_admin, organization=cast.other_center, roles=["viewer"])
    client = login(cast.center_admin, api=True)
    # Harbor sorts before Lakeside, so it is active until the user chooses.
    assert client.get(url("api_me")).json()["active_organization"]["slug"] == "harbor"

    response = client.post(url("api_organization_activate", cast.center.public_id))

    assert response.status_code == 200
    assert response.json()["active_organization"]["slug"] == "lakeside"
    assert client.get(url("api_me")).json()["active_organization"]["slug"] == "lakeside"


def test_activate_an_organization_i_am_not_a_member_of_is_404(cast, login):
    # Platform staff can see every organization, but only belong to their own.
    staff = login(cast.platform_staff, api=True).post(url("api_organization_activate", cast.center.public_id))
    foreign = login(cast.other_admin, api=True).post(url("api_organization_activate", cast.center.public_id))

    assert staff.status_code == 404
    assert foreign.status_code == 404


# --- members ----------------------------------------------------------------------------------

def test_members_are_listed_for_any_member_of_the_organization(cast, login):
    response = login(cast.technologist, api=True).get(url("api_members", cast.center.public_id))

    assert response.status_code == 200
    emails = [m["user"]["email"] for m in response.json()["results"]]
    assert emails == sorted(["center_admin@example.test", "technologist@example.test",
                             "center_finance@example.test", "center_viewer@example.test"])


def test_members_of_another_organization_are_404(cast, login):
    response = login(cast.other_admin, api=True).get(url("api_members", cast.center.public_id))

    assert response.status_code == 404


def test_member_detail_shows_the_member(cast, login):
    membership = membership_of(cast.technologist, cast.center)

    response = login(cast.center_viewer, api=True).get(url("api_member_detail", cast.center.public_id,
                                                           membership.public_id))

    assert response.status_code == 200
    assert response.json()["user"]["email"] == "technologist@example.test"
    assert response.json()["roles"] == ["technologist"]


def test_member_detail_under_the_wrong_organization_is_404(cast, login):
    # A real membership, addressed through an organization it does not belong to.
    membership = membership_of(cast.other_admin, cast.other_center)

    response = login(cast.center_admin, api=True).get(url("api_member_detail", cast.center.public_id,
                                                          membership.public_id))

    assert response.status_code == 404


def test_technologist_cannot_make_themself_admin(cast, login):
    membership = membership_of(cast.technologist, cast.center)

    response = login(cast.technologist, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id), {"roles": ["admin"]}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    membership.refresh_from_db()
    assert membership.roles == ["technologist"]
    assert not AuditEvent.objects.filter(action="membership.roles_changed").exists()


def test_admin_of_another_organization_cannot_change_roles_and_sees_404(cast, login):
    membership = membership_of(cast.technologist, cast.center)

    response = login(cast.other_admin, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id), {"roles": ["viewer"]}, format="json")

    assert response.status_code == 404
    membership.refresh_from_db()
    assert membership.roles == ["technologist"]


def test_admin_changes_roles_and_the_change_is_audited(cast, login):
    membership = membership_of(cast.technologist, cast.center)

    response = login(cast.center_admin, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id),
        {"roles": ["technologist", "viewer"]}, format="json")

    assert response.status_code == 200
    assert response.json()["roles"] == ["technologist", "viewer"]
    membership.refresh_from_db()
    assert membership.roles == ["technologist", "viewer"]
    event = AuditEvent.objects.get(action="membership.roles_changed", object_id=str(membership.public_id))
    assert event.actor == cast.center_admin
    assert event.extra["from"] == ["technologist"]
    assert event.extra["to"] == ["technologist", "viewer"]


def test_last_admin_cannot_drop_their_admin_role(cast, login):
    membership = membership_of(cast.center_admin, cast.center)

    response = login(cast.center_admin, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id), {"roles": ["viewer"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "last_admin"
    assert "roles" in response.json()["error"]["fields"]
    membership.refresh_from_db()
    assert membership.roles == ["admin"]


def test_patch_roles_with_an_unknown_role_names_the_field(cast, login):
    membership = membership_of(cast.technologist, cast.center)

    response = login(cast.center_admin, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id), {"roles": ["overlord"]},
        format="json")

    assert response.status_code == 400
    assert any(name.startswith("roles") for name in response.json()["error"]["fields"])


def test_admin_removes_a_member_who_then_disappears_from_the_list(cast, login):
    membership = membership_of(cast.center_viewer, cast.center)
    client = login(cast.center_admin, api=True)

    response = client.delete(url("api_member_detail", cast.center.public_id, membership.public_id))

    assert response.status_code == 204
    membership.refresh_from_db()
    assert membership.is_active is False
    emails = [m["user"]["email"] for m in client.get(url("api_members", cast.center.public_id)).json()["results"]]
    assert "center_viewer@example.test" not in emails
    assert AuditEvent.objects.filter(action="membership.deactivated", object_id=str(membership.public_id)).exists()


def test_non_admin_cannot_remove_a_member(cast, login):
    membership = membership_of(cast.center_viewer, cast.center)

    response = login(cast.technologist, api=True).delete(url("api_member_detail", cast.center.public_id,
                                                             membership.public_id))

    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.is_active is True


def test_last_admin_cannot_remove_themself(cast, login):
    membership = membership_of(cast.center_admin, cast.center)

    response = login(cast.center_admin, api=True).delete(url("api_member_detail", cast.center.public_id,
                                                             membership.public_id))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "last_admin"
    membership.refresh_from_db()
    assert membership.is_active is True


def test_members_list_makes_the_same_number_of_queries_for_1_and_20_members(cast, login,
                                                                            django_assert_max_num_queries):
    client = login(cast.other_admin, api=True)
    members_url = url("api_members", cast.other_center.public_id)
    client.get(members_url)  # the first request of a session records its MFA check; measure the steady state

    with CaptureQueriesContext(connection) as one_member:
        response = client.get(members_url)
    assert response.json()["count"] == 1

    MembershipFactory.create_batch(19, organization=cast.other_center, roles=["viewer"])
    with django_assert_max_num_queries(len(one_member)), CaptureQueriesContext(connection) as twenty_members:
        response = client.get(members_url)

    assert response.json()["count"] == 20
    assert len(response.json()["results"]) == 20
    assert len(twenty_members) == len(one_member)


# --- invitations ------------------------------------------------------------------------------

def test_admin_invites_by_email_and_the_token_is_only_in_the_email(cast, login, mailoutbox,
                                                                   django_capture_on_commit_callbacks):
    client = login(cast.center_admin, api=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("api_invitations", cast.center.public_id),
                               {"email": "New.Reader@Example.test", "role": "technologist"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.reader@example.test"
    assert body["role"] == "technologist"
    assert body["status"] == "pending"
    assert body["invited_by"] == "center_admin@example.test"
    assert not {"token", "token_hash"} & set(body)
    assert len(mailoutbox) == 1
    token = re.search(r"/invitations/([^/\s]+)/", mailoutbox[0].body).group(1)
    assert token not in response.content.decode()
    invitation = Invitation.objects.get(public_id=body["public_id"])
    assert invitation.token_hash == ApiCredential.hash_secret(token)
    assert AuditEvent.objects.filter(action="invitation.created", object_id=body["public_id"],
                                     actor=cast.center_admin, organization=cast.center).exists()


def test_invitation_to_an_existing_member_is_refused_naming_the_email(cast, login):
    response = login(cast.center_admin, api=True).post(
        url("api_invitations", cast.center.public_id), {"email": "Technologist@example.test", "role": "viewer"},
        format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "already_member"
    assert "email" in response.json()["error"]["fields"]
    assert not Invitation.objects.exists()


def test_invitation_with_an_invalid_email_is_refused_naming_the_email(cast, login):
    response = login(cast.center_admin, api=True).post(
        url("api_invitations", cast.center.public_id), {"email": "not-an-email", "role": "viewer"}, format="json")

    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]
    assert not Invitation.objects.exists()


def test_invitation_by_a_non_admin_member_is_403(cast, login):
    response = login(cast.technologist, api=True).post(
        url("api_invitations", cast.center.public_id), {"email": "friend@example.test", "role": "admin"},
        format="json")

    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_invitation_by_another_organizations_admin_is_404(cast, login):
    response = login(cast.other_admin, api=True).post(
        url("api_invitations", cast.center.public_id), {"email": "friend@example.test", "role": "admin"},
        format="json")

    assert response.status_code == 404
    assert not Invitation.objects.exists()


def test_invitations_are_hidden_from_non_admins(cast, login):
    services.invitation_create(actor=policy.actor_for_user(cast.center_admin), organization=cast.center,
                               email="a@example.test", role="viewer")

    assert login(cast.technologist, api=True).get(url("api_invitations", cast.center.public_id)).status_code == 404
    assert login(cast.other_admin, api=True).get(url("api_invitations", cast.center.public_id)).status_code == 404


def test_invitations_filter_by_status_and_email(cast, login):
    admin = policy.actor_for_user(cast.center_admin)
    pending, _ = services.invitation_create(actor=admin, organization=cast.center, email="p@example.test",
                                            role="viewer")
    revoked, _ = services.invitation_create(actor=admin, organization=cast.center, email="r@example.test",
                                            role="viewer")
    services.invitation_revoke(actor=admin, invitation=revoked)
    client = login(cast.center_admin, api=True)
    invitations_url = url("api_invitations", cast.center.public_id)

    def ids(**params):
        response = client.get(invitations_url, params)
        assert response.status_code == 200
        return {i["public_id"] for i in response.json()["results"]}

    assert ids() == {str(pending.public_id), str(revoked.public_id)}
    assert ids(status="pending") == {str(pending.public_id)}
    assert ids(status="revoked") == {str(revoked.public_id)}
    assert ids(status="accepted") == set()
    assert ids(email="P@EXAMPLE.TEST") == {str(pending.public_id)}
    bad = client.get(invitations_url, {"status": "lost"})
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]["fields"]


def test_admin_revokes_an_invitation_and_it_is_audited(cast, login):
    invitation, _ = services.invitation_create(actor=policy.actor_for_user(cast.center_admin),
                                               organization=cast.center, email="x@example.test", role="viewer")
    client = login(cast.center_admin, api=True)
    detail = url("api_invitation_detail", cast.center.public_id, invitation.public_id)

    response = client.delete(detail)

    assert response.status_code == 204
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert AuditEvent.objects.filter(action="invitation.revoked", object_id=str(invitation.public_id)).exists()
    again = client.delete(detail)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "not_pending"


def test_invitation_of_another_organization_cannot_be_revoked(cast, login):
    invitation, _ = services.invitation_create(actor=policy.actor_for_user(cast.center_admin),
                                               organization=cast.center, email="x@example.test", role="viewer")

    # Through its own organization's URL, and smuggled under the other admin's organization.
    direct = login(cast.other_admin, api=True).delete(
        url("api_invitation_detail", cast.center.public_id, invitation.public_id))
    smuggled = login(cast.other_admin, api=True).delete(
        url("api_invitation_detail", cast.other_center.public_id, invitation.public_id))

    assert (direct.status_code, smuggled.status_code) == (404, 404)
    invitation.refresh_from_db()
    assert invitation.status == "pending"


# --- MFA enrollment and CSRF ------------------------------------------------------------------

@pytest.fixture
def unenrolled_technologist(db):
    """A PHI-role user who has not set up TOTP."""
    return MembershipFactory(roles=["technologist"]).user


def test_phi_role_without_totp_is_refused_through_the_session(unenrolled_technologist, login):
    response = login(unenrolled_technologist, api=True).get(url("api_me"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_enrollment_required"


def test_phi_role_without_totp_is_refused_through_a_personal_token(unenrolled_technologist):
    _, secret = services.personal_token_create(actor=policy.actor_for_user(unenrolled_technologist), name="script")

    response = bearer_client(secret).get(url("api_me"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_enrollment_required"


def test_session_write_without_csrf_token_is_refused(cast):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(cast.patient)

    refused = client.patch(url("api_me"), {"full_name": "Forged"}, format="json")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    cast.patient.refresh_from_db()
    assert cast.patient.full_name != "Forged"

    csrf = secrets.token_hex(16)  # a well-formed CSRF secret, as the cookie would carry it
    client.cookies["csrftoken"] = csrf
    accepted = client.patch(url("api_me"), {"full_name": "Genuine"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 200
    cast.patient.refresh_from_db()
    assert cast.patient.full_name == "Genuine"


# --- schema -----------------------------------------------------------------------------------

def test_openapi_schema_generates_without_warnings_and_documents_bearer_auth(tmp_path):
    schema_file = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema_file))

    text = schema_file.read_text()
    assert "bearerAuth:" in text
    assert "scheme: bearer" in text
    for path in ("/api/v1/me/", "/api/v1/organizations/{organization_id}/members/{public_id}/",
                 "/api/v1/organizations/{organization_id}/api-keys/", "/api/v1/tokens/{public_id}/"):
        assert f"{path}:" in text


def test_schema_and_docs_pages_are_served(client, db):
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    assert docs.status_code == 200


def test_browsable_api_renders_list_and_detail_pages(cast, login):
    client = login(cast.center_admin, api=True)
    membership = membership_of(cast.technologist, cast.center)
    pages = [url("api_me"), url("api_memberships"), url("api_organizations"), url("api_tokens"),
             url("api_members", cast.center.public_id),
             url("api_member_detail", cast.center.public_id, membership.public_id),
             url("api_invitations", cast.center.public_id), url("api_api_keys", cast.center.public_id)]

    for page in pages:
        response = client.get(page, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, page
        assert response["Content-Type"].startswith("text/html"), page
