"""THE eligibility rule: may this radiologist read this study for this center at this moment?

Only items that were verified count, and only while their dates cover the moment asked about, so
an item stops counting the moment it expires even if no task has marked it expired yet. Every
failing rule adds a reason a center can read; eligible means no reason at all.

``eligibility_bulk`` answers for many radiologists with a fixed number of queries (one per kind
of credential involved, whatever the number of radiologists); ``eligible`` is the one-radiologist form.
``may_be_eligible`` is the rule's cheap necessary part in SQL (an active account and a counted license
covering the day), for callers that only want the eligible and not every reason for everyone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.credentials.models import (
    FacilityPrivilege,
    License,
    MalpracticeInsurance,
    MqsaQualification,
    RadiologistProfile,
    VerificationStatus,
)
from accounts.credentials.vocab import modality_read_by, parse_jurisdiction

MAMMOGRAPHY = "MG"
COUNTED = (VerificationStatus.VERIFIED, VerificationStatus.EXPIRED)  # was verified; dates decide the rest


@dataclass(frozen=True)
class Eligibility:
    """The answer for one radiologist: eligible when ``reasons`` is empty."""

    radiologist: RadiologistProfile
    reasons: list[str] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        return not self.reasons

    def __bool__(self) -> bool:
        return self.eligible


def _day(at: datetime | date) -> date:
    """The calendar day (UTC) an item's dates are compared with."""
    if isinstance(at, datetime):
        return at.astimezone(UTC).date() if at.tzinfo else at.date()
    return at


def _latest_expiry(items) -> date | None:
    dates = [i.expires_on for i in items if i.expires_on is not None]
    return max(dates) if dates else None


def _reasons(profile: RadiologistProfile, *, jurisdiction: str, modalities: list[str], subspecialty: str | None,
             center, on: date) -> list[str]:
    reasons: list[str] = []
    if not profile.user.is_active:
        reasons.append("account inactive")
    # License of the jurisdiction where the patient was imaged.
    licenses = profile.eligibility_licenses
    if not licenses:
        reasons.append(f"no verified license for {jurisdiction}")
    elif not any(lic.covers(on) for lic in licenses):
        lapsed = [lic for lic in licenses if lic.expires_on < on]
        if lapsed and len(lapsed) == len(licenses):
            reasons.append(f"license {jurisdiction} expired {_latest_expiry(lapsed).isoformat()}")
        else:
            starts = min(lic.issued_on for lic in licenses if lic.issued_on and lic.issued_on > on)
            reasons.append(f"license {jurisdiction} not valid until {starts.isoformat()}")
    # What they read.
    for modality in modalities:
        if not modality_read_by(modality, profile.modalities):
            reasons.append(f"does not read {modality}")
    if subspecialty and subspecialty not in profile.subspecialties:
        reasons.append(f"no subspecialty {subspecialty}")
    # Mammography needs a current MQSA qualification.
    if MAMMOGRAPHY in modalities:
        mqsa = profile.eligibility_mqsa
        current = [q for q in mqsa if q.covers(on)]
        if not mqsa:
            reasons.append("no MQSA qualification")
        elif not current:
            reasons.append(f"MQSA qualification expired {_latest_expiry(mqsa).isoformat()}")
        elif not any(q.meets_continuing_experience for q in current):
            reasons.append(f"MQSA continuing experience not met ({MqsaQualification.EXAMS_REQUIRED} exams in 24 "
                           f"months and {MqsaQualification.CME_HOURS_REQUIRED} CME hours in 36 months)")
    # Malpractice cover that includes the jurisdiction.
    policies = profile.eligibility_insurance
    if not policies:
        reasons.append("no verified malpractice coverage")
    else:
        current = [p for p in policies if p.covers(on)]
        if not current:
            reasons.append("malpractice coverage expired")
        elif not any(p.covers_jurisdiction(jurisdiction) for p in current):
            reasons.append(f"malpractice coverage does not include {jurisdiction}")
    # Credentialing by proxy: the center may require its own privileges.
    if (center is not None and center.requires_privileges
            and not any(p.covers(on) for p in profile.eligibility_privileges)):
        reasons.append(f"no privileges at {center.name}")
    return reasons


