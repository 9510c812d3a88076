"""THE eligibility rule: may this radiologist read this study for this center at this moment?

Only items that were verified count, and only while their dates cover the moment asked about, so
an item stops counting the moment it expires even if no task has marked it expired yet. Every
failing rule adds a reason a center can read; eligible means no reason at all.

``EligibilityQuestion`` is the rule for one question (jurisdiction, modalities, subspecialty, center,
day) asked of many radiologists: it reads their counted credentials as plain rows (one query per
kind that matters, whatever the number of radiologists) and gives each one's reasons from plain
values, so a caller that already holds the profile columns (matching) builds no model instance.
``eligibility_bulk`` is the same answer with the profiles loaded; ``eligible`` is the one-radiologist form.
``may_be_eligible`` / ``licensed_on`` are the rule's cheap necessary part in SQL (an active account and a
counted license covering the day), for callers that only want the eligible and not every reason for
everyone else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from accounts.credentials.models import (
    CredentialItem,
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


# The credential rows the rule reads, as plain tuples: building thousands of model instances was most of
# matching's time at 10,000 radiologists (bench/marketplace_matching.py). Each borrows its model's own
# date and coverage methods, so there is one definition of "covers the day".

class LicenseRow(NamedTuple):
    issued_on: date | None
    expires_on: date

    @property
    def valid_from(self) -> date | None:
        return self.issued_on

    covers = CredentialItem.covers


class InsuranceRow(NamedTuple):
    effective_on: date
    expires_on: date
    coverage_jurisdictions: frozenset[str]

    @property
    def valid_from(self) -> date | None:
        return self.effective_on

    covers = CredentialItem.covers
    covers_jurisdiction = MalpracticeInsurance.covers_jurisdiction


class MqsaRow(NamedTuple):
    initial_qualified_on: date
    expires_on: date | None
    exams_last_24_months: int
    cme_hours_last_36_months: Decimal
    EXAMS_REQUIRED = MqsaQualification.EXAMS_REQUIRED
    CME_HOURS_REQUIRED = MqsaQualification.CME_HOURS_REQUIRED

    @property
    def valid_from(self) -> date | None:
        return self.initial_qualified_on

    covers = CredentialItem.covers
    meets_continuing_experience = MqsaQualification.meets_continuing_experience


class PrivilegeRow(NamedTuple):
    status: str
    granted_on: date
    expires_on: date | None
    Status = FacilityPrivilege.Status

    covers = FacilityPrivilege.covers


@dataclass(frozen=True)
class Credentials:
    """Counted credentials of a set of radiologists, by profile id (only the kinds the question needs).
    ``licenses`` is None when the caller's pool holds only radiologists with a counted license covering the
    day (narrowed by ``licensed_on``): the rule's license part is then known to pass."""

    licenses: dict[int, list[LicenseRow]] | None
    insurance: dict[int, list[InsuranceRow]]
    mqsa: dict[int, list[MqsaRow]]
    privileges: dict[int, list[PrivilegeRow]]


@lru_cache(maxsize=4096)
def json_values(text: str | None) -> frozenset[str]:
    """A JSON list of strings read as text (``Cast(field, TextField())``), decoded once per distinct value:
    thousands of rows share a few dozen lists, and Django decoding each row's JSON was a fifth of matching's
    time at 10,000 radiologists. Shared between rows, hence immutable."""
    return frozenset(json.loads(text) or ()) if text else frozenset()


def as_text(field_name: str) -> Cast:
    """A JSON column selected as its text, for ``json_values``."""
    return Cast(field_name, output_field=TextField())


def by_radiologist(queryset: QuerySet, row_type) -> dict[int, list]:
    """``(radiologist_id, *row)`` tuples grouped by radiologist, each row as ``row_type``."""
    grouped: dict[int, list] = {}
    make = row_type._make
    for radiologist_id, *values in queryset.order_by().values_list("radiologist_id", *row_type._fields):
        grouped.setdefault(radiologist_id, []).append(make(values))
    return grouped


def insurance_by_radiologist(queryset: QuerySet) -> dict[int, list[InsuranceRow]]:
    grouped: dict[int, list] = {}
    for radiologist_id, effective_on, expires_on, coverage in queryset.order_by().values_list(
            "radiologist_id", "effective_on", "expires_on", as_text("coverage_jurisdictions")):
        grouped.setdefault(radiologist_id, []).append(InsuranceRow(effective_on, expires_on, json_values(coverage)))
    return grouped


