"""Every write of credentialing: profiles, credential items and their one state machine,
documents, facility privileges, onboarding, expiry and reminders.

Each function takes the actor, checks ``accounts.credentials.policy`` and raises
``core.errors.ApplicationError`` (404 for objects the actor may not see).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credentials import policy
from accounts.credentials.documents import IMAGE_TYPES, max_document_bytes, sniff_content_type
from accounts.credentials.models import (
    ITEM_MODELS,
    ITEM_TRANSITIONS,
    CredentialDocument,
    CredentialItem,
    CredentialKind,
    CredentialReminder,
    CredentialStatusChange,
    FacilityPrivilege,
    License,
    Notification,
    RadiologistProfile,
    VerificationMethod,
    VerificationStatus,
)
from accounts.credentials.vocab import COMMON_LANGUAGES, REGIONS, Modality, Priority, Subspecialty
from accounts.models import TIME_ZONE_CHOICES, Membership, Organization, Role
from accounts.npi import npi_problem
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from core.links import absolute_url

REMINDER_THRESHOLDS = (60, 30, 7)


def _today() -> date:
    return timezone.now().date()


def _err(field: str, message: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError.for_field(field, message, code=code)


# --- profile ----------------------------------------------------------------------------------

@transaction.atomic
def radiologist_profile_ensure(*, actor: Actor) -> RadiologistProfile:
    """A radiologist's own profile, created on first use (onboarding starts from it)."""
    if not policy.is_radiologist(actor):
        raise NotFound()
    profile, created = RadiologistProfile.objects.get_or_create(
        user=actor.user, defaults={"home_time_zone": actor.user.time_zone})
    if created:
        audit_record(action="radiologist_profile.created", actor=actor.user, obj=profile)
    return profile


def _clean_codes(field: str, values, allowed: list[str], what: str) -> list[str]:
    values = [str(v).strip() for v in (values or []) if str(v).strip()]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise _err(field, f"Unknown {what}: {', '.join(unknown)}.")
    return [v for v in allowed if v in values]  # vocabulary order, no duplicates


PROFILE_FIELDS = frozenset({"display_name", "credentials_line", "bio", "languages", "home_time_zone", "npi",
                            "subspecialties", "modalities", "max_concurrent_cases", "priorities"})


def _clean_profile(profile: RadiologistProfile, data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data) - PROFILE_FIELDS
    if unknown:
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}.", code="unknown_fields")
    out: dict[str, Any] = {}
    for name in ("display_name", "credentials_line", "bio"):
        if name in data:
            value = (data[name] or "").strip()
            limit = RadiologistProfile._meta.get_field(name).max_length
            if limit and len(value) > limit:
                raise _err(name, f"Use at most {limit} characters.")
            out[name] = value
    if "home_time_zone" in data:
        if data["home_time_zone"] not in {tz for tz, _ in TIME_ZONE_CHOICES}:
            raise _err("home_time_zone", "Unknown time zone: use an IANA name such as America/Chicago.")
        out["home_time_zone"] = data["home_time_zone"]
    if "npi" in data:
        npi = (data["npi"] or "").strip() or None
        if npi is not None:
            problem = npi_problem(npi)
            if problem:
                raise _err("npi", problem, "invalid_npi")
            if RadiologistProfile.objects.filter(npi=npi).exclude(pk=profile.pk).exists():
                raise _err("npi", "This NPI is already registered to another radiologist.", "npi_taken")
        out["npi"] = npi
    if "languages" in data:
        languages = [str(v).strip().lower() for v in data["languages"] or [] if str(v).strip()]
        bad = [v for v in languages if len(v) != 2 or not v.isalpha() or not v.isascii()]
        if bad:
            raise _err("languages", f"Use two-letter ISO 639-1 codes (e.g. en, es), not: {', '.join(bad)}.")
        known = [code for code, _ in COMMON_LANGUAGES]
        out["languages"] = sorted(set(languages), key=lambda c: (known.index(c) if c in known else 99, c))
    if "subspecialties" in data:
        out["subspecialties"] = _clean_codes("subspecialties", data["subspecialties"], Subspecialty.values,
                                             "subspecialty")
    if "modalities" in data:
        out["modalities"] = _clean_codes("modalities", [str(m).upper() for m in data["modalities"] or []],
                                         Modality.values, "modality")
    if "priorities" in data:
        out["priorities"] = _clean_codes("priorities", data["priorities"], Priority.values, "priority")
    if "max_concurrent_cases" in data:
        try:
            value = int(data["max_concurrent_cases"])
        except (TypeError, ValueError):
            raise _err("max_concurrent_cases", "Enter a whole number.") from None
        if not 1 <= value <= 50:
            raise _err("max_concurrent_cases", "Choose between 1 and 50 cases at once.")
        out["max_concurrent_cases"] = value
    return out


