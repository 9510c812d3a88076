"""Credentialing pages and API: onboarding end to end, staff verification, group grid, directory filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent, License, Membership, Organization, RadiologistProfile, User
from tests.accounts.credentials_fixtures import TODAY, add, insurance_data, license_data, profile_for
from tests.conftest import enroll_totp


def test_onboarding_wizard_end_to_end_and_resumable(cast, login):
    client = login(cast.radiologist)
    assert client.get(reverse("onboarding")).url == reverse("onboarding_step", args=["profile"])
    response = client.post(reverse("onboarding_step", args=["profile"]), {
        "display_name": "Dr. Test", "credentials_line": "MD", "npi": "1234567893", "home_time_zone": "America/Denver",
        "languages": ["en", "es"], "subspecialties": ["neuro"], "modalities": ["CT", "MR"],
        "priorities": ["stat", "routine"], "max_concurrent_cases": "4", "bio": "Neuro."})
    assert response.status_code == 302
    assert response.url == reverse("onboarding_step", args=["licenses"])
    # Leaving and coming back resumes at the licenses step.
    assert client.get(reverse("onboarding")).url == reverse("onboarding_step", args=["licenses"])
    page = client.get(reverse("onboarding_step", args=["licenses"]))
    assert b"Step 2 of 6" in page.content
    response = client.post(reverse("credential_add", args=["license"]), {
        "country": "US", "region": "TX", "number": "TX-555", "license_type": "compact",
        "issued_on": "2020-01-01", "expires_on": (TODAY + timedelta(days=300)).isoformat()})
    assert response.status_code == 302
    client.post(reverse("credential_add", args=["insurance"]), {
        "carrier": "TDC", "policy_number": "P1", "per_claim_limit": "100000000", "aggregate_limit": "300000000",
        "currency": "USD", "coverage_jurisdictions": "US", "effective_on": "2024-01-01",
        "expires_on": (TODAY + timedelta(days=300)).isoformat()})
    license_ = License.objects.get(number="TX-555")
    upload = client.post(reverse("credential_document_upload", args=["license", license_.public_id]),
                         {"file": SimpleUploadedFile("tx.pdf", b"%PDF-1.4\n%%EOF\n"),
                          "next": reverse("onboarding_step", args=["documents"])})
    assert upload.status_code == 302
    response = client.post(reverse("onboarding_step", args=["submit"]))
    assert response.status_code == 302
    profile = RadiologistProfile.objects.get(user=cast.radiologist)
    assert profile.submitted_at is not None
    assert profile.npi == "1234567893"
    mine = client.get(reverse("credentials_mine"))
    assert b"Pending verification" in mine.content
    assert b"tx.pdf" in mine.content


def test_onboarding_profile_step_shows_a_bad_npi_on_its_field(cast, login):
    client = login(cast.radiologist)
    response = client.post(reverse("onboarding_step", args=["profile"]), {
        "npi": "1234567890", "home_time_zone": "America/Denver", "max_concurrent_cases": "3"})
    assert response.status_code == 400
    assert "check digit" in str(response.context["form"].errors["npi"])


def test_staff_verify_from_the_queue_and_the_radiologist_sees_rejections(cast, login):
    profile_for(cast.radiologist)
    tx = add(cast.radiologist, "license", license_data("TX"))
    fl = add(cast.radiologist, "license", license_data("FL"))
    staff = login(cast.platform_staff)
    queue = staff.get(reverse("verification_queue"))
    assert queue.status_code == 200
    assert len(queue.context["items"]) == 2
    review = staff.get(reverse("verification_review", args=["license", tx.public_id]))
    assert b"TX-12345" in review.content
    response = staff.post(reverse("verification_review", args=["license", tx.public_id]), {
        "decision": "verified", "method": "primary_source", "reference": "https://tmb.example/123"})
    assert response.status_code == 302
    response = staff.post(reverse("verification_review", args=["license", fl.public_id]), {
        "decision": "rejected", "reason": "License number belongs to someone else"})
    assert response.status_code == 302
    mine = login(cast.radiologist).get(reverse("credentials_mine")).content.decode()
    assert "Rejected: License number belongs to someone else" in mine
    assert "Verified" in mine


def test_radiologist_cannot_open_another_radiologists_item_or_document(cast, login):
    other = User.objects.create(email="o@example.test", kind=User.Kind.PROFESSIONAL)
    Membership.objects.create(user=other, organization=cast.group, roles=["radiologist"])
    enroll_totp(other)
    item = add(cast.radiologist, "license", license_data())
    client = login(other)
    assert client.get(reverse("credential_edit", args=["license", item.public_id])).status_code == 404
    assert client.post(reverse("credential_delete", args=["license", item.public_id])).status_code == 404
    api = login(other, api=True)
    assert api.patch(reverse("api_my_credential_detail", args=["license", item.public_id]),
                     {"number": "X"}, format="json").status_code == 404
    assert License.objects.filter(pk=item.pk, number="TX-12345").exists()


def test_document_view_is_audited_and_not_cached(cast, login):
    from accounts.credentials import services
    from tests.accounts.credentials_fixtures import actor

    item = add(cast.radiologist, "license", license_data())
    doc = services.credential_document_upload(actor=actor(cast.radiologist), item=item,
                                              upload=SimpleUploadedFile("a.pdf", b"%PDF-1.4\n%%EOF\n"))
    response = login(cast.platform_staff).get(reverse("credential_document", args=[doc.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    assert "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(action="credential.document_viewed", actor=cast.platform_staff).exists()


def test_group_admin_sees_the_member_grid(cast, login):
    admin = User.objects.create(email="ga@example.test", kind=User.Kind.PROFESSIONAL)
    Membership.objects.create(user=admin, organization=cast.group, roles=["admin"])
    enroll_totp(admin)
    profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=12)),
        verify_by=cast.platform_staff)
    response = login(admin).get(reverse("group_credentials"))
    assert response.status_code == 200
    row = response.context["rows"][0]
    assert row.membership.user == cast.radiologist
    assert (row.cells["license"].status, row.cells["license"].days_left) == ("verified", 12)
    assert row.cells["insurance"].status == "missing"
    assert b'data-state="verified"' in response.content
    # The group's radiologist (not an admin) may not see it.
    assert login(cast.radiologist).get(reverse("group_credentials")).status_code == 404


@pytest.fixture
def two_radiologists(cast):
    """The cast radiologist (neuro, CT/MR, en, TX+insurance verified) and a breast reader in FL (es)."""
    profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(), verify_by=cast.platform_staff)
    other = User.objects.create(email="breast@example.test", full_name="Ana Breast", kind=User.Kind.PROFESSIONAL)
    Membership.objects.create(user=other, organization=cast.group, roles=["radiologist"])
    profile_for(other, subspecialties=["breast"], modalities=["MG", "US"], languages=["es"])
    add(other, "license", license_data("FL", number="FL-1"), verify_by=cast.platform_staff)
    add(other, "license", license_data("TX", number="TX-pending"))  # pending: not listed under TX
    return cast.radiologist, other


@pytest.mark.parametrize(("query", "expected"), [
    ({}, {"radiologist@example.test", "breast@example.test"}),
    ({"state": "TX"}, {"radiologist@example.test"}),
    ({"state": "FL"}, {"breast@example.test"}),
    ({"subspecialty": "breast"}, {"breast@example.test"}),
    ({"modality": "MR"}, {"radiologist@example.test"}),
    ({"modality": "DX"}, {"radiologist@example.test"}),  # reads CR, which covers DX
    ({"language": "es"}, {"breast@example.test"}),
    ({"can_read_now": "on"}, {"radiologist@example.test"}),
    ({"state": "TX", "subspecialty": "breast"}, set()),
])
def test_directory_filters(two_radiologists, cast, login, query, expected):
    page = login(cast.center_admin).get(reverse("radiologist_directory"), query)
    assert {e.profile.user.email for e in page.context["entries"]} == expected
    api = login(cast.center_admin, api=True).get(reverse("api_radiologists"), query)
    assert {r["name"] for r in api.json()["results"]} == {e.profile.name for e in page.context["entries"]}


def test_can_read_now_applies_the_centers_privilege_requirement(two_radiologists, cast, login):
    cast.center.requires_privileges = True
    cast.center.save()
    client = login(cast.center_admin)
    assert client.get(reverse("radiologist_directory"), {"can_read_now": "on"}).context["entries"] == []
    profile = RadiologistProfile.objects.get(user=cast.radiologist)
    client.post(reverse("privilege_grant"), {"radiologist": str(profile.public_id)})
    entries = client.get(reverse("radiologist_directory"), {"can_read_now": "on"}).context["entries"]
    assert [e.profile for e in entries] == [profile]


def test_public_profile_shows_verified_items_only_and_no_numbers_or_documents(two_radiologists, cast, login):
    _, other = two_radiologists
    profile = RadiologistProfile.objects.get(user=other)
    page = login(cast.center_admin).get(reverse("radiologist_profile_public", args=[profile.public_id]))
    content = page.content.decode()
    assert "US-FL" in content
    assert "US-TX" not in content  # pending
    assert "FL-1" not in content
    assert "TX-pending" not in content
    assert "credentials/documents" not in content
    data = login(cast.center_admin, api=True).get(reverse("api_radiologist_detail", args=[profile.public_id])).json()
    assert data["licensed_in"] == ["US-FL"]
    assert "FL-1" not in str(data)


def test_api_onboarding_and_staff_decision(cast, login):
    api = login(cast.radiologist, api=True)
    response = api.patch(reverse("api_my_radiologist_profile"), {"npi": "1234567893", "subspecialties": ["neuro"],
                                                                 "modalities": ["CT"]}, format="json")
    assert response.status_code == 200
    assert response.json()["npi"] == "1234567893"
    bad = api.patch(reverse("api_my_radiologist_profile"), {"npi": "1234567890"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_npi"
    created = api.post(reverse("api_my_credentials", args=["license"]), {
        "country": "US", "region": "ZZ", "number": "1", "expires_on": "2030-01-01"}, format="json")
    assert created.status_code == 400
    assert "region" in created.json()["error"]["fields"]
    created = api.post(reverse("api_my_credentials", args=["license"]), {
        "country": "US", "region": "TX", "number": "1", "expires_on": "2030-01-01"}, format="json")
    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    item_id = created.json()["id"]
    doc = api.post(reverse("api_my_credential_documents", args=["license", item_id]),
                   {"file": SimpleUploadedFile("x.exe", b"MZ\x90\x00")}, format="multipart")
    assert doc.status_code == 400
    assert doc.json()["error"]["code"] == "invalid_file_type"
    api.post(reverse("api_my_credentials", args=["insurance"]), {
        "carrier": "C", "policy_number": "P", "per_claim_limit": 1, "aggregate_limit": 2,
        "coverage_jurisdictions": ["US"], "effective_on": "2024-01-01", "expires_on": "2030-01-01"}, format="json")
    assert api.post(reverse("api_my_radiologist_profile_submit")).status_code == 200
    # The radiologist may not decide; staff may.
    own = api.post(reverse("api_credential_decision", args=["license", item_id]),
                   {"decision": "verified", "method": "primary_source", "reference": "x"}, format="json")
    assert own.status_code == 404
    staff = login(cast.platform_staff, api=True)
    assert len(staff.get(reverse("api_verification_queue")).json()["results"]) == 2
    decided = staff.post(reverse("api_credential_decision", args=["license", item_id]),
                         {"decision": "verified", "method": "primary_source", "reference": "tmb"}, format="json")
    assert decided.status_code == 200
    assert decided.json()["status"] == "verified"
    # Changing a key field through the API sends it back to pending.
    changed = api.patch(reverse("api_my_credential_detail", args=["license", item_id]), {"expires_on": "2031-01-01"},
                        format="json")
    assert changed.json()["status"] == "pending"


def test_api_eligibility_answers_with_reasons(two_radiologists, cast, login):
    profile = RadiologistProfile.objects.get(user=cast.radiologist)
    api = login(cast.technologist, api=True)
    url = reverse("api_radiologist_eligibility", args=[profile.public_id])
    assert api.get(url, {"modalities": "CT"}).json() == {"radiologist": str(profile.public_id), "eligible": True,
                                                         "reasons": []}
    later = (TODAY + timedelta(days=401)).isoformat() + "T12:00:00Z"
    body = api.get(url, {"modalities": "CT,MG", "at": later}).json()
    assert body["eligible"] is False
    assert f"license US-TX expired {(TODAY + timedelta(days=400)).isoformat()}" in body["reasons"]
    assert "no MQSA qualification" in body["reasons"]


def test_center_admin_privileges_api_is_limited_to_their_center(two_radiologists, cast, login):
    profile = RadiologistProfile.objects.get(user=cast.radiologist)
    api = login(cast.center_admin, api=True)
    granted = api.post(reverse("api_privileges", args=[cast.center.public_id]),
                       {"radiologist": str(profile.public_id)}, format="json")
    assert granted.status_code == 201
    foreign = api.post(reverse("api_privileges", args=[cast.other_center.public_id]),
                       {"radiologist": str(profile.public_id)}, format="json")
    assert foreign.status_code == 404
    other = login(cast.other_admin, api=True)
    assert other.post(reverse("api_privilege_detail", args=[cast.center.public_id, granted.json()["id"]]),
                      {"to": "revoked", "reason": "x"}, format="json").status_code == 404
    revoked = api.post(reverse("api_privilege_detail", args=[cast.center.public_id, granted.json()["id"]]),
                       {"to": "revoked", "reason": "contract ended"}, format="json")
    assert revoked.json()["status"] == "revoked"
    assert Organization.objects.get(pk=cast.center.pk).granted_privileges.get().status == "revoked"
