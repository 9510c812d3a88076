"""The one eligibility rule: reasons for each failing rule, expiry by the clock, and the bulk form's queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import policy
from accounts.credentials import services
from accounts.credentials.eligibility import eligibility_bulk, eligible
from accounts.models import (
    FacilityPrivilege,
    License,
    MalpracticeInsurance,
    Membership,
    RadiologistProfile,
    User,
    VerificationStatus,
)
from tests.accounts.credentials_fixtures import (
    NOW,
    TODAY,
    add,
    insurance_data,
    license_data,
    mqsa_data,
    profile_for,
    reasons,
)


@pytest.fixture
def ready(cast):
    """The cast's radiologist, fully credentialed for US-TX CT/MR (verified license and insurance)."""
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX", expires_on=TODAY + timedelta(days=100)),
        verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(expires_on=TODAY + timedelta(days=200)),
        verify_by=cast.platform_staff)
    return profile


def test_fully_credentialed_radiologist_is_eligible(ready, cast):
    result = eligible(ready, jurisdiction="US-TX", modalities=["CT"], subspecialty="neuro", center=cast.center,
                      at=NOW)
    assert result.eligible
    assert result.reasons == []


def test_no_license_for_the_jurisdiction(ready):
    assert reasons(ready, jurisdiction="US-FL") == ["no verified license for US-FL"]


def test_pending_and_rejected_licenses_do_not_count(ready, cast):
    pending = add(cast.radiologist, "license", license_data("FL"))
    assert reasons(ready, jurisdiction="US-FL") == ["no verified license for US-FL"]
    services.credential_reject(actor=policy.actor_for_user(cast.platform_staff), item=pending,
                               reason="number not found at the board")
    assert reasons(ready, jurisdiction="US-FL") == ["no verified license for US-FL"]


def test_license_expires_by_the_clock_without_any_task(ready):
    license_ = License.objects.get(radiologist=ready, region="TX")
    assert license_.status == VerificationStatus.VERIFIED
    expiry = license_.expires_on
    last_valid_moment = datetime.combine(expiry, datetime.max.time(), tzinfo=UTC)
    assert reasons(ready, at=last_valid_moment) == []
    assert reasons(ready, at=last_valid_moment + timedelta(microseconds=1)) == [
        f"license US-TX expired {expiry.isoformat()}"]
    license_.refresh_from_db()
    assert license_.status == VerificationStatus.VERIFIED  # no task ran; the rule read the date


def test_license_not_yet_issued_does_not_count(ready, cast):
    add(cast.radiologist, "license", license_data("FL", issued_on=TODAY + timedelta(days=10)),
        verify_by=cast.platform_staff)
    assert reasons(ready, jurisdiction="US-FL") == [
        f"license US-FL not valid until {(TODAY + timedelta(days=10)).isoformat()}"]


def test_mammography_needs_an_mqsa_qualification(ready, cast):
    services.radiologist_profile_update(actor=policy.actor_for_user(cast.radiologist),
                                        data={"modalities": ["CT", "MG"]})
    assert reasons(ready, modalities=["MG"]) == ["no MQSA qualification"]
    add(cast.radiologist, "mqsa", mqsa_data(), verify_by=cast.platform_staff)
    assert reasons(ready, modalities=["MG"]) == []
    assert reasons(ready, modalities=["CT"]) == []