@transaction.atomic
def radiologist_profile_update(*, actor: Actor, data: dict[str, Any], photo=None,
                               request: HttpRequest | None = None) -> RadiologistProfile:
    """A radiologist edits their own profile; the NPI must be valid and unused; codes come from the vocabularies."""
    profile = radiologist_profile_ensure(actor=actor)
    profile = RadiologistProfile.objects.select_for_update().get(pk=profile.pk)
    changes = {k: v for k, v in _clean_profile(profile, data).items() if getattr(profile, k) != v}
    for name, value in changes.items():
        setattr(profile, name, value)
    fields = list(changes)
    if photo is not None:
        content_type, digest, size = _inspect_upload(photo, field="photo")
        if content_type not in IMAGE_TYPES:
            raise _err("photo", "A photo must be a PNG or JPEG image.", "invalid_file_type")
        profile.photo.save(photo.name or "photo", photo, save=False)
        fields.append("photo")
    if fields:
        try:
            with transaction.atomic():
                profile.save(update_fields=[*fields, "updated_at"])
        except IntegrityError:
            raise _err("npi", "This NPI is already registered to another radiologist.", "npi_taken") from None
        audit_record(action="radiologist_profile.updated", actor=actor.user, request=request, obj=profile,
                     extra={"fields": sorted(fields)})
    return profile


# --- credential items -------------------------------------------------------------------------

def _date(data: dict, name: str, *, required: bool) -> date | None:
    value = data.get(name)
    if value in (None, ""):
        if required:
            raise _err(name, "This date is required.", "required")
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _err(name, "Enter a date as YYYY-MM-DD.") from None


def _text(data: dict, name: str, *, required: bool = True, limit: int = 150, upper: bool = False) -> str:
    value = str(data.get(name) or "").strip()
    if upper:
        value = value.upper()
    if required and not value:
        raise _err(name, "This field is required.", "required")
    if len(value) > limit:
        raise _err(name, f"Use at most {limit} characters.")
    return value


def _int(data: dict, name: str, *, minimum: int = 0) -> int:
    try:
        value = int(data.get(name))
    except (TypeError, ValueError):
        raise _err(name, "Enter a whole number.", "required") from None
    if value < minimum:
        raise _err(name, f"Enter at least {minimum}.")
    return value


