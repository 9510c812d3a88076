"""The main navigation's coverage links (issue 18): the coverage map for those of a center who may open it
(admins and viewers), the group calendar for a group's admins, the overflow rules for center admins; nobody
else sees them, and every link shown opens."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import enroll_totp
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LINKS = {"coverage": reverse("coverage_map"), "calendar": reverse("group_calendar"),
         "overflow": reverse("overflow_rules")}


def _nav(client) -> str:
    body = client.get(reverse("dashboard")).content.decode()
    return body.split('<nav class="mainnav"')[1].split("</nav>")[0]


@pytest.mark.parametrize(("principal", "expected"), [
    ("center_admin", {"coverage", "overflow"}),
    ("center_viewer", {"coverage"}),
    ("technologist", set()),
    ("center_finance", set()),
    ("radiologist", set()),
    ("platform_staff", set()),
    ("patient", set()),
    ("group_admin", {"calendar"}),
])
def test_coverage_links_show_for_the_right_roles_only(cast, login, principal, expected):
    if principal == "group_admin":
        user = UserFactory(email="group-admin@example.test")
        MembershipFactory(user=user, organization=cast.group, roles=["admin"])
        enroll_totp(user)  # an admin's role asks for a second factor
    else:
        user = getattr(cast, principal)
    client = login(user)
    nav = _nav(client)
    shown = {name for name, url in LINKS.items() if f'href="{url}"' in nav}
    assert shown == expected
    for name in shown:
        assert client.get(LINKS[name]).status_code == 200, name


def test_the_current_page_is_marked_in_the_nav(cast, login):
    client = login(cast.center_admin)
    body = client.get(reverse("coverage_map")).content.decode()
    assert f'href="{LINKS["coverage"]}" aria-current="page"' in body
