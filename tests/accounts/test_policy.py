"""Policy rules that are easy to get subtly wrong."""

from accounts import policy, services


def test_an_api_key_of_the_platform_organization_is_not_platform_staff(cast, login):
    _, secret = services.api_key_create(
        actor=None, organization=cast.platform, name="ops integration", roles=["viewer"]
    )
    client = login(None, api=True)
    response = client.get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert [o["slug"] for o in response.json()["results"]] == ["readroom-ops"]
    foreign = client.get(
        f"/api/v1/organizations/{cast.center.public_id}/members/", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert foreign.status_code == 404


def test_platform_staff_is_a_person_in_the_platform_organization(cast):
    assert policy.actor_for_user(cast.platform_staff).is_platform_staff
    assert not policy.actor_for_user(cast.center_admin).is_platform_staff


def test_active_organization_defaults_to_a_membership_and_ignores_foreign_choices(cast):
    actor = policy.actor_for_user(cast.center_admin, active_org_id=cast.other_center.pk)
    assert actor.active_organization == cast.center


def test_api_docs_are_served_without_any_third_party_host(db, client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "cdn." not in body
    assert "https://" not in body.replace("https://swagger.io", "")