def _clean_license(profile: RadiologistProfile, data: dict, instance: License | None) -> dict:
    country = _text(data, "country", limit=2, upper=True)
    region = _text(data, "region", required=country in REGIONS, limit=3, upper=True)
    if len(country) != 2 or not country.isalpha():
        raise _err("country", "Use the two-letter ISO 3166 country code, e.g. US.")
    if country in REGIONS and region not in REGIONS[country]:
        raise _err("region", f"Unknown state or province code {region!r} for {country}.", "unknown_region")
    number = _text(data, "number", limit=40)
    license_type = data.get("license_type") or License.Type.FULL
    if license_type not in License.Type.values:
        raise _err("license_type", "Choose full, temporary or compact.")
    issued_on = _date(data, "issued_on", required=False)
    expires_on = _date(data, "expires_on", required=True)
    if issued_on and expires_on < issued_on:
        raise _err("expires_on", "The expiry date is before the issue date.", "expiry_before_issue")
    duplicate = License.objects.filter(radiologist=profile, country=country, region=region, number__iexact=number)
    if instance is not None:
        duplicate = duplicate.exclude(pk=instance.pk)
    if duplicate.exists():
        raise _err("number", f"License {number} for {country}-{region} is already on file.", "duplicate_license")
    return {"country": country, "region": region, "number": number, "license_type": license_type,
            "issued_on": issued_on, "expires_on": expires_on}


def _clean_board(profile: RadiologistProfile, data: dict, instance) -> dict:
    initial_year = _int(data, "initial_year", minimum=1950)
    if initial_year > _today().year:
        raise _err("initial_year", "The initial certification year is in the future.")
    continuous = str(data.get("continuous_certification", "")).lower() in {"1", "true", "on", "yes"}
    expires_on = _date(data, "expires_on", required=not continuous)
    if expires_on and expires_on.year < initial_year:
        raise _err("expires_on", "The expiry date is before the initial certification.", "expiry_before_issue")
    return {"board": _text(data, "board", limit=100) or "ABR", "certificate": _text(data, "certificate"),
            "initial_year": initial_year, "continuous_certification": continuous, "expires_on": expires_on}


def _clean_insurance(profile: RadiologistProfile, data: dict, instance) -> dict:
    per_claim = _int(data, "per_claim_limit", minimum=1)
    aggregate = _int(data, "aggregate_limit", minimum=1)
    if aggregate < per_claim:
        raise _err("aggregate_limit", "The aggregate limit must be at least the per-claim limit.")
    currency = _text(data, "currency", limit=3, upper=True) if data.get("currency") else "USD"
    if len(currency) != 3 or not currency.isalpha():
        raise _err("currency", "Use an ISO 4217 currency code, e.g. USD.")
    raw = data.get("coverage_jurisdictions") or []
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    jurisdictions = sorted({str(j).strip().upper() for j in raw if str(j).strip()})
    if not jurisdictions:
        raise _err("coverage_jurisdictions", "Name the jurisdictions covered, e.g. US or US-TX.", "required")
    for code in jurisdictions:
        country, _, region = code.partition("-")
        if len(country) != 2 or (region and country in REGIONS and region not in REGIONS[country]):
            raise _err("coverage_jurisdictions", f"Unknown jurisdiction {code!r}.", "unknown_region")
    effective_on = _date(data, "effective_on", required=True)
    expires_on = _date(data, "expires_on", required=True)
    if expires_on < effective_on:
        raise _err("expires_on", "The expiry date is before the start of cover.", "expiry_before_issue")
    return {"carrier": _text(data, "carrier"), "policy_number": _text(data, "policy_number", limit=60),
            "per_claim_limit": per_claim, "aggregate_limit": aggregate, "currency": currency,
            "coverage_jurisdictions": jurisdictions, "effective_on": effective_on, "expires_on": expires_on}


def _clean_mqsa(profile: RadiologistProfile, data: dict, instance) -> dict:
    initial = _date(data, "initial_qualified_on", required=True)
    attested = _date(data, "attested_on", required=True)
    if attested < initial:
        raise _err("attested_on", "The attestation is before the initial qualification.")
    if attested > _today():
        raise _err("attested_on", "The attestation date is in the future.")
    try:
        cme = Decimal(str(data.get("cme_hours_last_36_months")))
    except (InvalidOperation, TypeError):
        raise _err("cme_hours_last_36_months", "Enter a number of hours.", "required") from None
    if cme < 0 or cme >= 1000:
        raise _err("cme_hours_last_36_months", "Enter between 0 and 999.9 hours.")
    valid_days = getattr(settings, "MQSA_ATTESTATION_VALID_DAYS", 365)
    return {"initial_qualified_on": initial, "exams_last_24_months": _int(data, "exams_last_24_months"),
            "cme_hours_last_36_months": cme.quantize(Decimal("0.1")), "attested_on": attested,
            "expires_on": attested + timedelta(days=valid_days)}