def _day(at: datetime | date) -> date:
    """The calendar day (UTC) an item's dates are compared with."""
    if isinstance(at, datetime):
        return at.astimezone(UTC).date() if at.tzinfo else at.date()
    return at


def _latest_expiry(items) -> date | None:
    dates = [i.expires_on for i in items if i.expires_on is not None]
    return max(dates) if dates else None


class EligibilityQuestion:
    """One question of the rule (jurisdiction, modalities, subspecialty, center, day) for many radiologists."""

    def __init__(self, *, jurisdiction: str, modalities: Iterable[str] = (), subspecialty: str | None = None,
                 center=None, at: datetime | date) -> None:
        self.country, self.region = parse_jurisdiction(jurisdiction)
        self.jurisdiction = f"{self.country}-{self.region}" if self.region else self.country
        self.modalities = sorted({m.strip().upper() for m in modalities if m.strip()})
        self.subspecialty = subspecialty
        self.center = center
        self.on = _day(at)
        self.needs_mqsa = MAMMOGRAPHY in self.modalities
        self.needs_privileges = center is not None and center.requires_privileges

    def credentials(self, radiologists: QuerySet | Iterable[int], *, licensed_on_day: bool = False) -> Credentials:
        """The counted credentials of ``radiologists`` (a queryset of profile ids, used as a subquery, or
        ids): licenses of the jurisdiction and malpractice cover, MQSA and the center's privileges when the
        question needs them — one query per kind. ``licensed_on_day``: the caller kept only radiologists
        that ``licensed_on`` returns, so their licenses are not read."""
        ids = radiologists if isinstance(radiologists, QuerySet) else list(radiologists)
        licenses = None if licensed_on_day else by_radiologist(License.objects.filter(
            radiologist_id__in=ids, country=self.country, region=self.region, status__in=COUNTED), LicenseRow)
        insurance = insurance_by_radiologist(
            MalpracticeInsurance.objects.filter(radiologist_id__in=ids, status__in=COUNTED))
        mqsa = by_radiologist(MqsaQualification.objects.filter(
            radiologist_id__in=ids, status__in=COUNTED), MqsaRow) if self.needs_mqsa else {}
        return Credentials(licenses=licenses, insurance=insurance, mqsa=mqsa, privileges=self.privileges(ids))

    def privileges(self, radiologists: QuerySet | list[int]) -> dict[int, list[PrivilegeRow]]:
        """The center's privileges of ``radiologists`` when it requires them (one query), else none read."""
        if not self.needs_privileges:
            return {}
        return by_radiologist(FacilityPrivilege.objects.filter(radiologist_id__in=radiologists, center=self.center),
                              PrivilegeRow)

    def reasons(self, radiologist_id: int, *, is_active: bool, modalities: list[str], subspecialties: list[str],
                credentials: Credentials) -> list[str]:
        """Every reason this radiologist may not read (empty: eligible), from plain values: the account's
        ``is_active``, the profile's ``modalities`` and ``subspecialties`` and their ``credentials``."""
        return _reasons(self, credentials, radiologist_id, is_active=is_active, modalities=modalities,
                        subspecialties=subspecialties)