def test_mqsa_lapses_when_its_attestation_runs_out(ready, cast):
    services.radiologist_profile_update(actor=policy.actor_for_user(cast.radiologist), data={"modalities": ["MG"]})
    item = add(cast.radiologist, "mqsa", mqsa_data(), verify_by=cast.platform_staff)
    later = datetime.combine(item.expires_on + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert f"MQSA qualification expired {item.expires_on.isoformat()}" in reasons(ready, modalities=["MG"], at=later)


def test_mqsa_with_too_few_exams_is_not_enough(ready, cast):
    services.radiologist_profile_update(actor=policy.actor_for_user(cast.radiologist), data={"modalities": ["MG"]})
    add(cast.radiologist, "mqsa", mqsa_data(exams=500), verify_by=cast.platform_staff)
    assert reasons(ready, modalities=["MG"]) == [
        "MQSA continuing experience not met (960 exams in 24 months and 15 CME hours in 36 months)"]


def test_center_requiring_privileges(ready, cast):
    admin = policy.actor_for_user(cast.center_admin)
    services.center_set_requires_privileges(actor=admin, center=cast.center, required=True)
    cast.center.refresh_from_db()
    assert reasons(ready, center=cast.center) == ["no privileges at Lakeside Imaging"]
    privilege = services.privilege_grant(actor=admin, center=cast.center, radiologist=ready)
    assert reasons(ready, center=cast.center) == []
    services.privilege_transition(actor=admin, privilege=privilege, to=FacilityPrivilege.Status.SUSPENDED,
                                  reason="peer review pending")
    assert reasons(ready, center=cast.center) == ["no privileges at Lakeside Imaging"]


def test_center_not_requiring_privileges_accepts_platform_verification(ready, cast):
    assert not cast.center.requires_privileges
    assert reasons(ready, center=cast.center) == []


def test_malpractice_coverage_expired(ready):
    policy_ = MalpracticeInsurance.objects.get(radiologist=ready)
    later = datetime.combine(policy_.expires_on + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    # The license (100 days) has lapsed too by then; insurance runs 200 days.
    assert "malpractice coverage expired" in reasons(ready, at=later)


def test_malpractice_must_cover_the_jurisdiction(cast):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(jurisdictions=["US-FL"]), verify_by=cast.platform_staff)
    assert reasons(profile) == ["malpractice coverage does not include US-TX"]


def test_no_malpractice_at_all(cast):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    assert reasons(profile) == ["no verified malpractice coverage"]


def test_modality_and_subspecialty_not_offered(ready):
    assert reasons(ready, modalities=["US", "DX"], subspecialty="breast") == [
        "does not read US", "no subspecialty breast"]


def test_every_failing_reason_is_listed_at_once(cast):
    profile = profile_for(cast.radiologist, modalities=["CT"])
    cast.center.requires_privileges = True
    cast.center.save()
    assert reasons(profile, modalities=["MG"], subspecialty="breast", center=cast.center) == [
        "no verified license for US-TX", "does not read MG", "no subspecialty breast", "no MQSA qualification",
        "no verified malpractice coverage", "no privileges at Lakeside Imaging"]


def _make_radiologists(n: int, staff: User) -> list[int]:
    """n radiologists, each with a verified TX license and insurance (rows written in bulk)."""
    users = User.objects.bulk_create([User(email=f"bulk{i}@example.test", kind=User.Kind.PROFESSIONAL)
                                      for i in range(n)])
    users = list(User.objects.filter(email__startswith="bulk"))
    profiles = RadiologistProfile.objects.bulk_create([
        RadiologistProfile(user=u, home_time_zone="America/Chicago", modalities=["CT"], subspecialties=["body"])
        for u in users])
    profiles = list(RadiologistProfile.objects.filter(user__in=users))
    License.objects.bulk_create([
        License(radiologist=p, country="US", region="TX", number=f"TX-{p.pk}", expires_on=TODAY + timedelta(days=9),
                status=VerificationStatus.VERIFIED, verified_by=staff) for p in profiles])
    MalpracticeInsurance.objects.bulk_create([
        MalpracticeInsurance(radiologist=p, carrier="C", policy_number=str(p.pk), per_claim_limit=1,
                             aggregate_limit=1, coverage_jurisdictions=["US"], effective_on=TODAY,
                             expires_on=TODAY + timedelta(days=9), status=VerificationStatus.VERIFIED)
        for p in profiles])
    return [p.pk for p in profiles]


def _queries_for(ids: list[int], center) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as ctx:
        result = eligibility_bulk(RadiologistProfile.objects.filter(pk__in=ids), jurisdiction="US-TX",
                                  modalities=["CT", "MG"], center=center, at=NOW)
    return len(ctx.captured_queries), result


def test_bulk_form_uses_the_same_number_of_queries_for_10_and_1000_radiologists(cast):
    cast.center.requires_privileges = True
    cast.center.save()
    ids = _make_radiologists(1000, cast.platform_staff)
    small, small_result = _queries_for(ids[:10], cast.center)
    large, large_result = _queries_for(ids, cast.center)
    assert small == large <= 5  # profiles+users, licenses, insurance, MQSA, privileges
    assert len(large_result) == 1000
    assert all(r.reasons == ["does not read MG", "no MQSA qualification", "no privileges at Lakeside Imaging"]
               for r in large_result.values())
    assert not any(r.eligible for r in small_result.values())


def test_bulk_form_matches_the_single_form(ready, cast):
    other = Membership.objects.create(user=User.objects.create(email="other.rad@example.test",
                                                               kind=User.Kind.PROFESSIONAL),
                                      organization=cast.group, roles=["radiologist"]).user
    other_profile = profile_for(other)
    results = eligibility_bulk([ready, other_profile], jurisdiction="US-TX", modalities=["CT"], at=NOW)
    assert results[ready.pk].eligible
    assert results[other_profile.pk].reasons == eligible(other_profile, jurisdiction="US-TX", modalities=["CT"],
                                                         at=NOW).reasons
    assert results[other_profile.pk].reasons == ["no verified license for US-TX", "no verified malpractice coverage"]