CLEANERS = {
    CredentialKind.LICENSE: _clean_license,
    CredentialKind.BOARD: _clean_board,
    CredentialKind.INSURANCE: _clean_insurance,
    CredentialKind.MQSA: _clean_mqsa,
}


def _record_change(item, *, from_status: str, to_status: str, actor_user, method: str = "", reference: str = "",
                   reason: str = "") -> CredentialStatusChange:
    return CredentialStatusChange.objects.create(
        radiologist_id=item.radiologist_id, kind=item.KIND if hasattr(item, "KIND") else CredentialKind.PRIVILEGE,
        item_id=item.pk, from_status=from_status, to_status=to_status, actor=actor_user, method=method,
        reference=reference[:300], reason=reason[:500])


@transaction.atomic
def credential_create(*, actor: Actor, kind: str, data: dict[str, Any],
                      request: HttpRequest | None = None) -> CredentialItem:
    """A radiologist adds one of their own credentials; it starts pending verification."""
    if kind not in ITEM_MODELS:
        raise NotFound()
    profile = radiologist_profile_ensure(actor=actor)
    model = ITEM_MODELS[kind]
    values = CLEANERS[kind](profile, data, None)
    try:
        with transaction.atomic():
            item = model.objects.create(radiologist=profile, **values)
    except IntegrityError:
        raise ApplicationError("This credential conflicts with one already on file.", code="duplicate") from None
    _record_change(item, from_status="", to_status=item.status, actor_user=actor.user, reason="submitted")
    audit_record(action=f"credential.{kind}.created", actor=actor.user, request=request, obj=item)
    return item


@transaction.atomic
def credential_update(*, actor: Actor, item: CredentialItem, data: dict[str, Any],
                      request: HttpRequest | None = None) -> CredentialItem:
    """The owner edits an item. A change of a verified item's key fields sends it back to pending;
    an edit of a rejected or expired item resubmits it (pending again)."""
    if not policy.can_edit_credentials(actor, item.radiologist):
        raise NotFound()
    item = type(item).objects.select_for_update().select_related("radiologist").get(pk=item.pk)
    values = CLEANERS[item.KIND](item.radiologist, {**_current_values(item), **data}, item)
    changed = sorted(name for name, value in values.items() if getattr(item, name) != value)
    if not changed:
        return item
    for name in changed:
        setattr(item, name, values[name])
    try:
        with transaction.atomic():
            item.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise ApplicationError("This credential conflicts with one already on file.", code="duplicate") from None
    audit_record(action=f"credential.{item.KIND}.updated", actor=actor.user, request=request, obj=item,
                 extra={"fields": changed})
    key_changed = [name for name in changed if name in item.KEY_FIELDS]
    if item.status == VerificationStatus.VERIFIED and key_changed:
        item = credential_transition(obj=item, to=VerificationStatus.PENDING, actor=None,
                                     reason=f"changed after verification: {', '.join(key_changed)}", request=request)
    elif item.status in (VerificationStatus.REJECTED, VerificationStatus.EXPIRED):
        item = credential_transition(obj=item, to=VerificationStatus.PENDING, actor=actor, reason="resubmitted",
                                     request=request)
    return item


def _current_values(item: CredentialItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.KEY_FIELDS}


