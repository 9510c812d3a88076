"""The web pages of accounts: who reaches which page, forms that go through services, invitation
acceptance, CSRF on every form, the audit-log page (filters, CSV, chain check), query counts, and
that no page carries inline script or style (the Content-Security-Policy would block it)."""

from __future__ import annotations

import csv
import datetime
import io
import re
import zoneinfo
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import policy, services
from accounts.audit import audit_record
from accounts.models import (
    ApiCredential,
    AuditEvent,
    Invitation,
    License,
    Membership,
    OrganizationApiKey,
    PersonalApiToken,
    RadiologistProfile,
    User,
)
from tests.conftest import CAST, mark_fresh_mfa
from tests.factories import TEST_PASSWORD, MembershipFactory, UserFactory

PRINCIPALS = list(CAST)
ADMINS_OF_THEIR_ORG = {"center_admin", "other_admin", "platform_staff"}  # platform staff are admins of ReadRoom Ops


def actor(user):
    return policy.actor_for_user(user)


def invite(cast, email="newcomer@example.test", role="technologist", organization=None, by=None):
    by = by or cast.center_admin
    return services.invitation_create(actor=actor(by), organization=organization or cast.center,
                                      email=email, role=role)


def csrf_client(user):
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
        if user.authenticator_set.exists():
            mark_fresh_mfa(client, user)
    return client


# --- who reaches which page -------------------------------------------------------------------

PAGE_ACCESS = {
    # url name: principals that get 200 (everyone else signed in gets 404)
    "dashboard": set(PRINCIPALS),
    "member_list": set(PRINCIPALS) - {"patient"},
    "invitation_list": ADMINS_OF_THEIR_ORG,
    "api_key_list": ADMINS_OF_THEIR_ORG,
    "api_key_create": ADMINS_OF_THEIR_ORG,
    "profile": set(PRINCIPALS),
    "token_list": set(PRINCIPALS),
    "token_create": set(PRINCIPALS),
    "audit_log": {"platform_staff"},
    "audit_log_export": {"platform_staff"},
    "audit_log_verify": {"platform_staff"},
}


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("url_name", list(PAGE_ACCESS))
def test_each_page_answers_its_principals_and_404s_everyone_else(cast, login, principal, url_name):
    response = login(cast.users[principal]).get(reverse(url_name))
    expected = 200 if principal in PAGE_ACCESS[url_name] else 404
    assert response.status_code == expected, (principal, url_name)


@pytest.mark.parametrize("url_name", list(PAGE_ACCESS))
def test_anonymous_visitors_are_sent_to_sign_in(db, url_name):
    url = reverse(url_name)
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={url}"


def test_not_found_uses_the_styled_page(cast, login):
    response = login(cast.technologist).get(reverse("invitation_list"))
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b"/static/css/readroom.css" in response.content


@pytest.mark.parametrize("url_name", ["member_edit", "member_remove"])
def test_members_of_another_organization_do_not_exist_for_an_admin(cast, login, url_name):
    foreign = Membership.objects.get(user=cast.other_admin)
    client = login(cast.center_admin)
    assert client.get(reverse(url_name, args=[foreign.public_id])).status_code == 404
    assert client.post(reverse(url_name, args=[foreign.public_id]), {"roles": ["viewer"]}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.is_active
    assert foreign.roles == ["admin"]


@pytest.mark.parametrize("url_name", ["member_edit", "member_remove"])
def test_non_admins_cannot_reach_member_management(cast, login, url_name):
    target = Membership.objects.get(user=cast.center_viewer)
    client = login(cast.technologist)
    assert client.get(reverse(url_name, args=[target.public_id])).status_code == 404
    assert client.post(reverse(url_name, args=[target.public_id]), {"roles": ["admin"]}).status_code == 404
    target.refresh_from_db()
    assert target.is_active
    assert target.roles == ["viewer"]


def test_pages_have_no_inline_script_or_style(cast, login):
    """CSP (script-src/style-src 'self') would block inline code: every page uses /static files only."""
    pages = {
        None: ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"],
        "center_admin": ["/", "/org/members/", "/org/invitations/", "/org/api-keys/", "/org/api-keys/new/",
                         "/settings/profile/", "/settings/tokens/", "/settings/tokens/new/", "/accounts/2fa/",
                         "/accounts/2fa/recovery-codes/generate/", "/accounts/email/", "/accounts/password/change/"],
        "platform_staff": ["/", "/ops/audit/", "/ops/audit/verify/"],
        "patient": ["/", "/accounts/2fa/totp/activate/"],
    }

    def signed_in(principal):
        if principal is None:
            return Client()
        if principal == "patient":  # a real password sign-in, which the TOTP set-up page requires
            client = Client()
            client.post(reverse("account_login"), {"login": cast.patient.email, "password": TEST_PASSWORD})
            return client
        return login(cast.users[principal])

    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
    for principal, urls in pages.items():
        client = signed_in(principal)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            assert not inline_script.search(html), url
            assert " style=" not in html, url
            assert "<style" not in html, url
            assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html), url  # nothing from a CDN


