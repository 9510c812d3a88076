"""Builders shared by the credentialing tests: profiles and items, created through the services."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from accounts import policy
from accounts.credentials import services
from accounts.models import RadiologistProfile, User

TODAY = timezone.now().date()
NOW = timezone.now()


def reasons(profile: RadiologistProfile, **kwargs) -> list[str]:
    """Why ``profile`` may not read (US-TX CT now unless told otherwise); empty when eligible."""
    from accounts.credentials.eligibility import eligible

    kwargs.setdefault("jurisdiction", "US-TX")
    kwargs.setdefault("modalities", ["CT"])
    kwargs.setdefault("at", NOW)
    return eligible(profile, **kwargs).reasons


def actor(user: User):
    return policy.actor_for_user(user)


def profile_for(user: User, **fields) -> RadiologistProfile:
    """The user's profile, filled through the service (user must have the radiologist role)."""
    data = {"subspecialties": ["neuro", "body"], "modalities": ["CT", "MR", "CR"], "languages": ["en"],
            **fields}
    return services.radiologist_profile_update(actor=actor(user), data=data)


def license_data(region="TX", *, number=None, expires_on=None, issued_on=None, **extra) -> dict:
    return {"country": "US", "region": region, "number": number or f"{region}-12345",
            "issued_on": issued_on or date(2015, 1, 1), "expires_on": expires_on or TODAY + timedelta(days=400),
            **extra}


def insurance_data(*, expires_on=None, jurisdictions=("US",), **extra) -> dict:
    return {"carrier": "The Doctors Company", "policy_number": "TDC-1", "per_claim_limit": 100_000_000,
            "aggregate_limit": 300_000_000, "coverage_jurisdictions": list(jurisdictions),
            "effective_on": date(2020, 1, 1), "expires_on": expires_on or TODAY + timedelta(days=300), **extra}


def mqsa_data(*, attested_on=None, exams=1100, cme="18", **extra) -> dict:
    return {"initial_qualified_on": date(2012, 6, 1), "exams_last_24_months": exams,
            "cme_hours_last_36_months": cme, "attested_on": attested_on or TODAY - timedelta(days=30), **extra}


def board_data(**extra) -> dict:
    return {"board": "ABR", "certificate": "Diagnostic Radiology", "initial_year": 2010,
            "expires_on": TODAY + timedelta(days=900), **extra}


def add(user: User, kind: str, data: dict, *, verify_by: User | None = None):
    item = services.credential_create(actor=actor(user), kind=kind, data=data)
    if verify_by is not None:
        item = services.credential_verify(actor=actor(verify_by), item=item, method="primary_source",
                                          reference="https://board.example/lookup/1")
    return item


def matrix_object(objects: dict, what: str):
    """The public id of a credentialing object for the access matrix, made on first use.

    Objects belong to the cast's radiologist (a license with a document, a profile with a photo)
    and to ``objects["center"]`` (a privilege). When the matrix probes with missing objects
    (no real organization in ``objects``), a random id comes back.
    """
    import uuid as uuid_module

    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import CredentialDocument, FacilityPrivilege, License, Membership, Organization

    center = objects.get("center")
    if not isinstance(center, Organization):
        return uuid_module.uuid4()
    user = User.objects.get(email="radiologist@example.test")
    profile = profile_for(user)
    if what == "profile":
        return profile.public_id
    if what == "photo":
        if not profile.photo:
            services.radiologist_profile_update(actor=actor(user), data={}, photo=SimpleUploadedFile(
                "me.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32))
        return profile.public_id
    if what in ("license", "document"):
        item = License.objects.filter(radiologist=profile).first() or add(user, "license", license_data())
        if what == "license":
            return item.public_id
        document = CredentialDocument.objects.filter(item_id=item.pk, kind="license").first() or \
            services.credential_document_upload(actor=actor(user), item=item,
                                                upload=SimpleUploadedFile("l.pdf", b"%PDF-1.4\n%%EOF\n"))
        return document.public_id
    if what == "privilege":
        existing = FacilityPrivilege.objects.filter(center=center, radiologist=profile).first()
        if existing:
            return existing.public_id
        admin = next(m.user for m in Membership.objects.filter(organization=center).select_related("user")
                     if "admin" in m.roles)
        return services.privilege_grant(actor=actor(admin), center=center, radiologist=profile).public_id
    raise ValueError(what)