@transaction.atomic
def credential_delete(*, actor: Actor, item: CredentialItem, request: HttpRequest | None = None) -> None:
    """The owner withdraws an item (its history and audit trail stay)."""
    if not policy.can_edit_credentials(actor, item.radiologist):
        raise NotFound()
    audit_record(action=f"credential.{item.KIND}.deleted", actor=actor.user, request=request, obj=item,
                 extra={"status": item.status, "title": str(item)})
    CredentialDocument.objects.filter(kind=item.KIND, item_id=item.pk).delete()
    item.delete()


@transaction.atomic
def credential_transition(*, obj: CredentialItem, to: str, actor: Actor | None, reason: str = "",
                          method: str = "", reference: str = "",
                          request: HttpRequest | None = None) -> CredentialItem:
    """The one way a credential item changes state (table ``ITEM_TRANSITIONS``).

    ``verified`` and ``rejected`` are decisions of platform staff on someone else's item:
    verifying records how (primary source and a reference); rejecting needs a reason the owner
    will read. ``actor=None`` is the system (expiry at the expiry date, re-verification after an edit).
    """
    item = type(obj).objects.select_for_update().select_related("radiologist").get(pk=obj.pk)
    profile = item.radiologist
    if to in (VerificationStatus.VERIFIED, VerificationStatus.REJECTED):
        if actor is None or not policy.can_view_credentials(actor, profile):
            raise NotFound()
        if not policy.can_verify(actor, profile):
            raise PermissionDenied("Only platform staff verify credentials, and never their own.",
                                   code="cannot_verify")
    if to not in ITEM_TRANSITIONS.get(item.status, frozenset()):
        raise ApplicationError(f"A {item.get_status_display().lower()} item cannot become {to}.",
                               code="invalid_transition", fields={"status": [f"{item.status} → {to} not allowed"]})
    reason = (reason or "").strip()
    method, reference = (method or "").strip(), (reference or "").strip()
    now = timezone.now()
    fields = ["status", "status_reason", "status_changed_at", "updated_at"]
    if to == VerificationStatus.VERIFIED:
        if method not in VerificationMethod.values:
            raise _err("method", "Say how it was verified (e.g. primary source).", "required")
        if not reference:
            raise _err("reference", "Give the reference checked, e.g. the state board lookup.", "required")
        if item.expires_on is not None and item.expires_on < now.date():
            raise ApplicationError("This item has already expired: it cannot be verified.", code="expired")
        item.verified_at, item.verified_by = now, actor.user
        item.verification_method, item.verification_reference = method, reference[:300]
        fields += ["verified_at", "verified_by", "verification_method", "verification_reference"]
    elif to == VerificationStatus.REJECTED and not reason:
        raise _err("reason", "Give the reason for rejecting: the radiologist will read it.", "required")
    from_status = item.status
    item.status, item.status_reason, item.status_changed_at = to, reason[:500], now
    item.save(update_fields=fields)
    actor_user = actor.user if actor is not None else None
    _record_change(item, from_status=from_status, to_status=to, actor_user=actor_user, method=method,
                   reference=reference, reason=reason)
    audit_record(action=f"credential.{to}", actor=actor_user, request=request, obj=item,
                 reason=reason, extra={"kind": item.KIND, "from": from_status, "to": to, "method": method,
                                       "reference": reference, "radiologist": profile.user.email
                                       if hasattr(profile, "user") else ""})
    return item


def credential_verify(*, actor: Actor, item: CredentialItem, method: str, reference: str,
                      request: HttpRequest | None = None) -> CredentialItem:
    return credential_transition(obj=item, to=VerificationStatus.VERIFIED, actor=actor, method=method,
                                 reference=reference, request=request)


def credential_reject(*, actor: Actor, item: CredentialItem, reason: str, method: str = "", reference: str = "",
                      request: HttpRequest | None = None) -> CredentialItem:
    return credential_transition(obj=item, to=VerificationStatus.REJECTED, actor=actor, reason=reason,
                                 method=method, reference=reference, request=request)


