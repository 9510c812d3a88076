"""API credentials: organization API keys and personal tokens, over the REST API and the console."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import policy, services
from accounts.models import ApiCredential, AuditEvent, Membership, OrganizationApiKey, PersonalApiToken


def url(name: str, *args) -> str:
    return reverse(name, args=[str(a) for a in args])


def bearer_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def stored_values(row) -> list[str]:
    return [str(getattr(row, f.attname)) for f in row._meta.concrete_fields]


@pytest.fixture
def center_key(cast):
    """An organization key of the center (technologist role) and its secret."""
    return services.api_key_create(actor=None, organization=cast.center, name="PACS gateway")


# --- organization API keys: management --------------------------------------------------------

def test_admin_creates_a_key_whose_secret_is_shown_once_and_only_hashed(cast, login):
    client = login(cast.center_admin, api=True)
    keys_url = url("api_api_keys", cast.center.public_id)

    response = client.post(keys_url, {"name": "RIS bridge", "roles": ["technologist", "viewer"]}, format="json")

    assert response.status_code == 201
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("rrk_")
    assert body["roles"] == ["technologist", "viewer"]
    key = OrganizationApiKey.objects.get(public_id=body["public_id"])
    assert key.secret_hash == ApiCredential.hash_secret(secret)
    assert key.organization == cast.center
    assert key.created_by == cast.center_admin
    assert not any(secret in value for value in stored_values(key))
    listing = client.get(keys_url)
    assert listing.status_code == 200
    assert secret not in listing.content.decode()
    [listed] = listing.json()["results"]
    assert set(listed) == {"public_id", "name", "prefix", "roles", "created_at", "last_used_at", "revoked_at"}
    assert listed["prefix"] == key.prefix
    event = AuditEvent.objects.get(action="api_key.created", object_id=body["public_id"])
    assert (event.actor, event.organization) == (cast.center_admin, cast.center)
    assert secret not in str(event.extra)


def test_creating_a_key_needs_a_fresh_mfa_check(cast, login):
    response = login(cast.center_admin, api=True, fresh_mfa=False).post(
        url("api_api_keys", cast.center.public_id), {"name": "RIS bridge"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_reauthentication_required"
    assert not OrganizationApiKey.objects.exists()


def test_creating_a_key_through_a_personal_token_is_refused_for_lack_of_fresh_mfa(cast):
    # A bearer token carries no MFA check, so it cannot mint organization keys.
    _, secret = services.personal_token_create(actor=policy.actor_for_user(cast.center_admin), name="cli")

    response = bearer_client(secret).post(url("api_api_keys", cast.center.public_id), {"name": "x"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_reauthentication_required"
    assert not OrganizationApiKey.objects.exists()


def test_non_admin_cannot_create_or_list_keys(cast, login):
    client = login(cast.technologist, api=True)

    created = client.post(url("api_api_keys", cast.center.public_id), {"name": "mine"}, format="json")
    listed = client.get(url("api_api_keys", cast.center.public_id))

    assert created.status_code == 403
    assert created.json()["error"]["code"] == "permission_denied"
    assert listed.status_code == 404
    assert not OrganizationApiKey.objects.exists()


def test_another_organizations_admin_cannot_create_keys_for_it(cast, login):
    response = login(cast.other_admin, api=True).post(url("api_api_keys", cast.center.public_id), {"name": "x"},
                                                      format="json")

    assert response.status_code == 404
    assert not OrganizationApiKey.objects.exists()


def test_a_key_cannot_be_given_the_admin_role(cast, login):
    response = login(cast.center_admin, api=True).post(url("api_api_keys", cast.center.public_id),
                                                       {"name": "root", "roles": ["admin"]}, format="json")

    assert response.status_code == 400
    assert "roles" in response.json()["error"]["fields"]
    assert not OrganizationApiKey.objects.exists()


def test_revoked_key_is_refused_with_401_and_the_revocation_is_audited(cast, login, center_key):
    key, secret = center_key
    assert bearer_client(secret).get(url("api_me")).status_code == 200

    response = login(cast.center_admin, api=True).delete(url("api_api_key_detail", cast.center.public_id,
                                                             key.public_id))

    assert response.status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=str(key.public_id),
                                     actor=cast.center_admin).exists()
    refused = bearer_client(secret).get(url("api_me"))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"


def test_another_organizations_admin_cannot_revoke_a_key(cast, login, center_key):
    key, secret = center_key

    response = login(cast.other_admin, api=True).delete(url("api_api_key_detail", cast.center.public_id,
                                                            key.public_id))

    assert response.status_code == 404
    assert bearer_client(secret).get(url("api_me")).status_code == 200


# --- organization API keys: what they can reach ------------------------------------------------

def test_key_on_me_describes_the_key(cast, center_key):
    key, secret = center_key

    response = bearer_client(secret).get(url("api_me"))

    assert response.status_code == 200
    body = response.json()
    assert body["principal"] == "api_key"
    assert body["name"] == "PACS gateway"
    assert body["roles"] == ["technologist"]
    assert body["organization"]["slug"] == "lakeside"
    assert "secret" not in body
    assert bearer_client(secret).get(url("api_memberships")).json()["results"] == []


def test_key_sets_last_used_at(cast, center_key):
    key, secret = center_key
    assert key.last_used_at is None

    bearer_client(secret).get(url("api_organizations"))

    key.refresh_from_db()
    assert key.last_used_at is not None
    assert timezone.now() - key.last_used_at < timedelta(minutes=1)


def test_key_of_organization_a_never_reaches_organization_b(cast, center_key):
    _, secret = center_key
    client = bearer_client(secret)
    other = cast.other_center
    other_member = Membership.objects.get(user=cast.other_admin, organization=other)

    assert [o["slug"] for o in client.get(url("api_organizations")).json()["results"]] == ["lakeside"]
    assert client.get(url("api_organization_detail", other.public_id)).status_code == 404
    assert client.get(url("api_members", other.public_id)).status_code == 404
    assert client.get(url("api_member_detail", other.public_id, other_member.public_id)).status_code == 404
    assert client.patch(url("api_member_detail", other.public_id, other_member.public_id), {"roles": ["viewer"]},
                        format="json").status_code == 404
    assert client.get(url("api_invitations", other.public_id)).status_code == 404
    assert client.post(url("api_invitations", other.public_id), {"email": "x@example.test", "role": "viewer"},
                       format="json").status_code == 404
    assert client.get(url("api_api_keys", other.public_id)).status_code == 404
    # The same real membership addressed through the key's own organization is still not there.
    assert client.get(url("api_member_detail", cast.center.public_id, other_member.public_id)).status_code == 404


def test_key_sees_its_own_members_but_cannot_manage_members_or_keys(cast, center_key):
    _, secret = center_key
    client = bearer_client(secret)
    technologist = Membership.objects.get(user=cast.technologist, organization=cast.center)

    assert client.get(url("api_members", cast.center.public_id)).status_code == 200
    escalate = client.patch(url("api_member_detail", cast.center.public_id, technologist.public_id),
                            {"roles": ["admin"]}, format="json")
    remove = client.delete(url("api_member_detail", cast.center.public_id, technologist.public_id))
    invite = client.post(url("api_invitations", cast.center.public_id), {"email": "x@example.test", "role": "admin"},
                         format="json")
    new_key = client.post(url("api_api_keys", cast.center.public_id), {"name": "child"}, format="json")

    assert (escalate.status_code, remove.status_code, invite.status_code, new_key.status_code) == (403, 403, 403, 403)
    assert client.get(url("api_api_keys", cast.center.public_id)).status_code == 404
    assert client.get(url("api_invitations", cast.center.public_id)).status_code == 404
    technologist.refresh_from_db()
    assert (technologist.roles, technologist.is_active) == (["technologist"], True)
    assert OrganizationApiKey.objects.count() == 1


def test_key_cannot_create_personal_tokens_or_switch_organizations(cast, center_key):
    _, secret = center_key
    client = bearer_client(secret)

    token = client.post(url("api_tokens"), {"name": "sneaky"}, format="json")
    activate = client.post(url("api_organization_activate", cast.center.public_id))
    profile = client.patch(url("api_me"), {"full_name": "Key"}, format="json")

    assert token.status_code == 403
    assert activate.status_code == 403
    assert activate.json()["error"]["code"] == "session_required"
    assert profile.status_code == 403
    assert not PersonalApiToken.objects.exists()


def test_unknown_bearer_secret_is_401_with_a_bearer_challenge(db):
    response = bearer_client("rrk_000000000000_not-a-real-secret").get(url("api_me"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- personal tokens --------------------------------------------------------------------------

def test_user_creates_a_token_shown_once_that_acts_as_them(cast, login):
    client = login(cast.center_admin, api=True)

    response = client.post(url("api_tokens"), {"name": "laptop", "expires_in_days": 30}, format="json")

    assert response.status_code == 201
    secret = response.json()["secret"]
    assert secret.startswith("rrt_")
    token = PersonalApiToken.objects.get(public_id=response.json()["public_id"])
    assert token.user == cast.center_admin
    assert token.secret_hash == ApiCredential.hash_secret(secret)
    assert not any(secret in value for value in stored_values(token))
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert AuditEvent.objects.filter(action="api_token.created", object_id=str(token.public_id),
                                     actor=cast.center_admin).exists()
    listing = client.get(url("api_tokens"))
    assert secret not in listing.content.decode()
    assert [t["name"] for t in listing.json()["results"]] == ["laptop"]
    me = bearer_client(secret).get(url("api_me"))
    assert me.status_code == 200
    assert me.json()["email"] == "center_admin@example.test"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_token_creation_needs_fresh_mfa_for_a_user_with_totp(cast, login):
    response = login(cast.center_admin, api=True, fresh_mfa=False).post(url("api_tokens"), {"name": "laptop"},
                                                                         format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_reauthentication_required"
    assert not PersonalApiToken.objects.exists()


def test_user_without_totp_creates_a_token_without_an_mfa_check(cast, login):
    response = login(cast.patient, api=True).post(url("api_tokens"), {"name": "my uploads"}, format="json")

    assert response.status_code == 201
    assert PersonalApiToken.objects.get().user == cast.patient


def test_token_with_invalid_lifetime_is_refused_naming_the_field(cast, login):
    response = login(cast.patient, api=True).post(url("api_tokens"), {"name": "x", "expires_in_days": 9999},
                                                  format="json")

    assert response.status_code == 400
    assert "expires_in_days" in response.json()["error"]["fields"]


def test_revoked_token_is_refused_with_401(cast, login):
    token, secret = services.personal_token_create(actor=policy.actor_for_user(cast.patient), name="cli")

    response = login(cast.patient, api=True).delete(url("api_token_detail", token.public_id))

    assert response.status_code == 204
    assert AuditEvent.objects.filter(action="api_token.revoked", object_id=str(token.public_id)).exists()
    assert bearer_client(secret).get(url("api_me")).status_code == 401


def test_expired_token_is_refused_with_401(cast):
    token, secret = services.personal_token_create(actor=policy.actor_for_user(cast.patient), name="cli",
                                                   expires_in_days=1)
    assert bearer_client(secret).get(url("api_me")).status_code == 200

    PersonalApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert bearer_client(secret).get(url("api_me")).status_code == 401


def test_token_of_a_disabled_user_is_refused_with_401(cast):
    _, secret = services.personal_token_create(actor=policy.actor_for_user(cast.patient), name="cli")
    cast.patient.is_active = False
    cast.patient.save(update_fields=["is_active"])

    assert bearer_client(secret).get(url("api_me")).status_code == 401


def test_someone_elses_token_cannot_be_seen_or_revoked(cast, login):
    token, secret = services.personal_token_create(actor=policy.actor_for_user(cast.patient), name="cli")
    client = login(cast.center_viewer, api=True)

    assert client.get(url("api_tokens")).json()["results"] == []
    assert client.delete(url("api_token_detail", token.public_id)).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert bearer_client(secret).get(url("api_me")).status_code == 200


def test_personal_token_cannot_switch_the_active_organization(cast):
    _, secret = services.personal_token_create(actor=policy.actor_for_user(cast.center_admin), name="cli")

    response = bearer_client(secret).post(url("api_organization_activate", cast.center.public_id))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "session_required"


# --- the create_api_key management command ----------------------------------------------------

def test_create_api_key_command_prints_a_secret_that_authenticates(cast):
    out = StringIO()

    call_command("create_api_key", "--organization", "lakeside", "--name", "Modality gateway", "--role", "viewer",
                 stdout=out)

    output = out.getvalue()
    secret = re.search(r"^API key: (rrk_\S+)$", output, re.MULTILINE).group(1)
    key = OrganizationApiKey.objects.get()
    assert (key.name, key.roles, key.organization) == ("Modality gateway", ["viewer"], cast.center)
    assert key.secret_hash == ApiCredential.hash_secret(secret)
    assert "shown this once" in output
    assert AuditEvent.objects.filter(action="api_key.created", object_id=str(key.public_id), actor=None).exists()
    me = bearer_client(secret).get(url("api_me"))
    assert me.status_code == 200
    assert me.json()["organization"]["slug"] == "lakeside"
    assert me.json()["roles"] == ["viewer"]


def test_create_api_key_command_defaults_to_the_technologist_role(cast):
    call_command("create_api_key", "--organization", "harbor", "--name", "Router", stdout=StringIO())

    assert OrganizationApiKey.objects.get().roles == ["technologist"]


def test_create_api_key_command_names_an_unknown_slug(db):
    with pytest.raises(CommandError, match="no-such-center"):
        call_command("create_api_key", "--organization", "no-such-center", "--name", "x", stdout=StringIO())

    assert not OrganizationApiKey.objects.exists()


def test_create_api_key_command_refuses_a_blank_name(cast):
    with pytest.raises(CommandError, match="name"):
        call_command("create_api_key", "--organization", "lakeside", "--name", "  ", stdout=StringIO())

    assert not OrganizationApiKey.objects.exists()
