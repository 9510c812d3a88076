"""The eligibility rule as a center would state it (issue 22): whose privileges count, which items count,
renewed items beside lapsed ones, deactivated accounts, and the bulk form answering only for whom it was asked."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from accounts import policy
from accounts.credentials import services
from accounts.credentials.eligibility import Eligibility, eligibility_bulk, may_be_eligible
from accounts.models import (
    License,
    MalpracticeInsurance,
    Membership,
    MqsaQualification,
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

LAST_YEAR = TODAY - timedelta(days=365)


@pytest.fixture
def ready(cast):
    """The cast's radiologist, fully credentialed for US-TX CT/MR/MG (verified license, insurance, MQSA)."""
    profile = profile_for(cast.radiologist, modalities=["CT", "MR", "MG"])
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(), verify_by=cast.platform_staff)
    add(cast.radiologist, "mqsa", mqsa_data(), verify_by=cast.platform_staff)
    return profile


def _require_privileges(cast, center):
    admin = cast.center_admin if center == cast.center else cast.other_admin
    services.center_set_requires_privileges(actor=policy.actor_for_user(admin), center=center, required=True)
    center.refresh_from_db()
    return policy.actor_for_user(admin)


def test_privileges_at_another_center_do_not_satisfy_a_center_requiring_its_own(ready, cast):
    other_admin = _require_privileges(cast, cast.other_center)
    services.privilege_grant(actor=other_admin, center=cast.other_center, radiologist=ready)
    _require_privileges(cast, cast.center)
    assert reasons(ready, center=cast.other_center) == []
    assert reasons(ready, center=cast.center) == ["no privileges at Lakeside Imaging"]


@pytest.mark.parametrize("decision", ["pending", "rejected"])
def test_malpractice_insurance_counts_only_once_verified(cast, decision):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    item = add(cast.radiologist, "insurance", insurance_data())
    if decision == "rejected":
        services.credential_reject(actor=policy.actor_for_user(cast.platform_staff), item=item, reason="lapsed")
    assert reasons(profile) == ["no verified malpractice coverage"]


@pytest.mark.parametrize("decision", ["pending", "rejected"])
def test_an_mqsa_qualification_counts_only_once_verified(cast, decision):
    profile = profile_for(cast.radiologist, modalities=["MG"])
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(), verify_by=cast.platform_staff)
    item = add(cast.radiologist, "mqsa", mqsa_data())
    if decision == "rejected":
        services.credential_reject(actor=policy.actor_for_user(cast.platform_staff), item=item, reason="no proof")
    assert reasons(profile, modalities=["MG"]) == ["no MQSA qualification"]


def test_a_deactivated_radiologist_is_not_eligible(ready, cast):
    assert reasons(ready) == []
    User.objects.filter(pk=cast.radiologist.pk).update(is_active=False)
    assert reasons(RadiologistProfile.objects.get(pk=ready.pk)) == ["account inactive"]


def _lapsed(model, profile, **fields):
    return model.objects.create(radiologist=profile, status=VerificationStatus.EXPIRED, **fields)


def test_a_renewed_license_beside_a_lapsed_one_is_enough(ready):
    _lapsed(License, ready, country="US", region="TX", number="TX-OLD", issued_on=date(2010, 1, 1),
            expires_on=LAST_YEAR)
    assert License.objects.filter(radiologist=ready, region="TX").count() == 2
    assert reasons(ready) == []


def test_only_lapsed_licenses_give_the_latest_expiry(cast):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "insurance", insurance_data(), verify_by=cast.platform_staff)
    for number, expiry in (("TX-1", LAST_YEAR), ("TX-2", LAST_YEAR + timedelta(days=30))):
        _lapsed(License, profile, country="US", region="TX", number=number, issued_on=date(2010, 1, 1),
                expires_on=expiry)
    assert reasons(profile) == [f"license US-TX expired {(LAST_YEAR + timedelta(days=30)).isoformat()}"]


def test_one_policy_covering_the_state_is_enough_beside_one_that_does_not(ready, cast):
    add(cast.radiologist, "insurance", insurance_data(jurisdictions=["US-FL"]), verify_by=cast.platform_staff)
    MalpracticeInsurance.objects.filter(radiologist=ready, coverage_jurisdictions=["US"]).update(
        coverage_jurisdictions=["US-TX"])
    assert reasons(ready) == []
    assert reasons(ready, jurisdiction="US-FL") == ["no verified license for US-FL"]