# --- dashboards -------------------------------------------------------------------------------

def test_center_admin_dashboard_shows_the_organization_and_what_needs_attention(cast, login):
    invite(cast, email="pending@example.test")
    response = login(cast.center_admin).get("/")
    text = response.content.decode()
    assert response.status_code == 200
    assert "Lakeside Imaging" in text
    assert "US-TX" in text
    assert "America/Chicago" in text
    assert "pending@example.test" in text
    assert response.context["summary"].member_count == 4
    assert response.context["summary"].pending_invitation_count == 1
    assert response.context["summary"].phi_members_without_mfa == 0


def test_admin_dashboard_counts_phi_members_without_mfa(cast, login):
    MembershipFactory(organization=cast.center, roles=["technologist"])  # not enrolled
    MembershipFactory(organization=cast.center, roles=["finance"])  # no PHI role: does not count
    response = login(cast.center_admin).get("/")
    assert response.context["summary"].phi_members_without_mfa == 1


def test_technologist_dashboard_shows_organization_and_own_mfa_status(cast, login):
    response = login(cast.technologist).get("/")
    text = response.content.decode()
    assert response.context["kind"] == "member"
    assert "Lakeside Imaging" in text
    assert "Two-factor on" in text
    assert "Pending invitations" not in text


def test_radiologist_dashboard_lists_licenses_and_flags_expired_ones(cast, login):
    profile = RadiologistProfile.objects.create(user=cast.radiologist, credentials_line="MD, FACR",
                                                home_time_zone="America/Denver", subspecialties=["neuro", "msk"])
    today = datetime.datetime.now(zoneinfo.ZoneInfo(cast.radiologist.time_zone)).date()  # the viewer's today
    License.objects.create(radiologist=profile, country="US", region="TX", number="TX-1",
                           expires_on=today - datetime.timedelta(days=3))
    License.objects.create(radiologist=profile, country="US", region="CO", number="CO-2",
                           expires_on=today + datetime.timedelta(days=400))
    text = login(cast.radiologist).get("/").content.decode()
    assert "MD, FACR" in text
    assert "America/Denver" in text
    assert "Neuro" in text
    assert re.search(r'<tr class="row-expired">\s*<td>US-TX</td>', text)
    assert "Expired 3 days ago" in text
    assert "400 days left" in text


def test_patient_dashboard_explains_second_opinions(cast, login):
    response = login(cast.patient).get("/")
    assert response.context["kind"] == "patient"
    assert b"Second opinions" in response.content
    assert b"patient@example.test" in response.content


def test_platform_dashboard_counts_and_recent_events_and_the_look_is_audited(cast, login):
    audit_record(action="test.marker", actor=cast.center_admin, organization=cast.center)
    response = login(cast.platform_staff).get("/")
    overview = response.context["overview"]
    assert dict(overview.organizations_by_kind) == {"Imaging center": 2, "Radiology group": 1, "Platform": 1,
                                                    "Personal space": 0}
    assert overview.user_total == User.objects.count()
    assert overview.phi_members_without_mfa == 0
    assert b"test.marker" in response.content
    assert AuditEvent.objects.filter(action="audit_log.viewed", actor=cast.platform_staff,
                                     extra__page="dashboard").exists()


# --- organization switch ------------------------------------------------------------------------

