"""Every API error leaves as {"error": {"code", "message", "fields"}}, whatever raised it."""

from __future__ import annotations

import uuid

from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Membership
from tests.factories import MembershipFactory


def url(name: str, *args) -> str:
    return reverse(name, args=[str(a) for a in args])


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]


def test_serializer_validation_error_names_each_field(cast, login):
    response = login(cast.center_admin, api=True).post(url("api_invitations", cast.center.public_id),
                                                       {"email": "nope", "role": "emperor"}, format="json")

    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"email", "role"}
    assert all(isinstance(m, str) for messages in error["fields"].values() for m in messages)


def test_missing_required_field_is_named(cast, login):
    response = login(cast.center_admin, api=True).post(url("api_invitations", cast.center.public_id),
                                                       {"role": "viewer"}, format="json")

    error = assert_error(response, 400, "invalid")
    assert list(error["fields"]) == ["email"]


def test_business_rule_error_carries_its_code_and_field(cast, login):
    membership = Membership.objects.get(user=cast.center_admin, organization=cast.center)

    response = login(cast.center_admin, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id), {"roles": ["viewer"]}, format="json")

    error = assert_error(response, 400, "last_admin")
    assert error["fields"] == {"roles": ["An organization must keep at least one admin."]}


def test_malformed_json_is_a_400_in_the_same_format(cast, login):
    response = login(cast.patient, api=True).patch(url("api_me"), data="{not json", content_type="application/json")

    assert_error(response, 400, "parse_error")


def test_foreign_and_missing_objects_give_the_same_404(cast, login):
    client = login(cast.other_admin, api=True)

    foreign = assert_error(client.get(url("api_organization_detail", cast.center.public_id)), 404, "not_found")
    missing = assert_error(client.get(url("api_organization_detail", uuid.uuid4())), 404, "not_found")

    assert foreign == missing == {"code": "not_found", "message": "Not found.", "fields": {}}


def test_unknown_api_url_is_404(cast, login):
    response = login(cast.patient, api=True).get(url("api_member_detail", uuid.uuid4(), uuid.uuid4()))

    assert_error(response, 404, "not_found")


def test_anonymous_request_is_401_with_a_bearer_challenge(db):
    response = APIClient().get(url("api_me"))

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bad_bearer_secret_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer rrt_abcdef123456_wrong")

    assert_error(client.get(url("api_me")), 401, "authentication_failed")


def test_forbidden_action_is_403(cast, login):
    membership = Membership.objects.get(user=cast.technologist, organization=cast.center)

    response = login(cast.technologist, api=True).patch(
        url("api_member_detail", cast.center.public_id, membership.public_id), {"roles": ["admin"]}, format="json")

    error = assert_error(response, 403, "permission_denied")
    assert error["fields"] == {}


def test_mfa_enrollment_refusal_is_403_in_the_same_format(login, db):
    user = MembershipFactory(roles=["radiologist"]).user

    error = assert_error(login(user, api=True).get(url("api_organizations")), 403, "mfa_enrollment_required")

    assert "two-factor" in error["message"]


def test_wrong_method_is_405(cast, login):
    assert_error(login(cast.patient, api=True).put(url("api_me"), {}, format="json"), 405, "method_not_allowed")
