"""Credential items: the state machine, the re-verification rule, bad input, who may do what, documents."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.credentials import services
from accounts.models import (
    AuditEvent,
    CredentialDocument,
    CredentialStatusChange,
    FacilityPrivilege,
    License,
    Membership,
    RadiologistProfile,
    User,
    VerificationStatus,
)
from core.errors import ApplicationError, NotFound, PermissionDenied
from tests.accounts.credentials_fixtures import (
    TODAY,
    actor,
    add,
    board_data,
    insurance_data,
    license_data,
    mqsa_data,
    profile_for,
)

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def second_radiologist(cast) -> User:
    user = User.objects.create(email="second.rad@example.test", kind=User.Kind.PROFESSIONAL, full_name="Second Rad")
    Membership.objects.create(user=user, organization=cast.group, roles=["radiologist"])
    return user


def staff(cast):
    return actor(cast.platform_staff)


# --- the state machine --------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "data"), [("license", license_data()), ("board", board_data()),
                                       ("insurance", insurance_data()), ("mqsa", mqsa_data())])
def test_new_items_start_pending_and_staff_verify_them_with_method_and_reference(cast, kind, data):
    item = add(cast.radiologist, kind, data)
    assert item.status == VerificationStatus.PENDING
    item = services.credential_verify(actor=staff(cast), item=item, method="primary_source",
                                      reference="TMB lookup #4471")
    assert (item.status, item.verified_by, item.verification_reference) == (
        VerificationStatus.VERIFIED, cast.platform_staff, "TMB lookup #4471")
    change = CredentialStatusChange.objects.filter(kind=kind, item_id=item.pk).first()
    assert (change.from_status, change.to_status, change.actor, change.method) == (
        "pending", "verified", cast.platform_staff, "primary_source")
    event = AuditEvent.objects.filter(action="credential.verified").first()
    assert event.actor == cast.platform_staff
    assert event.object_id == str(item.public_id)
    assert event.extra["reference"] == "TMB lookup #4471"


def test_rejection_needs_a_reason_that_the_owner_sees(cast):
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises(ApplicationError) as exc:
        services.credential_reject(actor=staff(cast), item=item, reason=" ")
    assert exc.value.fields == {"reason": ["Give the reason for rejecting: the radiologist will read it."]}
    item = services.credential_reject(actor=staff(cast), item=item, reason="Number not found at the TMB")
    assert (item.status, item.status_reason) == (VerificationStatus.REJECTED, "Number not found at the TMB")
    assert AuditEvent.objects.filter(action="credential.rejected", reason="Number not found at the TMB").exists()


def test_verification_needs_a_method_and_a_reference(cast):
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises(ApplicationError) as exc:
        services.credential_verify(actor=staff(cast), item=item, method="primary_source", reference="")
    assert "reference" in exc.value.fields
    with pytest.raises(ApplicationError) as exc:
        services.credential_verify(actor=staff(cast), item=item, method="gut feeling", reference="x")
    assert "method" in exc.value.fields
    item.refresh_from_db()
    assert item.status == VerificationStatus.PENDING


@pytest.mark.parametrize(("start", "to"), [
    ("pending", "expired"), ("pending", "pending"), ("rejected", "verified"), ("rejected", "expired"),
    ("verified", "rejected"), ("verified", "verified"), ("expired", "verified"),
])
def test_moves_outside_the_table_are_refused(cast, start, to):
    item = add(cast.radiologist, "license", license_data())
    License.objects.filter(pk=item.pk).update(status=start)
    with pytest.raises(ApplicationError) as exc:
        services.credential_transition(obj=item, to=to, actor=staff(cast), reason="r", method="primary_source",
                                       reference="ref")
    assert exc.value.code == "invalid_transition"
    item.refresh_from_db()
    assert item.status == start


def test_verified_item_expires_through_the_daily_task_and_is_recorded(cast):
    item = add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=3)),
               verify_by=cast.platform_staff)
    assert services.credentials_expire_due(today=TODAY + timedelta(days=3)) == 0  # valid through its expiry date
    assert services.credentials_expire_due(today=TODAY + timedelta(days=4)) == 1
    item.refresh_from_db()
    assert item.status == VerificationStatus.EXPIRED
    change = CredentialStatusChange.objects.filter(item_id=item.pk, to_status="expired").get()
    assert change.actor is None
    assert change.from_status == "verified"
    assert services.credentials_expire_due(today=TODAY + timedelta(days=5)) == 0  # idempotent


def test_celery_task_marks_expired_items(cast, settings):
    from accounts.tasks import credentials_daily

    item = add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=3)),
               verify_by=cast.platform_staff)
    License.objects.filter(pk=item.pk).update(expires_on=TODAY - timedelta(days=1))
    assert credentials_daily.delay().get()["expired"] == 1
    item.refresh_from_db()
    assert item.status == VerificationStatus.EXPIRED


def test_editing_a_verified_items_key_field_sends_it_back_to_pending(cast):
    item = add(cast.radiologist, "license", license_data(), verify_by=cast.platform_staff)
    item = services.credential_update(actor=actor(cast.radiologist), item=item,
                                      data={"expires_on": TODAY + timedelta(days=800)})
    assert item.status == VerificationStatus.PENDING
    change = CredentialStatusChange.objects.filter(item_id=item.pk, kind="license").first()
    assert (change.from_status, change.to_status) == ("verified", "pending")
    assert "expires_on" in change.reason


def test_saving_a_verified_item_unchanged_keeps_it_verified(cast):
    item = add(cast.radiologist, "license", license_data(), verify_by=cast.platform_staff)
    item = services.credential_update(actor=actor(cast.radiologist), item=item, data={"number": item.number})
    assert item.status == VerificationStatus.VERIFIED


def test_editing_a_rejected_item_resubmits_it(cast):
    item = add(cast.radiologist, "license", license_data())
    services.credential_reject(actor=staff(cast), item=item, reason="blurry scan")
    item = services.credential_update(actor=actor(cast.radiologist), item=item, data={"number": "TX-99999"})
    assert item.status == VerificationStatus.PENDING


def test_renewing_an_expired_item_resubmits_it(cast):
    item = add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=1)),
               verify_by=cast.platform_staff)
    services.credentials_expire_due(today=TODAY + timedelta(days=2))
    item.refresh_from_db()
    item = services.credential_update(actor=actor(cast.radiologist), item=item,
                                      data={"expires_on": TODAY + timedelta(days=700)})
    assert item.status == VerificationStatus.PENDING


def test_an_expired_item_cannot_be_verified(cast):
    item = add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=1)))
    License.objects.filter(pk=item.pk).update(expires_on=TODAY - timedelta(days=1))
    with pytest.raises(ApplicationError) as exc:
        services.credential_verify(actor=staff(cast), item=item, method="primary_source", reference="x")
    assert exc.value.code == "expired"


# --- who may do what ----------------------------------------------------------------------------

def test_a_radiologist_cannot_verify_their_own_item_even_as_platform_staff(cast):
    Membership.objects.create(user=cast.platform_staff, organization=cast.group, roles=["radiologist"])
    item = add(cast.platform_staff, "license", license_data())
    with pytest.raises(PermissionDenied):
        services.credential_verify(actor=actor(cast.platform_staff), item=item, method="primary_source",
                                   reference="x")
    item.refresh_from_db()
    assert item.status == VerificationStatus.PENDING


def test_a_radiologist_cannot_mark_their_own_item_verified(cast):
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises((NotFound, PermissionDenied)):
        services.credential_verify(actor=actor(cast.radiologist), item=item, method="primary_source", reference="x")
    item.refresh_from_db()
    assert item.status == VerificationStatus.PENDING


@pytest.mark.parametrize("principal", ["center_admin", "other_admin", "technologist"])
def test_nobody_else_verifies(cast, principal):
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises(NotFound):
        services.credential_verify(actor=actor(cast.users[principal]), item=item, method="primary_source",
                                   reference="x")


def test_editing_another_radiologists_credentials_is_404(cast, second_radiologist):
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises(NotFound):
        services.credential_update(actor=actor(second_radiologist), item=item, data={"number": "X"})
    with pytest.raises(NotFound):
        services.credential_delete(actor=actor(second_radiologist), item=item)
    with pytest.raises(NotFound):
        services.credential_document_upload(actor=actor(second_radiologist), item=item,
                                            upload=SimpleUploadedFile("x.pdf", PDF))
    item.refresh_from_db()
    assert item.number == "TX-12345"


def test_non_radiologists_have_no_profile_to_edit(cast):
    with pytest.raises(NotFound):
        services.radiologist_profile_update(actor=actor(cast.center_admin), data={"bio": "hi"})
    assert not RadiologistProfile.objects.filter(user=cast.center_admin).exists()


def test_center_admin_grants_suspends_and_revokes_their_own_centers_privileges(cast):
    profile = profile_for(cast.radiologist)
    admin = actor(cast.center_admin)
    privilege = services.privilege_grant(actor=admin, center=cast.center, radiologist=profile)
    assert privilege.status == FacilityPrivilege.Status.GRANTED
    privilege = services.privilege_transition(actor=admin, privilege=privilege, to="suspended", reason="QA review")
    privilege = services.privilege_transition(actor=admin, privilege=privilege, to="granted", reason="cleared")
    privilege = services.privilege_transition(actor=admin, privilege=privilege, to="revoked", reason="contract ended")
    assert privilege.status == "revoked"
    statuses = list(CredentialStatusChange.objects.filter(kind="privilege", item_id=privilege.pk)
                    .order_by("id").values_list("to_status", flat=True))
    assert statuses == ["granted", "suspended", "granted", "revoked"]
    assert AuditEvent.objects.filter(action="privilege.revoked", organization=cast.center).exists()


def test_center_admin_granting_for_another_center_is_404(cast):
    profile = profile_for(cast.radiologist)
    with pytest.raises(NotFound):
        services.privilege_grant(actor=actor(cast.center_admin), center=cast.other_center, radiologist=profile)
    theirs = services.privilege_grant(actor=actor(cast.other_admin), center=cast.other_center, radiologist=profile)
    with pytest.raises(NotFound):
        services.privilege_transition(actor=actor(cast.center_admin), privilege=theirs, to="revoked", reason="x")
    with pytest.raises(NotFound):
        services.center_set_requires_privileges(actor=actor(cast.center_admin), center=cast.other_center,
                                                required=True)
    theirs.refresh_from_db()
    assert theirs.status == "granted"


def test_technologist_cannot_grant_privileges(cast):
    profile = profile_for(cast.radiologist)
    with pytest.raises(NotFound):
        services.privilege_grant(actor=actor(cast.technologist), center=cast.center, radiologist=profile)


# --- bad input ------------------------------------------------------------------------------------

def test_invalid_npi_check_digit_is_refused(cast):
    with pytest.raises(ApplicationError) as exc:
        profile_for(cast.radiologist, npi="1234567890")
    assert exc.value.code == "invalid_npi"
    assert "npi" in exc.value.fields
    profile = profile_for(cast.radiologist, npi="1234567893")
    assert profile.npi == "1234567893"


def test_npi_already_used_is_refused(cast, second_radiologist):
    profile_for(cast.radiologist, npi="1234567893")
    with pytest.raises(ApplicationError) as exc:
        profile_for(second_radiologist, npi="1234567893")
    assert exc.value.code == "npi_taken"


def test_license_with_expiry_before_issue_is_refused(cast):
    with pytest.raises(ApplicationError) as exc:
        add(cast.radiologist, "license", license_data(issued_on=date(2024, 5, 1), expires_on=date(2024, 4, 1)))
    assert exc.value.code == "expiry_before_issue"


def test_duplicate_license_for_the_same_state_and_number_is_refused(cast):
    add(cast.radiologist, "license", license_data("TX", number="TX-1"))
    with pytest.raises(ApplicationError) as exc:
        add(cast.radiologist, "license", license_data("TX", number="tx-1"))
    assert exc.value.code == "duplicate_license"
    assert License.objects.count() == 1


@pytest.mark.parametrize("region", ["XX", "", "ZZZ"])
def test_unknown_state_code_is_refused(cast, region):
    with pytest.raises(ApplicationError) as exc:
        add(cast.radiologist, "license", license_data(region))
    assert "region" in exc.value.fields


def test_unknown_subspecialty_and_modality_are_refused(cast):
    with pytest.raises(ApplicationError) as exc:
        profile_for(cast.radiologist, subspecialties=["astrology"])
    assert "subspecialties" in exc.value.fields
    with pytest.raises(ApplicationError) as exc:
        profile_for(cast.radiologist, modalities=["XR"])
    assert "modalities" in exc.value.fields


def test_profile_fields_are_saved_in_vocabulary_order(cast):
    profile = profile_for(cast.radiologist, subspecialties=["general", "neuro", "neuro"], modalities=["mr", "CT"],
                          languages=["ES", "en"], priorities=["routine", "stat"], max_concurrent_cases=4)
    assert profile.subspecialties == ["neuro", "general"]
    assert profile.modalities == ["CT", "MR"]
    assert profile.languages == ["en", "es"]
    assert profile.priorities == ["stat", "routine"]
    assert profile.max_concurrent_cases == 4


# --- documents ------------------------------------------------------------------------------------

def test_pdf_document_is_stored_privately_with_its_detected_type(cast):
    item = add(cast.radiologist, "license", license_data())
    document = services.credential_document_upload(actor=actor(cast.radiologist), item=item,
                                                   upload=SimpleUploadedFile("license.png", PDF, "image/png"))
    assert document.content_type == "application/pdf"  # by the bytes, not the name or the claim
    assert document.size == len(PDF)
    assert default_storage.exists(document.file.name)
    assert document.file.name.startswith(f"credentials/{item.radiologist.public_id}/")
    with default_storage.open(document.file.name) as fh:
        assert fh.read() == PDF


def test_a_document_that_is_not_a_pdf_or_image_by_its_bytes_is_refused(cast):
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises(ApplicationError) as exc:
        services.credential_document_upload(actor=actor(cast.radiologist), item=item,
                                            upload=SimpleUploadedFile("license.pdf", b"MZ\x90\x00 evil.exe",
                                                                      "application/pdf"))
    assert exc.value.code == "invalid_file_type"
    assert not CredentialDocument.objects.exists()


def test_a_document_that_is_too_large_is_refused(cast, settings):
    settings.CREDENTIAL_DOCUMENT_MAX_BYTES = 1024
    item = add(cast.radiologist, "license", license_data())
    with pytest.raises(ApplicationError) as exc:
        services.credential_document_upload(actor=actor(cast.radiologist), item=item,
                                            upload=SimpleUploadedFile("big.pdf", PDF + b"0" * 2000))
    assert exc.value.code == "file_too_large"
    assert not CredentialDocument.objects.exists()


def test_photo_must_be_an_image(cast):
    with pytest.raises(ApplicationError) as exc:
        services.radiologist_profile_update(actor=actor(cast.radiologist), data={},
                                            photo=SimpleUploadedFile("me.png", PDF))
    assert exc.value.code == "invalid_file_type"
    profile = services.radiologist_profile_update(actor=actor(cast.radiologist), data={},
                                                  photo=SimpleUploadedFile("me.png", PNG))
    assert profile.photo.name.endswith(".png")


# --- onboarding -------------------------------------------------------------------------------------

def test_onboarding_submit_requires_profile_license_and_insurance(cast):
    services.radiologist_profile_ensure(actor=actor(cast.radiologist))
    with pytest.raises(ApplicationError) as exc:
        services.onboarding_submit(actor=actor(cast.radiologist))
    assert set(exc.value.fields) == {"profile", "licenses", "insurance"}
    profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data())
    add(cast.radiologist, "insurance", insurance_data())
    profile = services.onboarding_submit(actor=actor(cast.radiologist))
    assert profile.submitted_at is not None
    assert AuditEvent.objects.filter(action="radiologist_profile.submitted").exists()
