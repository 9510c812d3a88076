"""A reading group's own quality assurance (issue 16): its QA lead sends members' reports for overread, its own
peer-review programme samples them, and the group — not the center — pays for both."""

from __future__ import annotations

import random

import pytest
from django.urls import reverse

from accounts.models import Membership
from billing.models import LedgerAccount, Posting
from core.errors import ApplicationError
from marketplace.models import Kind, Offer, ReadRequest
from reporting.quality import overreads, sampling
from reporting.quality_models import QualitySettings
from reporting.seed_templates import OVERREAD_AGREEMENT, RADPEER_SCORE
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory
from tests.marketplace.helpers import actor
from tests.reporting.quality_helpers import claim, outside_reader, signed_primary, write_and_sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def group_admin(cast):
    admin = MembershipFactory(user__email="qa-lead@example.test", organization=cast.group, roles=["admin"]).user
    enroll_totp(admin)  # an admin touches patient data: MFA
    return admin


def _receivable(organization) -> int:
    """What the ledger says the organization owes (its receivable account's balance)."""
    return sum(Posting.objects.filter(account__organization=organization,
                                      account__purpose=LedgerAccount.Purpose.CENTER_RECEIVABLE)
               .values_list("amount", flat=True))


def test_the_group_qa_lead_sends_a_members_report_for_overread_and_the_group_pays(cast, group_admin, login):
    outsider = outside_reader(name="Dr Outside Group")
    colleague = outside_reader(group=cast.group)
    original = signed_primary(cast)
    client = login(group_admin)
    page = client.get(reverse("group_signed_reports")).content.decode()
    assert str(original.public_id) in page
    response = client.post(reverse("group_signed_reports"), {"report": str(original.public_id)})
    assert response.status_code == 302
    overread = ReadRequest.objects.get(kind=Kind.OVERREAD, original_request=original.read_request)
    assert overread.payer == cast.group
    assert overread.center == cast.center
    offered = set(Offer.objects.filter(read_request=overread).values_list("radiologist", flat=True))
    assert outsider.pk in offered
    assert not offered & {colleague.pk, original.radiologist_id}
    center_owes = _receivable(cast.center)
    write_and_sign(outsider.user, claim(outsider.user, overread), fields={OVERREAD_AGREEMENT: "agree"})
    assert _receivable(cast.group) == overread.quoted_cents  # the group is charged the overread
    assert _receivable(cast.center) == center_owes  # and the center nothing more
    assert "Overread requested" in client.get(reverse("group_signed_reports")).content.decode()


def test_a_named_qa_radiologist_of_the_group_may_too_and_nobody_else(cast, group_admin):
    original = signed_primary(cast)
    qa = outside_reader(group=cast.group, name="Dr Group QA")
    for someone in (qa.user, cast.center_admin, cast.radiologist):  # not named yet; not the group's
        with pytest.raises(ApplicationError) as refused:
            overreads.overread_order_by_group(actor=actor(someone), report=original)
        assert refused.value.status_code == 404
    QualitySettings.objects.create(organization=cast.group, review_basis_points=0).qa_radiologists.add(qa)
    overread = overreads.overread_order_by_group(actor=actor(qa.user), report=original)
    assert overread.original_request == original.read_request


def test_a_report_of_someone_who_left_the_group_is_not_the_groups_to_send(cast, group_admin):
    read = signed_primary(cast)
    Membership.objects.filter(user=cast.radiologist, organization=cast.group).update(is_active=False)
    with pytest.raises(ApplicationError) as refused:
        overreads.overread_order_by_group(actor=actor(group_admin), report=read)
    assert refused.value.status_code == 404


def test_a_groups_own_programme_samples_its_readers_and_pays_for_the_review(cast):
    QualitySettings.objects.create(organization=cast.center, review_basis_points=0)  # the center samples nothing
    QualitySettings.objects.create(organization=cast.group, review_basis_points=10_000)
    reviewer = outside_reader(name="Dr Reviewer")
    original = signed_primary(cast)
    (review,) = sampling.sample_signed_reports(rng=random.Random(5))
    assert (review.programme, review.read_request.payer) == (cast.group, cast.group)
    write_and_sign(reviewer.user, claim(reviewer.user, review.read_request), fields={RADPEER_SCORE: "1"})
    assert _receivable(cast.group) == review.read_request.quoted_cents
    assert original.radiologist == review.reader