def credentials_expire_due(*, today: date | None = None) -> int:
    """Mark verified items whose expiry date has passed as expired (eligibility already ignores them)."""
    today = today or _today()
    count = 0
    for model in ITEM_MODELS.values():
        for item in model.objects.filter(status=VerificationStatus.VERIFIED, expires_on__lt=today):
            credential_transition(obj=item, to=VerificationStatus.EXPIRED, actor=None,
                                  reason=f"expired {item.expires_on.isoformat()}")
            count += 1
    return count


# --- documents --------------------------------------------------------------------------------

def _inspect_upload(upload, *, field: str) -> tuple[str, str, int]:
    size = getattr(upload, "size", None)
    if size is None or size > max_document_bytes():
        raise _err(field, f"The file is larger than {max_document_bytes() // (1024 * 1024)} MB.", "file_too_large")
    if size == 0:
        raise _err(field, "The file is empty.", "invalid_file_type")
    upload.seek(0)
    head = upload.read(16)
    content_type = sniff_content_type(head)
    if content_type is None:
        raise _err(field, "Upload a PDF or an image (PNG, JPEG, TIFF); this file is neither by its content.",
                   "invalid_file_type")
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return content_type, digest.hexdigest(), size


@transaction.atomic
def credential_document_upload(*, actor: Actor, item: CredentialItem, upload,
                               request: HttpRequest | None = None) -> CredentialDocument:
    """The owner attaches a PDF or image to one of their items; type by content, size capped; private storage."""
    if not policy.can_edit_credentials(actor, item.radiologist):
        raise NotFound()
    content_type, sha256, size = _inspect_upload(upload, field="file")
    document = CredentialDocument(radiologist=item.radiologist, kind=item.KIND, item_id=item.pk,
                                  original_name=(upload.name or "document")[-200:], content_type=content_type,
                                  size=size, sha256=sha256, uploaded_by=actor.user)
    document.file.save(upload.name or "document", upload, save=False)
    document.save()
    audit_record(action="credential.document_uploaded", actor=actor.user, request=request, obj=document,
                 extra={"kind": item.KIND, "item": str(item.public_id), "sha256": sha256, "size": size})
    return document


def credential_document_read_record(*, actor: Actor, document: CredentialDocument,
                                    request: HttpRequest | None = None) -> None:
    """Opening a credential document is audited (it may show a date of birth, an address)."""
    if not policy.can_view_credentials(actor, document.radiologist):
        raise NotFound()
    audit_record(action="credential.document_viewed", actor=actor.user, request=request, obj=document)


# --- onboarding -------------------------------------------------------------------------------

STEPS = [s.value for s in RadiologistProfile.OnboardingStep]


@transaction.atomic
def onboarding_go_to(*, actor: Actor, step: str) -> RadiologistProfile:
    """Remember the furthest step the radiologist reached in the wizard, so that they resume there."""
    if step not in STEPS:
        raise NotFound()
    profile = radiologist_profile_ensure(actor=actor)
    if STEPS.index(step) > STEPS.index(profile.onboarding_step):
        profile.onboarding_step = step
        profile.save(update_fields=["onboarding_step", "updated_at"])
    return profile


@dataclass(frozen=True)
class OnboardingGap:
    step: str
    message: str


def onboarding_gaps(profile: RadiologistProfile) -> list[OnboardingGap]:
    """What is still missing before the profile can be submitted for verification."""
    gaps = []
    if not profile.subspecialties:
        gaps.append(OnboardingGap("profile", "Choose at least one subspecialty."))
    if not profile.modalities:
        gaps.append(OnboardingGap("profile", "Choose the modalities you read."))
    if not profile.licenses.exists():
        gaps.append(OnboardingGap("licenses", "Add at least one license."))
    if not profile.malpractice_policies.exists():
        gaps.append(OnboardingGap("insurance", "Add your malpractice insurance."))
    return gaps


