"""Every route × every principal: the expected status for each cell (reliability.md, "Access").

Principals: anonymous, each role at the center, a radiologist (in a group), another center's
admin, platform staff and a patient. Objects belong to the center. Foreign and missing objects
look the same: 404.
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from accounts import policy, services
from accounts.models import Membership
from tests.test_route_policy import DECLARED

PRINCIPALS = ["anonymous", "center_admin", "technologist", "center_finance", "center_viewer", "radiologist",
              "other_admin", "platform_staff", "patient"]
SIGNED_IN = PRINCIPALS[1:]
CENTER = {"center_admin", "technologist", "center_finance", "center_viewer"}
ADMINS_OF_THEIR_ACTIVE_ORG = {"center_admin", "other_admin", "platform_staff"}


def expect(ok: set[str] | str, *, ok_status=200, others=404, anonymous=302, method_not_allowed=False) -> dict:
    """Build one row of the matrix: ``ok`` principals get ``ok_status``, the rest ``others``."""
    allowed = set(SIGNED_IN) if ok == "all" else ok
    row = {p: (405 if method_not_allowed else ok_status) if p in allowed else others for p in SIGNED_IN}
    row["anonymous"] = anonymous
    return row


PAGE, API = 302, 401  # what anonymous gets: a redirect to sign in, or 401 with the error format

# route name → (kwargs builder, expected row)
MATRIX = {
    # public
    "healthz": (None, expect("all", anonymous=200)),
    "api_schema": (None, expect("all", anonymous=200)),
    "api_docs": (None, expect("all", anonymous=200)),
    "api_redoc": (None, expect("all", anonymous=200)),
    # pages about oneself
    "dashboard": (None, expect("all", anonymous=PAGE)),
    "profile": (None, expect("all", anonymous=PAGE)),
    "token_list": (None, expect("all", anonymous=PAGE)),
    "token_create": (None, expect("all", anonymous=PAGE)),
    "token_revoke": (lambda o: {"public_id": o["token"].public_id}, expect("all", anonymous=PAGE,
                                                                            method_not_allowed=True)),
    "organization_switch": (None, expect("all", anonymous=PAGE, method_not_allowed=True)),
    # pages about the active organization
    "member_list": (None, expect(set(SIGNED_IN) - {"patient"}, anonymous=PAGE)),
    "member_edit": (lambda o: {"public_id": o["membership"].public_id}, expect({"center_admin"}, anonymous=PAGE)),
    "member_remove": (lambda o: {"public_id": o["membership"].public_id}, expect({"center_admin"}, anonymous=PAGE)),
    "invitation_list": (None, expect(ADMINS_OF_THEIR_ACTIVE_ORG, anonymous=PAGE)),
    "invitation_revoke": (lambda o: {"public_id": o["invitation"].public_id},
                          expect("all", anonymous=PAGE, method_not_allowed=True)),
    "api_key_list": (None, expect(ADMINS_OF_THEIR_ACTIVE_ORG, anonymous=PAGE)),
    "api_key_create": (None, expect(ADMINS_OF_THEIR_ACTIVE_ORG, anonymous=PAGE)),
    "api_key_revoke": (lambda o: {"public_id": o["key"].public_id},
                       expect("all", anonymous=PAGE, method_not_allowed=True)),
    # platform operations
    "audit_log": (None, expect({"platform_staff"}, anonymous=PAGE)),
    "audit_log_export": (None, expect({"platform_staff"}, anonymous=PAGE)),
    "audit_log_verify": (None, expect({"platform_staff"}, anonymous=PAGE)),
    # a link with a token for someone who has no account yet
    "invitation_accept": (lambda o: {"token": o["invitation_token"]}, expect(set(), anonymous=200)),
    # API about oneself
    "api_me": (None, expect("all", anonymous=API)),
    "api_memberships": (None, expect("all", anonymous=API)),
    "api_tokens": (None, expect("all", anonymous=API)),
    "api_token_detail": (lambda o: {"public_id": o["token"].public_id}, expect({"center_admin"}, anonymous=API)),
    "api_organizations": (None, expect("all", anonymous=API)),
    # API about the center
    "api_organization_detail": (lambda o: {"public_id": o["center"].public_id},
                                expect(CENTER | {"platform_staff"}, anonymous=API)),
    "api_organization_activate": (lambda o: {"public_id": o["center"].public_id},
                                  expect("all", anonymous=API, method_not_allowed=True)),
    "api_members": (lambda o: {"organization_id": o["center"].public_id},
                    expect(CENTER | {"platform_staff"}, anonymous=API)),
    "api_member_detail": (lambda o: {"organization_id": o["center"].public_id, "public_id": o["membership"].public_id},
                          expect(CENTER | {"platform_staff"}, anonymous=API)),
    "api_invitations": (lambda o: {"organization_id": o["center"].public_id}, expect({"center_admin"}, anonymous=API)),
    "api_invitation_detail": (lambda o: {"organization_id": o["center"].public_id,
                                         "public_id": o["invitation"].public_id},
                              expect({"center_admin"}, anonymous=API)),
    "api_api_keys": (lambda o: {"organization_id": o["center"].public_id}, expect({"center_admin"}, anonymous=API)),
    "api_api_key_detail": (lambda o: {"organization_id": o["center"].public_id, "public_id": o["key"].public_id},
                           expect({"center_admin"}, anonymous=API)),
}


@pytest.fixture
def objects(cast):
    admin = policy.actor_for_user(cast.center_admin)
    invitation, invitation_token = services.invitation_create(actor=admin, organization=cast.center,
                                                              email="newcomer@example.test", role="viewer")
    key, _ = services.api_key_create(actor=admin, organization=cast.center, name="RIS bridge")
    token, _ = services.personal_token_create(actor=admin, name="laptop")
    return {
        "center": cast.center,
        "membership": Membership.objects.get(user=cast.technologist),
        "invitation": invitation,
        "invitation_token": invitation_token,
        "key": key,
        "token": token,
    }


def test_the_matrix_covers_every_declared_route():
    assert set(MATRIX) == set(DECLARED)


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_access_matrix(route, cast, objects, login):
    build_kwargs, expected = MATRIX[route]
    url = reverse(route, kwargs=build_kwargs(objects) if build_kwargs else None)
    got = {}
    for principal in PRINCIPALS:
        client = login(None if principal == "anonymous" else cast.users[principal])
        got[principal] = client.get(url).status_code
    assert got == expected, f"{route} ({url})"


UUID_ROUTES = [name for name, (build, _) in MATRIX.items() if build and name != "invitation_accept"]


@pytest.mark.parametrize("route", sorted(UUID_ROUTES))
def test_a_missing_object_and_another_tenants_object_look_the_same(route, cast, objects, login):
    """For the center's admin, a random id and the other center's equivalent object both answer 404."""
    build_kwargs, expected = MATRIX[route]
    method = "post" if expected["center_admin"] == 405 else "get"  # POST-only routes are probed by POST
    other_admin = policy.actor_for_user(cast.other_admin)
    foreign = {
        "center": cast.other_center,
        "membership": Membership.objects.get(user=cast.other_admin),
        "invitation": services.invitation_create(actor=other_admin, organization=cast.other_center,
                                                 email="theirs@example.test", role="viewer")[0],
        "key": services.api_key_create(actor=other_admin, organization=cast.other_center, name="theirs")[0],
        "token": services.personal_token_create(actor=other_admin, name="theirs")[0],
    }
    missing = {name: type("Missing", (), {"public_id": uuid.uuid4()})() for name in foreign}
    client = login(cast.center_admin)
    for label, objs in (("foreign", foreign), ("missing", missing)):
        response = getattr(client, method)(reverse(route, kwargs=build_kwargs(objs)))
        assert response.status_code == 404, f"{route}: {label} object answered {response.status_code} to {method}"
    # Probing changed nothing of the other tenant's.
    foreign["invitation"].refresh_from_db()
    foreign["key"].refresh_from_db()
    foreign["token"].refresh_from_db()
    assert foreign["invitation"].revoked_at is None
    assert foreign["key"].revoked_at is None
    assert foreign["token"].revoked_at is None
