"""The center's Privileges page: each row starts at "No change"; suspending or revoking must be confirmed."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.credentials.models import FacilityPrivilege
from accounts.models import RadiologistProfile
from tests.accounts.credentials_fixtures import add, insurance_data, license_data, profile_for


@pytest.fixture
def privilege(cast, login):
    profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(), verify_by=cast.platform_staff)
    profile = RadiologistProfile.objects.get(user=cast.radiologist)
    login(cast.center_admin).post(reverse("privilege_grant"), {"radiologist": str(profile.public_id)})
    return FacilityPrivilege.objects.get(center=cast.center, radiologist=profile)


def _status(privilege) -> str:
    return FacilityPrivilege.objects.get(pk=privilege.pk).status


def _change(client, privilege, **data):
    return client.post(reverse("privilege_change", args=[privilege.public_id]), data)


def test_each_rows_change_dropdown_is_preselected_to_no_change(cast, login, privilege):
    page = login(cast.center_admin).get(reverse("center_privileges")).content.decode()
    action = reverse("privilege_change", args=[privilege.public_id])
    row_form = re.search(rf'<form method="post" action="{action}".*?</form>', page, re.S).group(0)
    assert '<input type="checkbox" name="confirm"' in row_form
    select = re.search(r'<select name="to"[^>]*>(.*?)</select>', row_form, re.S).group(1)
    options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)
    assert options[0] == ("", " selected", "No change")
    assert [value for value, selected, _ in options if selected] == [""]
    assert {value for value, _, _ in options} == {"", "suspended", "revoked"}


def test_applying_a_row_left_at_no_change_changes_nothing(cast, login, privilege):
    client = login(cast.center_admin)
    response = _change(client, privilege, to="", reason="")
    assert response.status_code == 302
    assert _status(privilege) == "granted"
    assert "left as they are" in " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.parametrize("to", ["suspended", "revoked"])
def test_suspending_or_revoking_without_confirmation_is_refused(cast, login, privilege, to):
    client = login(cast.center_admin)
    response = _change(client, privilege, to=to, reason="License lapsed")
    assert response.status_code == 302
    assert _status(privilege) == "granted"
    assert "Confirm" in " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.parametrize("to", ["suspended", "revoked"])
def test_suspending_or_revoking_with_confirmation_applies(cast, login, privilege, to):
    client = login(cast.center_admin)
    _change(client, privilege, to=to, reason="License lapsed", confirm="1")
    assert _status(privilege) == to


def test_granting_again_needs_no_confirmation(cast, login, privilege):
    client = login(cast.center_admin)
    _change(client, privilege, to="suspended", reason="Review", confirm="1")
    _change(client, privilege, to="granted")
    assert _status(privilege) == "granted"