def _reasons(question: EligibilityQuestion, credentials: Credentials, radiologist_id: int, *, is_active: bool,
             modalities: list[str], subspecialties: list[str]) -> list[str]:
    jurisdiction, on, center = question.jurisdiction, question.on, question.center
    reasons: list[str] = []
    if not is_active:
        reasons.append("account inactive")
    # License of the jurisdiction where the patient was imaged (known to cover the day when not read).
    licenses = credentials.licenses.get(radiologist_id, ()) if credentials.licenses is not None else None
    if licenses is None:
        pass
    elif not licenses:
        reasons.append(f"no verified license for {jurisdiction}")
    elif not any(lic.covers(on) for lic in licenses):
        lapsed = [lic for lic in licenses if lic.expires_on < on]
        if lapsed and len(lapsed) == len(licenses):
            reasons.append(f"license {jurisdiction} expired {_latest_expiry(lapsed).isoformat()}")
        else:
            starts = min(lic.issued_on for lic in licenses if lic.issued_on and lic.issued_on > on)
            reasons.append(f"license {jurisdiction} not valid until {starts.isoformat()}")
    # What they read.
    for modality in question.modalities:
        if not modality_read_by(modality, modalities):
            reasons.append(f"does not read {modality}")
    if question.subspecialty and question.subspecialty not in subspecialties:
        reasons.append(f"no subspecialty {question.subspecialty}")
    # Mammography needs a current MQSA qualification.
    if question.needs_mqsa:
        mqsa = credentials.mqsa.get(radiologist_id, ())
        current = [q for q in mqsa if q.covers(on)]
        if not mqsa:
            reasons.append("no MQSA qualification")
        elif not current:
            reasons.append(f"MQSA qualification expired {_latest_expiry(mqsa).isoformat()}")
        elif not any(q.meets_continuing_experience for q in current):
            reasons.append(f"MQSA continuing experience not met ({MqsaQualification.EXAMS_REQUIRED} exams in 24 "
                           f"months and {MqsaQualification.CME_HOURS_REQUIRED} CME hours in 36 months)")
    # Malpractice cover that includes the jurisdiction.
    policies = credentials.insurance.get(radiologist_id, ())
    if not policies:
        reasons.append("no verified malpractice coverage")
    else:
        current = [p for p in policies if p.covers(on)]
        if not current:
            reasons.append("malpractice coverage expired")
        elif not any(p.covers_jurisdiction(jurisdiction) for p in current):
            reasons.append(f"malpractice coverage does not include {jurisdiction}")
    # Credentialing by proxy: the center may require its own privileges.
    if (question.needs_privileges
            and not any(p.covers(on) for p in credentials.privileges.get(radiologist_id, ()))):
        reasons.append(f"no privileges at {center.name}")
    return reasons


def eligibility_bulk(radiologists: Iterable[RadiologistProfile] | QuerySet[RadiologistProfile], *,
                     jurisdiction: str, modalities: Iterable[str] = (), subspecialty: str | None = None,
                     center=None, at: datetime | date) -> dict[int, Eligibility]:
    """Eligibility of each radiologist (by profile id), in a fixed number of queries.

    ``radiologists`` is a queryset (filtered as the caller likes) or profiles / ids.
    Queries: the profiles with their users, then one per credential kind that matters here.
    """
    question = EligibilityQuestion(jurisdiction=jurisdiction, modalities=modalities, subspecialty=subspecialty,
                                   center=center, at=at)
    if isinstance(radiologists, QuerySet):
        queryset = radiologists
    else:
        ids = [r.pk if isinstance(r, RadiologistProfile) else int(r) for r in radiologists]
        queryset = RadiologistProfile.objects.filter(pk__in=ids)
    profiles = list(queryset.select_related("user"))
    credentials = question.credentials([profile.pk for profile in profiles])
    return {
        profile.pk: Eligibility(radiologist=profile, reasons=question.reasons(
            profile.pk, is_active=profile.user.is_active, modalities=profile.modalities,
            subspecialties=profile.subspecialties, credentials=credentials))
        for profile in profiles
    }


def licensed_on(jurisdiction: str, at: datetime | date) -> QuerySet:
    """The ids (``radiologist_id``) of radiologists with a counted license of ``jurisdiction`` whose dates cover
    the day: a subquery for narrowing a pool (``pk__in=``) and for reading that pool's rows."""
    country, region = parse_jurisdiction(jurisdiction)
    on = _day(at)
    return (License.objects.filter(country=country, region=region, status__in=COUNTED, expires_on__gte=on)
            .filter(Q(issued_on__isnull=True) | Q(issued_on__lte=on)).order_by().values("radiologist_id"))


def may_be_eligible(radiologists: QuerySet[RadiologistProfile], *, jurisdiction: str,
                    at: datetime | date) -> QuerySet[RadiologistProfile]:
    """``radiologists`` narrowed in SQL to those the rule could still find eligible: an active account and a
    counted license of ``jurisdiction`` whose dates cover the day. Everyone dropped here would get a reason
    from ``eligibility_bulk`` ("account inactive", "no verified license", "license … expired / not valid
    until"); everyone kept still goes through the whole rule."""
    return radiologists.filter(pk__in=licensed_on(jurisdiction, at), user__is_active=True)


def eligible(radiologist: RadiologistProfile, *, jurisdiction: str, modalities: Iterable[str] = (),
             subspecialty: str | None = None, center=None, at: datetime | date) -> Eligibility:
    """Whether one radiologist may read, with every failing reason."""
    result = eligibility_bulk([radiologist], jurisdiction=jurisdiction, modalities=modalities,
                              subspecialty=subspecialty, center=center, at=at)
    return result[radiologist.pk]