def test_a_member_of_two_organizations_switches_the_active_one(cast, login):
    MembershipFactory(user=cast.technologist, organization=cast.other_center, roles=["viewer"])
    client = login(cast.technologist)
    first = client.get("/")
    assert first.context["active_organization"] == cast.other_center  # alphabetical first: Harbor
    assert b'id="org-switch"' in first.content
    response = client.post(reverse("organization_switch"),
                           {"organization": str(cast.center.public_id), "next": "/org/members/"})
    assert response.status_code == 302
    assert response["Location"] == "/org/members/"
    assert client.get("/").context["active_organization"] == cast.center


def test_switching_to_an_organization_one_does_not_belong_to_is_404(cast, login):
    client = login(cast.platform_staff)  # staff can see every organization, but belong to one
    response = client.post(reverse("organization_switch"), {"organization": str(cast.center.public_id)})
    assert response.status_code == 404
    assert client.get("/").context["active_organization"] == cast.platform


def test_switch_ignores_an_offsite_next(cast, login):
    MembershipFactory(user=cast.technologist, organization=cast.other_center, roles=["viewer"])
    response = login(cast.technologist).post(reverse("organization_switch"), {
        "organization": str(cast.center.public_id), "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard")


# --- members ------------------------------------------------------------------------------------

def test_admin_changes_roles_through_the_service(cast, login):
    membership = Membership.objects.get(user=cast.center_viewer)
    response = login(cast.center_admin).post(reverse("member_edit", args=[membership.public_id]),
                                             {"roles": ["technologist", "viewer"]})
    assert response.status_code == 302
    assert response["Location"] == reverse("member_list")
    membership.refresh_from_db()
    assert membership.roles == ["technologist", "viewer"]
    assert AuditEvent.objects.filter(action="membership.roles_changed", object_id=str(membership.public_id)).exists()


def test_the_last_admin_cannot_drop_their_own_admin_role(cast, login):
    membership = Membership.objects.get(user=cast.center_admin)
    response = login(cast.center_admin).post(reverse("member_edit", args=[membership.public_id]),
                                             {"roles": ["technologist"]})
    assert response.status_code == 200
    assert b"An organization must keep at least one admin." in response.content
    membership.refresh_from_db()
    assert membership.roles == ["admin"]


def test_admin_removes_a_member_and_the_last_admin_cannot_be_removed(cast, login):
    client = login(cast.center_admin)
    viewer = Membership.objects.get(user=cast.center_viewer)
    response = client.post(reverse("member_remove", args=[viewer.public_id]))
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.is_active is False
    assert AuditEvent.objects.filter(action="membership.deactivated", object_id=str(viewer.public_id)).exists()
    own = Membership.objects.get(user=cast.center_admin)
    refused = client.post(reverse("member_remove", args=[own.public_id]))
    assert refused.status_code == 400
    assert b"at least one admin" in refused.content
    own.refresh_from_db()
    assert own.is_active


def test_removal_asks_for_confirmation_first(cast, login):
    viewer = Membership.objects.get(user=cast.center_viewer)
    response = login(cast.center_admin).get(reverse("member_remove", args=[viewer.public_id]))
    assert response.status_code == 200
    assert b"Remove member" in response.content
    viewer.refresh_from_db()
    assert viewer.is_active


def test_members_page_lists_members_with_their_mfa_status(cast, login):
    response = login(cast.technologist).get(reverse("member_list"))
    rows = {m.user.email: m.has_totp for m in response.context["page_obj"].object_list}
    assert rows == {"center_admin@example.test": True, "technologist@example.test": True,
                    "center_finance@example.test": False, "center_viewer@example.test": False}
    assert b"Change roles" not in response.content  # not an admin: no management buttons


def test_members_page_query_count_does_not_grow_with_members(cast, login, django_assert_max_num_queries):
    client = login(cast.center_admin)
    client.get(reverse("member_list"))  # warm the session
    with django_assert_max_num_queries(10):
        client.get(reverse("member_list"))
    for _ in range(40):
        MembershipFactory(organization=cast.center, roles=["technologist"])
    with django_assert_max_num_queries(10):
        response = client.get(reverse("member_list"))
    assert len(response.context["page_obj"].object_list) == 44


# --- invitations --------------------------------------------------------------------------------

def test_admin_invites_someone_from_the_page(cast, login, django_capture_on_commit_callbacks):
    client = login(cast.center_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("invitation_list"), {"email": "New.Tech@Example.test", "role": "technologist"})
    assert response.status_code == 302
    invitation = Invitation.objects.get(organization=cast.center, email="new.tech@example.test")
    assert invitation.role == "technologist"
    assert invitation.status == "pending"
    assert len(mail.outbox) == 1
    assert "/invitations/" in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="invitation.created", object_id=str(invitation.public_id)).exists()
    expires = timezone.localtime(invitation.expires_at, zoneinfo.ZoneInfo(cast.center_admin.time_zone))
    listing = client.get(reverse("invitation_list")).content.decode()
    assert "Invitation sent to new.tech@example.test as Technologist." in listing
    assert f"expires on {expires:%b} {expires.day}, " in listing
    assert f"{expires:%H:%M} {expires.tzname()}." in listing  # the admin's zone, with its abbreviation


