"""A patient's details and their private space for images (issue 17).

A patient acts as an individual (design.md): no membership anywhere. Their uploads belong to an
organization of kind ``patient`` created with their details (``PatientProfile.space``), which no
center or reader can see except through the marketplace's grants, and which the Actor names as
``personal_space_id``.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credentials.vocab import clean_jurisdiction
from accounts.models import Organization, PatientProfile, User
from accounts.policy import Actor
from core.errors import ApplicationError, PermissionDenied

OLDEST_BIRTH_YEAR = 1900


def patient_profile(user: User) -> PatientProfile | None:
    return PatientProfile.objects.filter(user=user).select_related("space").first()


def _check_birth_date(value: dt.date | None) -> dt.date:
    if value is None:
        raise ApplicationError.for_field("date_of_birth", "Enter your date of birth.", code="required")
    if value > timezone.localdate() or value.year < OLDEST_BIRTH_YEAR:
        raise ApplicationError.for_field("date_of_birth", "Enter your real date of birth (it cannot be in the "
                                                          "future).")
    return value


@transaction.atomic
def patient_details_save(*, actor: Actor, date_of_birth: dt.date | None, country: str, region: str,
                         request: HttpRequest | None = None) -> PatientProfile:
    """Record (or correct) a patient's date of birth and where they live; the first save opens their
    private space for images, in their residence (the jurisdiction their second opinions are read in)."""
    if not actor.is_patient:
        raise PermissionDenied("Only a patient account has patient details.")
    user = actor.user
    date_of_birth = _check_birth_date(date_of_birth)
    country, region = clean_jurisdiction(country, region)
    profile = PatientProfile.objects.select_for_update().filter(user=user).select_related("space").first()
    if profile is None:
        space = Organization.objects.create(
            # Named without the patient's name: readers offered a second opinion see who asks before they
            # may see the patient (de-identified until assigned).
            name="A patient (second opinion)", legal_name=f"Patient {user.public_id.hex[:8]}",
            slug=f"patient-{user.public_id.hex[:16]}", kind=Organization.Kind.PATIENT, country=country,
            region=region, time_zone=user.time_zone)
        profile = PatientProfile.objects.create(user=user, date_of_birth=date_of_birth, country=country,
                                                region=region, space=space)
        audit_record(action="patient.details_recorded", actor=user, request=request, organization=space,
                     obj=profile, extra={"jurisdiction": profile.jurisdiction})
        return profile
    before = profile.jurisdiction
    profile.date_of_birth, profile.country, profile.region = date_of_birth, country, region
    profile.save(update_fields=["date_of_birth", "country", "region", "updated_at"])
    space = profile.space
    space.country, space.region = country, region
    space.save(update_fields=["country", "region", "updated_at"])
    audit_record(action="patient.details_changed", actor=user, request=request, organization=space,
                 obj=profile, extra={"jurisdiction": [before, profile.jurisdiction]})
    return profile