def test_an_expired_policy_covering_the_state_does_not_count_beside_a_current_one_that_does_not(cast):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "license", license_data("TX"), verify_by=cast.platform_staff)
    add(cast.radiologist, "insurance", insurance_data(jurisdictions=["US-FL"]), verify_by=cast.platform_staff)
    _lapsed(MalpracticeInsurance, profile, carrier="Old", policy_number="OLD", per_claim_limit=1, aggregate_limit=1,
            coverage_jurisdictions=["US-TX"], effective_on=date(2015, 1, 1), expires_on=LAST_YEAR)
    assert reasons(profile) == ["malpractice coverage does not include US-TX"]


def test_one_current_mqsa_qualification_meeting_experience_is_enough_beside_one_that_does_not(ready, cast):
    item = MqsaQualification.objects.get(radiologist=ready)
    MqsaQualification.objects.create(
        radiologist=ready, status=VerificationStatus.VERIFIED, initial_qualified_on=date(2012, 6, 1),
        exams_last_24_months=10, cme_hours_last_36_months=1, attested_on=item.attested_on, expires_on=item.expires_on)
    assert reasons(ready, modalities=["MG"]) == []
    MqsaQualification.objects.filter(pk=item.pk).update(exams_last_24_months=10)
    assert reasons(ready, modalities=["MG"]) == [
        "MQSA continuing experience not met (960 exams in 24 months and 15 CME hours in 36 months)"]


def _second_radiologist(cast) -> RadiologistProfile:
    other = Membership.objects.create(user=User.objects.create(email="second.rad@example.test",
                                                               kind=User.Kind.PROFESSIONAL),
                                      organization=cast.group, roles=["radiologist"]).user
    return profile_for(other)


def test_the_bulk_form_answers_for_exactly_the_radiologists_asked_about(ready, cast):
    other = _second_radiologist(cast)
    for asked in ([ready], [ready.pk], RadiologistProfile.objects.filter(pk=ready.pk)):
        result = eligibility_bulk(asked, jurisdiction="US-TX", modalities=["CT"], at=NOW)
        assert set(result) == {ready.pk}
        assert result[ready.pk].radiologist.pk == ready.pk
    both = eligibility_bulk([ready, other], jurisdiction="US-TX", at=NOW)
    assert set(both) == {ready.pk, other.pk}
    assert both[ready.pk].eligible
    assert not both[other.pk].eligible
    assert bool(both[ready.pk])
    assert not bool(both[other.pk])


def test_may_be_eligible_keeps_exactly_the_active_with_a_license_covering_the_day(ready, cast):
    other = _second_radiologist(cast)
    everyone = RadiologistProfile.objects.filter(pk__in=[ready.pk, other.pk])

    def kept(**kwargs):
        return set(may_be_eligible(everyone, **{"jurisdiction": "US-TX", "at": NOW, **kwargs}).values_list(
            "pk", flat=True))

    assert kept() == {ready.pk}
    assert kept(jurisdiction="US-FL") == set()
    add(other.user, "license", license_data("TX"))  # pending: does not count
    assert kept() == {ready.pk}
    expiry = License.objects.get(radiologist=ready, region="TX").expires_on
    assert kept(at=expiry) == {ready.pk}
    assert kept(at=expiry + timedelta(days=1)) == set()
    License.objects.filter(radiologist=ready).update(issued_on=TODAY + timedelta(days=2))
    assert kept() == set()
    assert kept(at=TODAY + timedelta(days=2)) == {ready.pk}
    License.objects.filter(radiologist=ready).update(issued_on=None)
    assert kept() == {ready.pk}
    User.objects.filter(pk=cast.radiologist.pk).update(is_active=False)
    assert kept() == set()


def test_an_answer_without_reasons_is_eligible(ready):
    assert Eligibility(radiologist=ready).eligible
    assert Eligibility(radiologist=ready).reasons == []
    assert not Eligibility(radiologist=ready, reasons=["account inactive"])


def test_a_license_not_yet_valid_is_named_by_its_earliest_start_even_beside_a_lapsed_one(cast):
    profile = profile_for(cast.radiologist)
    add(cast.radiologist, "insurance", insurance_data(), verify_by=cast.platform_staff)
    _lapsed(License, profile, country="US", region="TX", number="TX-OLD", issued_on=None, expires_on=LAST_YEAR)
    for number, starts in (("TX-LATER", 40), ("TX-SOON", 10)):
        License.objects.create(radiologist=profile, status=VerificationStatus.VERIFIED, country="US", region="TX",
                               number=number, issued_on=TODAY + timedelta(days=starts),
                               expires_on=TODAY + timedelta(days=400))
    assert reasons(profile) == [f"license US-TX not valid until {(TODAY + timedelta(days=10)).isoformat()}"]
