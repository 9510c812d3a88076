"""A radiologist's self-service after onboarding: edit the profile directly; no re-submission once submitted."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.credentials import services
from accounts.models import RadiologistProfile
from tests.accounts.credentials_fixtures import actor, add, insurance_data, license_data, profile_for

PROFILE_POST = {"display_name": "Dr. Edited", "home_time_zone": "America/Chicago", "subspecialties": ["neuro"],
                "modalities": ["CT"], "max_concurrent_cases": "3"}


@pytest.fixture
def submitted(cast):
    """The cast radiologist, onboarded and submitted; the wizard remembers the last (submit) step."""
    profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"))
    add(cast.radiologist, "insurance", insurance_data())
    return services.onboarding_submit(actor=actor(cast.radiologist))


def _submit_button(page) -> bool:
    return b"Submit for verification</button>" in page.content


def test_edit_profile_on_my_credentials_opens_the_profile_form(cast, login, submitted):
    client = login(cast.radiologist)
    mine = client.get(reverse("credentials_mine")).content.decode()
    href = re.search(r'<a class="btn btn-primary" href="([^"]+)">Edit profile</a>', mine).group(1)
    page = client.get(href, follow=True)
    assert page.context["step"] == "profile"
    assert 'name="display_name"' in page.content.decode()
    assert not _submit_button(page)


def test_saving_the_profile_after_submission_returns_to_my_credentials(cast, login, submitted):
    client = login(cast.radiologist)
    response = client.post(reverse("onboarding_step", args=["profile"]), PROFILE_POST)
    assert response.status_code == 302
    assert response.url == reverse("credentials_mine")
    assert RadiologistProfile.objects.get(pk=submitted.pk).display_name == "Dr. Edited"


def test_a_fully_verified_radiologist_is_not_offered_submit_for_verification(cast, login, submitted):
    for item in [*submitted.licenses.all(), *submitted.malpractice_policies.all()]:
        services.credential_verify(actor=actor(cast.platform_staff), item=item, method="primary_source",
                                   reference="https://board.example/lookup/1")
    page = login(cast.radiologist).get(reverse("onboarding_step", args=["submit"]))
    assert page.status_code == 200
    assert not _submit_button(page)
    assert b"every credential on file is verified" in page.content


def test_a_submitted_radiologist_with_pending_items_is_told_so_and_not_offered_to_submit_again(
        cast, login, submitted):
    client = login(cast.radiologist)
    page = client.get(reverse("onboarding_step", args=["submit"]))
    assert not _submit_button(page)
    assert b"2 items are waiting for verification" in page.content
    before = RadiologistProfile.objects.get(pk=submitted.pk).submitted_at
    response = client.post(reverse("onboarding_step", args=["submit"]))
    assert response.url == reverse("credentials_mine")
    assert RadiologistProfile.objects.get(pk=submitted.pk).submitted_at == before


def test_a_radiologist_who_has_not_submitted_is_still_offered_submit(cast, login):
    profile_for(cast.radiologist)
    page = login(cast.radiologist).get(reverse("onboarding_step", args=["submit"]))
    assert _submit_button(page)


def test_the_onboarding_progress_bar_is_styled(cast, login):
    page = login(cast.radiologist).get(reverse("onboarding_step", args=["licenses"])).content.decode()
    assert re.search(r'<progress class="progress-bar" max="6" value="2"', page)
    css = (settings.BASE_DIR / "static/css/readroom.css").read_text()
    assert "progress.progress-bar::-webkit-progress-value" in css
    assert "progress.progress-bar::-moz-progress-bar" in css
