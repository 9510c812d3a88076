"""The demo world's credentials (issue 4, point 9): every state shows, and a second run changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.credentials.eligibility import eligible
from accounts.demo_credentials import seed_demo_credentials
from accounts.models import (
    FacilityPrivilege,
    License,
    MqsaQualification,
    Organization,
    RadiologistProfile,
    VerificationStatus,
)
from accounts.npi import is_valid_npi


@pytest.fixture
def demo(db, settings, tmp_path):
    # As tests/accounts/test_demo.py does: tiny demo studies, stored in this test's own folder.
    settings.DEMO_STUDIES = "small"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115, PTH123
    seed_demo_credentials()


def test_demo_credentials_show_every_state(demo):
    today = timezone.now().date()
    licenses = License.objects.filter(radiologist__user__email__endswith="@radiologists.demo")
    verified = licenses.filter(status=VerificationStatus.VERIFIED)
    assert len({lic.region for lic in verified}) >= 5
    assert licenses.filter(license_type=License.Type.COMPACT, status=VerificationStatus.VERIFIED).exists()
    assert verified.filter(expires_on__gte=today, expires_on__lte=today + timedelta(days=30)).count() >= 1
    assert licenses.filter(status=VerificationStatus.EXPIRED, expires_on__lt=today).count() >= 1
    assert licenses.filter(status=VerificationStatus.PENDING).exists()
    assert licenses.filter(status=VerificationStatus.REJECTED).exclude(status_reason="").exists()
    assert MqsaQualification.objects.filter(status=VerificationStatus.VERIFIED).count() == 2
    lakeside = Organization.objects.get(slug="lakeside")
    assert lakeside.requires_privileges
    assert FacilityPrivilege.objects.filter(center=lakeside, status="granted").count() == 3
    profiles = RadiologistProfile.objects.filter(user__email__endswith="@radiologists.demo")
    assert profiles.count() == 12
    assert all(is_valid_npi(p.npi) for p in profiles)
    assert len({p.npi for p in profiles}) == 12


def test_demo_eligibility_for_lakeside_follows_privileges_and_mqsa(demo):
    lakeside = Organization.objects.get(slug="lakeside")
    okafor = RadiologistProfile.objects.get(user__email="dr.okafor@radiologists.demo")
    brennan = RadiologistProfile.objects.get(user__email="dr.brennan@radiologists.demo")
    whitfield = RadiologistProfile.objects.get(user__email="dr.whitfield@radiologists.demo")
    now = timezone.now()
    assert eligible(okafor, jurisdiction="US-TX", modalities=["CT"], center=lakeside, at=now).eligible
    assert eligible(brennan, jurisdiction="US-TX", modalities=["CT"], center=lakeside, at=now).reasons == [
        "no privileges at Lakeside Imaging"]
    assert eligible(whitfield, jurisdiction="US-TX", modalities=["MG"], center=lakeside, at=now).eligible


def test_seeding_twice_changes_nothing(demo):
    snapshot = sorted(License.objects.values_list("pk", "status", "license_type", "updated_at"))
    assert seed_demo_credentials() == 0
    assert sorted(License.objects.values_list("pk", "status", "license_type", "updated_at")) == snapshot