def test_inviting_an_existing_member_shows_the_error_on_the_form(cast, login):
    response = login(cast.center_admin).post(reverse("invitation_list"),
                                             {"email": "technologist@example.test", "role": "viewer"})
    assert response.status_code == 400
    assert b"is already a member of Lakeside Imaging" in response.content
    assert not Invitation.objects.exists()


def test_non_admin_cannot_invite(cast, login):
    response = login(cast.technologist).post(reverse("invitation_list"), {"email": "x@example.test",
                                                                          "role": "admin"})
    assert response.status_code == 404
    assert not Invitation.objects.exists()


def test_admin_revokes_an_invitation(cast, login):
    invitation, token = invite(cast)
    response = login(cast.center_admin).post(reverse("invitation_revoke", args=[invitation.public_id]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert Client().get(reverse("invitation_accept", args=[token])).status_code == 404


def test_another_organizations_admin_cannot_revoke(cast, login):
    invitation, _ = invite(cast)
    response = login(cast.other_admin).post(reverse("invitation_revoke", args=[invitation.public_id]))
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == "pending"


# --- API keys and personal tokens --------------------------------------------------------------

def test_admin_creates_an_api_key_after_fresh_mfa_and_sees_the_secret_once(cast, login):
    client = login(cast.center_admin)
    response = client.post(reverse("api_key_create"), {"name": "PACS gateway", "roles": ["technologist"]})
    assert response.status_code == 200
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', response.content.decode()).group(1)
    key = OrganizationApiKey.objects.get(organization=cast.center, name="PACS gateway")
    assert key.secret_hash == ApiCredential.hash_secret(secret)
    assert secret not in key.secret_hash
    assert services.credential_for_secret(secret) == key
    assert response["Cache-Control"] == "no-store"
    listing = client.get(reverse("api_key_list")).content.decode()
    assert "PACS gateway" in listing
    assert secret not in listing


def test_api_key_creation_without_fresh_mfa_is_sent_to_reauthenticate(cast, login):
    client = login(cast.center_admin, fresh_mfa=False)
    url = reverse("api_key_create")
    for response in (client.get(url), client.post(url, {"name": "x", "roles": ["viewer"]})):
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('mfa_reauthenticate')}?{urlencode({'next': url})}"
    assert not OrganizationApiKey.objects.exists()


def test_reauthenticating_with_a_totp_code_lets_the_admin_create_the_key(cast, login, totp_code):
    client = login(cast.center_admin, fresh_mfa=False)
    url = reverse("api_key_create")
    reauth = client.get(client.get(url)["Location"])
    assert reauth.status_code == 200
    assert b"Confirm it" in reauth.content
    done = client.post(f"{reverse('mfa_reauthenticate')}?{urlencode({'next': url})}",
                       {"code": totp_code(cast.totp_secrets["center_admin"]), "next": url})
    assert done.status_code == 302
    assert done["Location"] == url
    assert client.post(url, {"name": "RIS", "roles": ["viewer"]}).status_code == 200
    assert OrganizationApiKey.objects.filter(name="RIS").exists()


def test_api_key_roles_are_limited_to_integration_roles(cast, login):
    response = login(cast.center_admin).post(reverse("api_key_create"), {"name": "x", "roles": ["admin"]})
    assert response.status_code == 400
    assert not OrganizationApiKey.objects.exists()


def test_admin_revokes_an_api_key_and_another_admin_cannot(cast, login):
    key, secret = services.api_key_create(actor=actor(cast.center_admin), organization=cast.center, name="k")
    assert login(cast.other_admin).post(reverse("api_key_revoke", args=[key.public_id])).status_code == 404
    assert services.credential_for_secret(secret) == key
    assert login(cast.center_admin).post(reverse("api_key_revoke", args=[key.public_id])).status_code == 302
    assert services.credential_for_secret(secret) is None


def test_personal_token_needs_fresh_mfa_for_a_totp_user(cast, login):
    url = reverse("token_create")
    stale = login(cast.technologist, fresh_mfa=False).post(url, {"name": "scripts", "expires_in_days": "30"})
    assert stale.status_code == 302
    assert stale["Location"].startswith(reverse("mfa_reauthenticate"))
    assert not PersonalApiToken.objects.exists()
    fresh = login(cast.technologist).post(url, {"name": "scripts", "expires_in_days": "30"})
    assert fresh.status_code == 200
    token = PersonalApiToken.objects.get(user=cast.technologist)
    assert token.expires_at.date() == (timezone.now() + datetime.timedelta(days=30)).date()
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', fresh.content.decode()).group(1)
    assert services.credential_for_secret(secret) == token


def test_a_patient_without_totp_creates_a_token_directly(cast, login):
    response = login(cast.patient).post(reverse("token_create"), {"name": "my tool", "expires_in_days": ""})
    assert response.status_code == 200
    assert PersonalApiToken.objects.get(user=cast.patient).expires_at is None


def test_tokens_are_revoked_by_their_owner_only(cast, login):
    token, secret = services.personal_token_create(actor=actor(cast.patient), name="t")
    assert login(cast.center_admin).post(reverse("token_revoke", args=[token.public_id])).status_code == 404
    assert login(cast.patient).post(reverse("token_revoke", args=[token.public_id])).status_code == 302
    assert services.credential_for_secret(secret) is None


def test_profile_changes_the_time_zone_used_on_every_page(cast, login):
    client = login(cast.patient)
    response = client.post(reverse("profile"), {"full_name": "Pat Ient", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    cast.patient.refresh_from_db()
    assert (cast.patient.full_name, cast.patient.time_zone) == ("Pat Ient", "Asia/Tokyo")
    assert b"Asia/Tokyo" in client.get("/").content


# --- invitation acceptance ------------------------------------------------------------------------

def test_signed_in_invitee_sees_the_organization_and_accepts(cast, login):
    user = UserFactory(email="joiner@example.test", kind=User.Kind.PATIENT)
    _, token = invite(cast, email="joiner@example.test", role="finance")
    client = login(user)
    page = client.get(reverse("invitation_accept", args=[token]))
    assert page.status_code == 200
    assert b"Lakeside Imaging" in page.content
    assert b"Finance" in page.content
    assert b"Accept invitation" in page.content
    response = client.post(reverse("invitation_accept", args=[token]))
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    membership = Membership.objects.get(user=user, organization=cast.center)
    assert membership.roles == ["finance"]
    assert membership.is_active
    assert client.get("/").context["active_organization"] == cast.center


def test_invitee_with_a_phi_role_goes_to_totp_enrollment_after_accepting(cast, login):
    user = UserFactory(email="joiner@example.test")
    _, token = invite(cast, email="joiner@example.test", role="technologist")
    response = login(user).post(reverse("invitation_accept", args=[token]))
    assert response["Location"] == f"{reverse('mfa_activate_totp')}?{urlencode({'next': '/'})}"


def test_invitation_for_another_email_is_a_404_for_a_signed_in_user(cast, login):
    _, token = invite(cast, email="someone.else@example.test")
    client = login(cast.patient)
    for response in (client.get(reverse("invitation_accept", args=[token])),
                     client.post(reverse("invitation_accept", args=[token]))):
        assert response.status_code == 404
        assert b"This invitation link is not valid" in response.content
        assert b"someone.else@example.test" not in response.content
    assert not Membership.objects.filter(user=cast.patient).exists()


def test_anonymous_newcomer_creates_an_account_joins_and_is_sent_to_enroll(cast):
    _, token = invite(cast, email="fresh@example.test", role="technologist")
    client = Client()
    url = reverse("invitation_accept", args=[token])
    page = client.get(url)
    assert page.status_code == 200
    assert b"Create your account" in page.content
    assert b"fresh@example.test" in page.content
    response = client.post(url, {"full_name": "Fresh Face", "password": TEST_PASSWORD,
                                 "password_again": TEST_PASSWORD})
    user = User.objects.get(email="fresh@example.test")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('mfa_activate_totp')}?{urlencode({'next': '/'})}"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert user.check_password(TEST_PASSWORD)
    assert user.full_name == "Fresh Face"
    assert Membership.objects.get(user=user).roles == ["technologist"]
    enroll = client.get(response["Location"])
    assert enroll.status_code == 200
    assert b'id="totp-secret"' in enroll.content
    assert client.get("/").status_code == 302  # the MFA gate holds until TOTP is set up


def test_anonymous_newcomer_with_mismatched_passwords_is_asked_again(cast):
    _, token = invite(cast, email="fresh@example.test")
    response = Client().post(reverse("invitation_accept", args=[token]), {
        "full_name": "F", "password": TEST_PASSWORD, "password_again": TEST_PASSWORD + "x"})
    assert response.status_code == 400
    assert b"The two passwords differ." in response.content
    assert not User.objects.filter(email="fresh@example.test").exists()


def test_anonymous_newcomer_with_a_weak_password_sees_why(cast):
    _, token = invite(cast, email="fresh@example.test")
    response = Client().post(reverse("invitation_accept", args=[token]), {
        "full_name": "F", "password": "password", "password_again": "password"})
    assert response.status_code == 400
    assert b"too common" in response.content
    assert not User.objects.filter(email="fresh@example.test").exists()


def test_anonymous_visitor_whose_account_exists_is_asked_to_sign_in_first(cast):
    _, token = invite(cast, email="patient@example.test", role="viewer")
    url = reverse("invitation_accept", args=[token])
    response = Client().get(url)
    assert response.status_code == 200
    assert f'href="{reverse("account_login")}?{urlencode({"next": url})}"'.encode() in response.content
    assert b"Create your account" not in response.content


@pytest.mark.parametrize("how", ["expired", "revoked", "unknown"])
def test_invalid_invitation_links_are_a_styled_404(cast, login, how):
    invitation, token = invite(cast, email="patient@example.test")
    if how == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    elif how == "revoked":
        services.invitation_revoke(actor=actor(cast.center_admin), invitation=invitation)
    else:
        token = "not-a-real-token"
    for client in (Client(), login(cast.patient)):
        assert client.get(reverse("invitation_accept", args=[token])).status_code == 404
        response = client.post(reverse("invitation_accept", args=[token]))
        assert response.status_code == 404
        assert b"This invitation link is not valid" in response.content
    assert not Membership.objects.filter(user=cast.patient).exists()


def test_an_invitation_works_once(cast, login):
    _, token = invite(cast, email="patient@example.test", role="viewer")
    client = login(cast.patient)
    assert client.post(reverse("invitation_accept", args=[token])).status_code == 302
    again = client.post(reverse("invitation_accept", args=[token]))
    assert again.status_code == 404
    assert Membership.objects.filter(user=cast.patient).count() == 1


# --- CSRF on every form ----------------------------------------------------------------------------

def _csrf_cases(cast):
    viewer = Membership.objects.get(user=cast.center_viewer)
    invitation, _ = invite(cast, email="pending@example.test")
    key, _ = services.api_key_create(actor=actor(cast.center_admin), organization=cast.center, name="k")
    token, _ = services.personal_token_create(actor=actor(cast.center_admin), name="t")
    _, mine = invite(cast, email="patient@example.test", role="viewer")
    _, anonymous = invite(cast, email="nobody-yet@example.test", role="viewer")
    admin = cast.center_admin
    return [
        (admin, reverse("organization_switch"), {"organization": str(cast.center.public_id)}),
        (admin, reverse("member_edit", args=[viewer.public_id]), {"roles": ["admin"]}),
        (admin, reverse("member_remove", args=[viewer.public_id]), {}),
        (admin, reverse("invitation_list"), {"email": "csrf@example.test", "role": "admin"}),
        (admin, reverse("invitation_revoke", args=[invitation.public_id]), {}),
        (admin, reverse("api_key_create"), {"name": "csrf", "roles": ["viewer"]}),
        (admin, reverse("api_key_revoke", args=[key.public_id]), {}),
        (admin, reverse("token_create"), {"name": "csrf"}),
        (admin, reverse("token_revoke", args=[token.public_id]), {}),
        (admin, reverse("profile"), {"full_name": "Mallory", "time_zone": "Asia/Tokyo"}),
        (cast.patient, reverse("invitation_accept", args=[mine]), {}),
        (None, reverse("invitation_accept", args=[anonymous]), {
            "full_name": "M", "password": TEST_PASSWORD, "password_again": TEST_PASSWORD}),
    ]


def _state():
    return {
        "memberships": sorted(Membership.objects.values_list("id", "roles", "is_active")),
        "invitations": sorted(Invitation.objects.values_list("id", "revoked_at", "accepted_at")),
        "keys": sorted(OrganizationApiKey.objects.values_list("id", "revoked_at")),
        "tokens": sorted(PersonalApiToken.objects.values_list("id", "revoked_at")),
        "users": sorted(User.objects.values_list("id", "full_name", "time_zone")),
    }


def test_every_form_refuses_a_post_without_a_csrf_token(cast):
    cases = _csrf_cases(cast)
    before = _state()
    for user, url, data in cases:
        response = csrf_client(user).post(url, data)
        assert response.status_code == 403, url
        assert b"This form could not be accepted" in response.content, url
    assert _state() == before


def test_the_same_form_with_its_csrf_token_goes_through(cast):
    client = csrf_client(cast.center_admin)
    page = client.get(reverse("invitation_list"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(reverse("invitation_list"), {"email": "ok@example.test", "role": "viewer",
                                                        "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Invitation.objects.filter(email="ok@example.test").exists()


# --- audit log page ---------------------------------------------------------------------------------

@pytest.fixture
def audit_rows(cast):
    """A small, known log: three actions across two organizations and outcomes."""
    return {
        "center_login": audit_record(action="auth.login", actor=cast.center_admin, organization=cast.center),
        "other_denied": audit_record(action="auth.login_failed", actor=cast.other_admin,
                                     organization=cast.other_center, outcome=AuditEvent.Outcome.DENIED,
                                     reason="bad password"),
        "study_read": audit_record(action="study.viewed", actor=cast.technologist, organization=cast.center,
                                   object_type="studies.study", object_id="1.2.840.99", reason="=HYPERLINK(1)"),
    }


def _listed(response):
    """The listed actions, leaving out the viewer's own (their sign-in, their looking at the log)."""
    viewer = response.wsgi_request.user.email
    return [event.action for event in response.context["page_obj"].object_list if event.actor_email != viewer]


@pytest.mark.parametrize(("query", "expected"), [
    ({}, ["study.viewed", "auth.login_failed", "auth.login"]),
    ({"actor_email": "OTHER_ADMIN"}, ["auth.login_failed"]),
    ({"action": "auth.login"}, ["auth.login"]),
    ({"action": "auth."}, ["auth.login_failed", "auth.login"]),
    ({"outcome": "denied"}, ["auth.login_failed"]),
    ({"object_id": "1.2.840.99"}, ["study.viewed"]),
])
def test_audit_log_filters(cast, login, audit_rows, query, expected):
    response = login(cast.platform_staff).get(reverse("audit_log"), query)
    assert response.status_code == 200
    assert _listed(response) == expected


def test_audit_log_filters_by_organization_public_id(cast, login, audit_rows):
    response = login(cast.platform_staff).get(reverse("audit_log"), {"organization": str(cast.center.public_id)})
    assert _listed(response) == ["study.viewed", "auth.login"]


def _event_at(when: datetime.datetime, action: str) -> AuditEvent:
    """An audit row at a chosen time, appended to the chain exactly as audit_record would."""
    last = AuditEvent.objects.order_by("-id").values_list("row_hash", flat=True).first()
    event = AuditEvent(action=action, created_at=when, prev_hash=last or "0" * 64)
    event.row_hash = event.compute_hash()
    event.save(force_insert=True)
    return event


def test_audit_log_dates_are_days_in_the_viewers_time_zone(cast, login):
    staff = cast.platform_staff
    staff.time_zone = "Asia/Tokyo"
    staff.save(update_fields=["time_zone"])
    _event_at(datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC), "late.event")  # March 2nd in Tokyo
    client = login(staff)

    def listed(**query):
        return _listed(client.get(reverse("audit_log"), {"action": "late.event", **query}))

    assert listed(date_from="2026-03-02", date_to="2026-03-02") == ["late.event"]
    assert listed(date_to="2026-03-01") == []
    assert listed(date_from="2026-03-03") == []
    assert b"Chain intact" in client.get(reverse("audit_log_verify")).content


def test_audit_log_shows_times_in_the_viewers_zone(cast, login, audit_rows):
    staff = cast.platform_staff
    staff.time_zone = "Asia/Kolkata"
    staff.save(update_fields=["time_zone"])
    event = audit_rows["center_login"]
    local = event.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    text = login(staff).get(reverse("audit_log"), {"action": "auth.login"}).content.decode()
    assert local.strftime("%Y-%m-%d %H:%M:%S") + " IST" in text


def test_viewing_the_audit_log_is_itself_audited(cast, login, audit_rows):
    response = login(cast.platform_staff).get(reverse("audit_log"), {"outcome": "denied", "page": "1"})
    assert b'href="/ops/audit/export.csv?outcome=denied"' in response.content  # the export keeps the filters
    viewed = AuditEvent.objects.filter(action="audit_log.viewed", actor=cast.platform_staff).latest("id")
    assert viewed.extra["filters"] == {"outcome": "denied"}
    assert viewed.ip_address == "127.0.0.1"


def test_audit_log_is_paginated_by_50(cast, login):
    for i in range(60):
        audit_record(action="bulk.event", actor=cast.center_admin, object_id=str(i))
    client = login(cast.platform_staff)
    first = client.get(reverse("audit_log"), {"action": "bulk.event"})
    second = client.get(reverse("audit_log"), {"action": "bulk.event", "page": 2})
    assert len(first.context["page_obj"].object_list) == 50
    assert [e.object_id for e in second.context["page_obj"].object_list] == [str(i) for i in range(9, -1, -1)]
    assert b"action=bulk.event&amp;page=2" in first.content


def test_audit_page_query_count_does_not_grow_with_rows(cast, login, django_assert_max_num_queries):
    client = login(cast.platform_staff)
    client.get(reverse("audit_log"))
    with django_assert_max_num_queries(16):
        client.get(reverse("audit_log"))
    for i in range(80):
        audit_record(action=f"bulk.event{i % 7}", actor=cast.center_admin, organization=cast.center)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("audit_log"))
    assert len(response.context["page_obj"].object_list) == 50


def test_csv_export_streams_the_filtered_rows_and_is_audited(cast, login, audit_rows):
    response = login(cast.platform_staff).get(reverse("audit_log_export"),
                                              {"organization": str(cast.center.public_id)})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="readroom-audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["study.viewed", "auth.login"]
    study = rows[0]
    assert study["actor_email"] == "technologist@example.test"
    assert study["organization"] == "Lakeside Imaging"
    assert study["reason"] == "'=HYPERLINK(1)"  # a formula is neutralised for spreadsheets
    assert study["time_utc"].endswith("Z")
    exported = AuditEvent.objects.filter(action="audit_log.exported").latest("id")
    assert exported.extra["filters"] == {"organization": str(cast.center.public_id)}


def test_chain_check_reports_intact_and_broken_rows(cast, login, audit_rows):
    client = login(cast.platform_staff)
    intact = client.get(reverse("audit_log_verify"), HTTP_HX_REQUEST="true")
    assert intact.status_code == 200
    assert b"Chain intact" in intact.content
    assert b"<html" not in intact.content  # an htmx fragment
    last = AuditEvent.objects.order_by("-id").first()
    forged = AuditEvent(action="forged.row", prev_hash=last.row_hash, created_at=timezone.now())
    forged.row_hash = "f" * 64  # inserted behind audit_record's back with a hash that does not match
    forged.save(force_insert=True)
    broken = client.get(reverse("audit_log_verify"))
    assert b"<html" in broken.content  # without htmx: a full page
    assert b"Chain broken: 1 row does not verify" in broken.content
    assert str(forged.pk).encode() in broken.content
    assert AuditEvent.objects.filter(action="audit_log.verified").count() == 2


# --- error pages ------------------------------------------------------------------------------------

def test_server_error_page_renders_without_a_request():
    html = render_to_string("500.html")
    assert "Something went wrong" in html
    assert "/static/css/readroom.css" in html


def test_a_phi_role_is_told_why_totp_cannot_be_turned_off(cast, login):
    response = login(cast.technologist).get(reverse("mfa_deactivate_totp"))
    assert response.status_code == 200
    assert b"must keep two-factor authentication" in response.content
    assert b'action="/accounts/2fa/totp/deactivate/"' not in response.content