def eligibility_bulk(radiologists: Iterable[RadiologistProfile] | QuerySet[RadiologistProfile], *,
                     jurisdiction: str, modalities: Iterable[str] = (), subspecialty: str | None = None,
                     center=None, at: datetime | date) -> dict[int, Eligibility]:
    """Eligibility of each radiologist (by profile id), in a fixed number of queries.

    ``radiologists`` is a queryset (filtered as the caller likes) or profiles / ids.
    Queries: the profiles with their users, then one per credential kind that matters here.
    """
    country, region = parse_jurisdiction(jurisdiction)
    modalities = sorted({m.strip().upper() for m in modalities if m.strip()})
    on = _day(at)
    if isinstance(radiologists, QuerySet):
        queryset = radiologists
    else:
        ids = [r.pk if isinstance(r, RadiologistProfile) else int(r) for r in radiologists]
        queryset = RadiologistProfile.objects.filter(pk__in=ids)
    # Only the columns the rule reads: parsing the unread timestamps was most of the rule's time at
    # 10,000 radiologists (bench/marketplace_matching.py).
    prefetches = [
        Prefetch("licenses", to_attr="eligibility_licenses",
                 queryset=License.objects.filter(country=country, region=region, status__in=COUNTED)
                 .only("radiologist_id", "issued_on", "expires_on")),
        Prefetch("malpractice_policies", to_attr="eligibility_insurance",
                 queryset=MalpracticeInsurance.objects.filter(status__in=COUNTED)
                 .only("radiologist_id", "effective_on", "expires_on", "coverage_jurisdictions")),
    ]
    if MAMMOGRAPHY in modalities:
        prefetches.append(Prefetch("mqsa_qualifications", to_attr="eligibility_mqsa",
                                   queryset=MqsaQualification.objects.filter(status__in=COUNTED).only(
                                       "radiologist_id", "initial_qualified_on", "expires_on",
                                       "exams_last_24_months", "cme_hours_last_36_months")))
    if center is not None and center.requires_privileges:
        prefetches.append(Prefetch("privileges", to_attr="eligibility_privileges",
                                   queryset=FacilityPrivilege.objects.filter(center=center).only(
                                       "radiologist_id", "status", "granted_on", "expires_on")))
    profiles = list(queryset.select_related("user").prefetch_related(*prefetches))
    jurisdiction = f"{country}-{region}" if region else country
    return {
        profile.pk: Eligibility(radiologist=profile, reasons=_reasons(
            profile, jurisdiction=jurisdiction, modalities=modalities, subspecialty=subspecialty, center=center,
            on=on))
        for profile in profiles
    }


def may_be_eligible(radiologists: QuerySet[RadiologistProfile], *, jurisdiction: str,
                    at: datetime | date) -> QuerySet[RadiologistProfile]:
    """``radiologists`` narrowed in SQL to those the rule could still find eligible: an active account and a
    counted license of ``jurisdiction`` whose dates cover the day. Everyone dropped here would get a reason
    from ``eligibility_bulk`` ("account inactive", "no verified license", "license … expired / not valid
    until"); everyone kept still goes through the whole rule."""
    country, region = parse_jurisdiction(jurisdiction)
    on = _day(at)
    licensed = License.objects.filter(
        radiologist=OuterRef("pk"), country=country, region=region, status__in=COUNTED, expires_on__gte=on,
    ).filter(Q(issued_on__isnull=True) | Q(issued_on__lte=on))
    return radiologists.filter(Exists(licensed), user__is_active=True)


def eligible(radiologist: RadiologistProfile, *, jurisdiction: str, modalities: Iterable[str] = (),
             subspecialty: str | None = None, center=None, at: datetime | date) -> Eligibility:
    """Whether one radiologist may read, with every failing reason."""
    result = eligibility_bulk([radiologist], jurisdiction=jurisdiction, modalities=modalities,
                              subspecialty=subspecialty, center=center, at=at)
    return result[radiologist.pk]
