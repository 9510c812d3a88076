"""Platform people act by their role in the platform organization, not by being staff (issue 20 item 3).

Operations (the admin role) verify credentials and break the glass; platform finance sees organizations, money
and the audit log, never a patient's images: not by the pages, not by the services behind them, not by the API.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import policy
from accounts.credentials import policy as credential_policy
from core.errors import NotFound
from studies import break_glass
from studies.models import StudyAccessGrant
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory
from tests.test_access_matrix import ingested_instance

REASON = "STAT head CT stuck without an assignee, the center called"


@pytest.fixture
def platform_finance(cast):
    """Like finance@readroom.demo: the finance role in the platform organization, staff flag and all."""
    user = MembershipFactory(
        user__email="pfinance@example.test", user__is_staff=True, organization=cast.platform, roles=["finance"]
    ).user
    enroll_totp(user)
    return user


def test_platform_roles_are_told_apart(cast, platform_finance):
    operations, finance = policy.actor_for_user(cast.platform_staff), policy.actor_for_user(platform_finance)
    assert (operations.is_platform_operations, operations.is_platform_finance) == (True, False)
    assert (finance.is_platform_operations, finance.is_platform_finance) == (False, True)
    assert finance.is_platform_staff  # still a platform person: MFA applies
    assert policy.requires_mfa(finance)
    center_admin = policy.actor_for_user(cast.center_admin)
    assert not center_admin.is_platform_operations  # an admin elsewhere is no platform operator


def test_a_platform_member_without_a_role_is_granted_nothing(cast):
    bare = MembershipFactory(user__email="bare@example.test", organization=cast.platform, roles=[]).user
    actor = policy.actor_for_user(bare)
    assert not policy.can_view_audit_log(actor)
    assert not policy.can_view_organization(actor, cast.center)
    assert not break_glass.can_break_glass(actor)
    assert not credential_policy.is_verifier(actor)


def test_platform_finance_cannot_break_the_glass_by_page_or_service(cast, platform_finance, login):
    study = ingested_instance(cast.center, 3).study
    client = login(platform_finance)
    assert client.get(reverse("study_break_glass")).status_code == 404
    response = client.post(
        reverse("study_break_glass"),
        {"organization": cast.center.public_id, "study": study.study_instance_uid, "reason": REASON},
    )
    assert response.status_code == 404
    with pytest.raises(NotFound):
        break_glass.break_glass_start(
            actor=policy.actor_for_user(platform_finance),
            organization=cast.center,
            study=study.study_instance_uid,
            reason=REASON,
        )
    assert not StudyAccessGrant.objects.filter(user=platform_finance).exists()
    # ... so the study stays out of reach: its page, the viewer's DICOMweb and its thumbnail are 404.
    series = study.series.first()
    assert client.get(reverse("study_detail", kwargs={"public_id": study.public_id})).status_code == 404
    assert (
        client.get(reverse("dicomweb_study_metadata", kwargs={"study_uid": study.study_instance_uid})).status_code
        == 404
    )
    assert (
        client.get(
            reverse(
                "dicomweb_series_thumbnail",
                kwargs={"study_uid": study.study_instance_uid, "series_uid": series.series_instance_uid},
            )
        ).status_code
        == 404
    )


def test_operations_break_the_glass(cast):
    study = ingested_instance(cast.center, 4).study
    grant = break_glass.break_glass_start(
        actor=policy.actor_for_user(cast.platform_staff),
        organization=cast.center,
        study=study.study_instance_uid,
        reason=REASON,
    )
    assert (grant.user, grant.study, grant.kind) == (cast.platform_staff, study, StudyAccessGrant.Kind.EMERGENCY)


def test_platform_finance_cannot_open_the_verification_forms(cast, platform_finance, login):
    from tests.accounts.credentials_fixtures import matrix_object

    license_id = matrix_object({"center": cast.center}, "license")
    review = reverse("verification_review", kwargs={"kind": "license", "public_id": license_id})
    finance = login(platform_finance)
    assert finance.get(reverse("verification_queue")).status_code == 404
    assert finance.get(review).status_code == 404
    assert (
        finance.post(review, {"decision": "verified", "method": "primary_source", "reference": "TX-1"}).status_code
        == 404
    )
    api = login(platform_finance, api=True)
    assert api.get(reverse("api_verification_queue")).status_code == 404
    decision = reverse("api_credential_decision", kwargs={"kind": "license", "public_id": license_id})
    assert (
        api.post(
            decision, {"decision": "verified", "method": "primary_source", "reference": "TX-1"}, format="json"
        ).status_code
        == 404
    )
    assert login(cast.platform_staff).get(review).status_code == 200  # operations do verify


def test_platform_finance_reads_the_audit_log_but_not_the_admin_site(cast, platform_finance, login):
    client = login(platform_finance)
    assert client.get(reverse("audit_log")).status_code == 200
    assert client.get(reverse("admin:index")).status_code != 200
    assert not policy.can_use_admin_site(policy.actor_for_user(platform_finance))
    page = client.get(reverse("dashboard")).content.decode()
    assert reverse("verification_queue") not in page
    assert reverse("study_break_glass") not in page
    assert reverse("admin:index") not in page
