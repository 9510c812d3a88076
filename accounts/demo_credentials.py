"""Demo credentials for the 12 demo radiologists (issue 4, point 9), called by ``load_demo``.

Mixed on purpose: licenses in several states, one compact-issued, one expiring within 30 days,
one expired, one pending verification, one rejected, two MQSA-qualified readers, and privileges
at Lakeside Imaging, which requires them. Idempotent: rows are found by natural keys, a field is
written only when it differs, dates are anchored on creation; a second run changes nothing.
Seed data, so rows are written directly (as ``load_demo`` does), with a status-change row for
each decision so that the history pages show who verified what.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.credentials.models import (
    BoardCertification,
    CredentialStatusChange,
    FacilityPrivilege,
    License,
    MalpracticeInsurance,
    MqsaQualification,
    RadiologistProfile,
    VerificationMethod,
    VerificationStatus,
)
from accounts.models import Organization, User
from accounts.npi import npi_check_digit

DEMO_DOMAIN = "@radiologists.demo"
OPS_EMAIL = "ops@readroom.demo"
PRIVILEGE_CENTER = "lakeside"

# last name: (languages, modalities, bio)
PROFILES = {
    "okafor": (["en", "ig", "yo"], ["CT", "MR", "CR", "DX"], "Neuroradiologist; stroke and head-and-neck imaging."),
    "nakamura": (["en", "ja"], ["CT", "MR", "CR", "DX", "US"], "Body and chest CT from Honolulu, overnight US hours."),
    "alvarez": (["en", "es"], ["MR", "CT", "CR", "DX"], "Musculoskeletal MR and emergency imaging."),
    "brennan": (["en"], ["CT", "MR", "CR", "DX", "US"], "Emergency radiology from Sydney: his day is the US night."),
    "haddad": (["en", "ar", "fr"], ["MG", "US", "CT", "MR"], "Breast imaging (screening and diagnostic) and body."),
    "patel": (["en", "hi", "fr"], ["CT", "MR", "NM", "PT"], "Body imaging and PET/CT."),
    "chen": (["en", "zh"], ["CT", "MR"], "Cardiac CT/MR and thoracic imaging."),
    "kowalski": (["en", "pl", "de"], ["MR", "CT"], "Pediatric neuroradiology."),
    "mensah": (["en", "tw"], ["CT", "XA", "US"], "Interventional and body radiology."),
    "rossi": (["en", "it"], ["MR", "CR", "DX"], "Musculoskeletal radiology."),
    "whitfield": (["en"], ["CR", "DX", "CT", "US", "MG"], "General and emergency radiology, including mammography."),
    "dubois": (["fr", "en"], ["MR", "CT", "US"], "Pediatric radiology and neuroradiology."),
}
MQSA_READERS = {"haddad", "whitfield"}
PRIVILEGED_AT_LAKESIDE = {"okafor", "nakamura", "whitfield"}
COMPACT_LICENSE = ("brennan", "CO")  # issued through the Interstate Medical Licensure Compact
PENDING_LICENSE = ("whitfield", "IL")  # waiting in the verification queue
REJECTED_LICENSE = ("mensah", "GA")  # rejected with a reason the radiologist sees
SUBMITTED_NOT_VERIFIED = {"dubois"}  # every item still pending: a fresh sign-up


def demo_npi(index: int) -> str:
    first_nine = f"1{(index + 1) * 7_654_321 % 10**8:08d}"
    return first_nine + str(npi_check_digit(first_nine))


class _Seeder:
    def __init__(self, stdout=None):
        self.stdout = stdout
        self.today = timezone.now().date()
        self.ops = User.objects.filter(email=OPS_EMAIL).first()
        self.changed = 0

    def sync(self, model, lookup: dict, values: dict, on_create: dict | None = None):
        obj = model.objects.filter(**lookup).first()
        if obj is None:
            obj = model.objects.create(**lookup, **values, **(on_create or {}))
            self.changed += 1
            return obj, True
        diff = [k for k, v in values.items() if getattr(obj, k) != v]
        if diff:
            for k in diff:
                setattr(obj, k, values[k])
            obj.save(update_fields=[*diff, "updated_at"])
            self.changed += 1
        return obj, False

    def decide(self, item, status: str, *, reason: str = "", reference: str = "") -> None:
        """Put a seeded item in ``status`` (recording the decision once)."""
        if item.status == status:
            return
        now = timezone.now()
        fields = {"status": status, "status_reason": reason, "status_changed_at": now}
        if status in (VerificationStatus.VERIFIED, VerificationStatus.EXPIRED):
            fields.update(verified_at=now, verified_by=self.ops, verification_method=VerificationMethod.PRIMARY_SOURCE,
                          verification_reference=reference or "demo: primary-source lookup")
        type(item).objects.filter(pk=item.pk).update(**fields)
        CredentialStatusChange.objects.create(
            radiologist_id=item.radiologist_id, kind=item.KIND, item_id=item.pk, from_status=item.status,
            to_status=status, actor=self.ops if status != VerificationStatus.EXPIRED else None,
            method=VerificationMethod.PRIMARY_SOURCE if status == VerificationStatus.VERIFIED else "",
            reference=reference, reason=reason)
        for key, value in fields.items():
            setattr(item, key, value)
        self.changed += 1

    def radiologist(self, index: int, last_name: str, profile: RadiologistProfile, lakeside: Organization | None):
        languages, modalities, bio = PROFILES[last_name]
        list(profile.subspecialties)
        self.sync(RadiologistProfile, {"pk": profile.pk}, {
            "languages": languages, "modalities": modalities, "bio": bio, "npi": demo_npi(index),
            "priorities": ["stat", "urgent", "routine"] if index % 3 else ["urgent", "routine"],
            "max_concurrent_cases": 2 + index % 4,
            "onboarding_step": RadiologistProfile.OnboardingStep.SUBMIT,
        })
        if profile.submitted_at is None:
            RadiologistProfile.objects.filter(pk=profile.pk).update(submitted_at=timezone.now())
        pending_only = last_name in SUBMITTED_NOT_VERIFIED
        for license_ in License.objects.filter(radiologist=profile):
            key = (last_name, license_.region)
            if key == COMPACT_LICENSE:
                self.sync(License, {"pk": license_.pk}, {"license_type": License.Type.COMPACT})
                license_.refresh_from_db()
            if license_.issued_on is None:
                License.objects.filter(pk=license_.pk).update(issued_on=date(2012 + index % 8, 7, 1))
            if pending_only or key == PENDING_LICENSE:
                continue
            if key == REJECTED_LICENSE:
                self.decide(license_, VerificationStatus.REJECTED,
                            reason="The Georgia board lists this number under another physician: check the number.")
            elif license_.expires_on < self.today:
                if license_.status == VerificationStatus.PENDING:
                    self.decide(license_, VerificationStatus.VERIFIED, reference=f"demo: {license_.region} board")
                self.decide(license_, VerificationStatus.EXPIRED, reason=f"expired {license_.expires_on}")
            else:
                self.decide(license_, VerificationStatus.VERIFIED, reference=f"demo: {license_.region} board lookup")
        board, _ = self.sync(BoardCertification, {"radiologist": profile, "board": "ABR",
                                                  "certificate": "Diagnostic Radiology"},
                             {"continuous_certification": True}, on_create={"initial_year": 2005 + index})
        insurance, _ = self.sync(
            MalpracticeInsurance, {"radiologist": profile, "policy_number": f"DEMO-{index + 1:04d}"},
            {"carrier": "Medical Protective" if index % 2 else "The Doctors Company", "per_claim_limit": 100_000_000,
             "aggregate_limit": 300_000_000, "currency": "USD",
             "coverage_jurisdictions": ["CA", "US"] if last_name in {"patel", "dubois"} else ["US"]},
            on_create={"effective_on": self.today - timedelta(days=200),
                       "expires_on": self.today + timedelta(days=165 + 15 * index)})
        items = [board, insurance]
        if last_name in MQSA_READERS:
            mqsa, _ = self.sync(MqsaQualification, {"radiologist": profile},
                                {"exams_last_24_months": 1240 if last_name == "haddad" else 985,
                                 "cme_hours_last_36_months": Decimal("21.0")},
                                on_create={"initial_qualified_on": date(2014, 3, 1),
                                           "attested_on": self.today - timedelta(days=40),
                                           "expires_on": self.today + timedelta(days=325)})
            items.append(mqsa)
        if not pending_only:
            for item in items:
                self.decide(item, VerificationStatus.VERIFIED, reference="demo: ABR / carrier / MQSA attestation")
        if lakeside is not None and last_name in PRIVILEGED_AT_LAKESIDE:
            self.sync(FacilityPrivilege, {"radiologist": profile, "center": lakeside},
                      {"status": FacilityPrivilege.Status.GRANTED},
                      on_create={"granted_on": self.today - timedelta(days=90)})


@transaction.atomic
def seed_demo_credentials(stdout=None) -> int:
    """Give the demo radiologists their mixed credentials; returns how many rows changed (0 on a re-run)."""
    seeder = _Seeder(stdout)
    lakeside = Organization.objects.filter(slug=PRIVILEGE_CENTER).first()
    if lakeside is not None and not lakeside.requires_privileges:
        lakeside.requires_privileges = True
        lakeside.save(update_fields=["requires_privileges", "updated_at"])
        seeder.changed += 1
    profiles = {p.user.email.split("@")[0].removeprefix("dr."): p for p in
                RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN).select_related("user")}
    for index, last_name in enumerate(PROFILES):
        if last_name in profiles:
            seeder.radiologist(index, last_name, profiles[last_name], lakeside)
    if stdout is not None:
        stdout.write(f"Demo credentials: {seeder.changed} change(s) for {len(profiles)} radiologists.")
    return seeder.changed