@transaction.atomic
def onboarding_submit(*, actor: Actor, request: HttpRequest | None = None) -> RadiologistProfile:
    """Submit the profile and its pending items for verification (once everything required is there)."""
    profile = radiologist_profile_ensure(actor=actor)
    gaps = onboarding_gaps(profile)
    if gaps:
        raise ApplicationError("Complete your profile first: " + " ".join(g.message for g in gaps),
                               code="onboarding_incomplete", fields={g.step: [g.message] for g in gaps})
    profile.submitted_at = timezone.now()
    profile.onboarding_step = RadiologistProfile.OnboardingStep.SUBMIT
    profile.save(update_fields=["submitted_at", "onboarding_step", "updated_at"])
    audit_record(action="radiologist_profile.submitted", actor=actor.user, request=request, obj=profile)
    return profile


# --- facility privileges ----------------------------------------------------------------------

@transaction.atomic
def center_set_requires_privileges(*, actor: Actor, center: Organization, required: bool,
                                   request: HttpRequest | None = None) -> Organization:
    """A center admin decides whether their studies go only to radiologists holding their privileges."""
    if not policy.can_manage_privileges(actor, center):
        raise NotFound()
    if center.requires_privileges != required:
        center.requires_privileges = required
        center.save(update_fields=["requires_privileges", "updated_at"])
        audit_record(action="center.requires_privileges_changed", actor=actor.user, request=request, obj=center,
                     organization=center, extra={"requires_privileges": required})
    return center


@transaction.atomic
def privilege_grant(*, actor: Actor, center: Organization, radiologist: RadiologistProfile,
                    granted_on: date | None = None, expires_on: date | None = None,
                    request: HttpRequest | None = None) -> FacilityPrivilege:
    """A center admin grants (or grants again) their own center's privileges to a radiologist."""
    if not policy.can_manage_privileges(actor, center):
        raise NotFound()
    granted_on = granted_on or _today()
    if expires_on is not None and expires_on < granted_on:
        raise _err("expires_on", "The expiry date is before the grant date.", "expiry_before_issue")
    privilege = (FacilityPrivilege.objects.select_for_update()
                 .filter(radiologist=radiologist, center=center).first())
    if privilege is None:
        privilege = FacilityPrivilege.objects.create(radiologist=radiologist, center=center, granted_on=granted_on,
                                                     expires_on=expires_on, changed_by=actor.user)
        _record_change(privilege, from_status="", to_status=privilege.status, actor_user=actor.user,
                       reason="granted")
        audit_record(action="privilege.granted", actor=actor.user, request=request, obj=privilege,
                     organization=center, extra={"radiologist": radiologist.user.email})
        return privilege
    privilege.granted_on, privilege.expires_on = granted_on, expires_on
    privilege.save(update_fields=["granted_on", "expires_on", "updated_at"])
    if privilege.status != FacilityPrivilege.Status.GRANTED:
        privilege = privilege_transition(actor=actor, privilege=privilege, to=FacilityPrivilege.Status.GRANTED,
                                         reason="granted again", request=request)
    return privilege


@transaction.atomic
def privilege_transition(*, actor: Actor, privilege: FacilityPrivilege, to: str, reason: str = "",
                         request: HttpRequest | None = None) -> FacilityPrivilege:
    """Grant, suspend or revoke a center's privileges (table ``FacilityPrivilege.TRANSITIONS``)."""
    privilege = FacilityPrivilege.objects.select_for_update().select_related("center").get(pk=privilege.pk)
    if not policy.can_manage_privileges(actor, privilege.center):
        raise NotFound()
    if to not in privilege.TRANSITIONS.get(privilege.status, frozenset()):
        raise ApplicationError(f"Privileges that are {privilege.status} cannot become {to}.",
                               code="invalid_transition")
    reason = (reason or "").strip()
    if to in (FacilityPrivilege.Status.SUSPENDED, FacilityPrivilege.Status.REVOKED) and not reason:
        raise _err("reason", "Give the reason.", "required")
    from_status = privilege.status
    privilege.status, privilege.status_reason, privilege.changed_by = to, reason[:500], actor.user
    privilege.save(update_fields=["status", "status_reason", "changed_by", "updated_at"])
    _record_change(privilege, from_status=from_status, to_status=to, actor_user=actor.user, reason=reason)
    audit_record(action=f"privilege.{to}", actor=actor.user, request=request, obj=privilege,
                 organization=privilege.center, reason=reason, extra={"from": from_status})
    return privilege


# --- expiry reminders -------------------------------------------------------------------------

def _group_admins(profile: RadiologistProfile):
    group_ids = Membership.objects.filter(user_id=profile.user_id, is_active=True,
                                          organization__kind=Organization.Kind.RADIOLOGY_GROUP
                                          ).values_list("organization_id", flat=True)
    memberships = (Membership.objects.filter(organization_id__in=list(group_ids), is_active=True)
                   .exclude(user_id=profile.user_id).select_related("user"))
    return [m.user for m in memberships if Role.ADMIN in m.roles and m.user.is_active]


def _notify(user, *, title: str, body: str, url: str) -> None:
    """An in-app notification (``url`` a path) and an email whose link points at the site."""
    Notification.objects.create(user=user, title=title[:200], body=body, url=url)
    link = absolute_url(url)
    transaction.on_commit(lambda: send_mail(subject=f"[ReadRoom] {title}", message=f"{body}\n\n{link}",
                                            from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[user.email]))


def _reminder_candidates(today: date, horizon: date):
    for model in ITEM_MODELS.values():
        yield from (model.objects.filter(status__in=(VerificationStatus.VERIFIED, VerificationStatus.PENDING),
                                         expires_on__gte=today, expires_on__lte=horizon)
                    .select_related("radiologist__user"))
    yield from (FacilityPrivilege.objects.filter(status=FacilityPrivilege.Status.GRANTED, expires_on__gte=today,
                                                 expires_on__lte=horizon)
                .select_related("radiologist__user", "center"))


def credential_reminders_send(*, today: date | None = None) -> int:
    """Warn at 60, 30 and 7 days before an expiry, once per threshold (the reminder row is the key).

    An item first seen 20 days ahead gets the 30-day reminder only; renewing it (a new expiry
    date) starts the thresholds again. The radiologist and their group admins get an email and
    an in-app notification.
    """
    from django.urls import reverse

    today = today or _today()
    sent = 0
    url = reverse("credentials_mine")
    for item in _reminder_candidates(today, today + timedelta(days=max(REMINDER_THRESHOLDS))):
        days_left = (item.expires_on - today).days
        threshold = min(t for t in REMINDER_THRESHOLDS if t >= days_left)
        kind = CredentialKind.PRIVILEGE if isinstance(item, FacilityPrivilege) else item.KIND
        with transaction.atomic():
            _, created = CredentialReminder.objects.get_or_create(
                kind=kind, item_id=item.pk, threshold_days=threshold, expires_on=item.expires_on,
                defaults={"radiologist": item.radiologist})
            if not created:
                continue
            profile = item.radiologist
            what = (f"Privileges at {item.center.name}" if kind == CredentialKind.PRIVILEGE
                    else f"{item.title} ({item})")
            when = "today" if days_left == 0 else f"in {days_left} day{'s' if days_left != 1 else ''}"
            _notify(profile.user, title=f"{what} expires {when}",
                    body=f"{what} expires on {item.expires_on.isoformat()}. Renew it and upload the new document "
                         "so that you keep receiving offers.", url=url)
            for admin in _group_admins(profile):
                _notify(admin, title=f"{profile.name}: {what} expires {when}",
                        body=f"{profile.name}'s {what} expires on {item.expires_on.isoformat()}.", url=url)
            sent += 1
    return sent
