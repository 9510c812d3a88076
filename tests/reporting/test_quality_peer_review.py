"""RADPEER peer review (issue 16, item 2): sampling within tolerance and never self-review, the review as an offer
paid at the review rate, scores on the scale, arbitration of 2b and above, what the reader is told, and the reader
quality the marketplace ranks by."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.urls import reverse

from accounts.models import Notification
from billing.models import DEFAULT_REVIEW_PERCENT
from core.errors import ApplicationError
from marketplace.models import Kind, Offer, ReaderQuality, ReadRequest, Status
from reporting.models import Delivery
from reporting.quality import peer_review, sampling
from reporting.quality import selectors as quality
from reporting.quality_models import PeerReview, QualitySettings, SamplingStratum
from reporting.seed_templates import RADPEER_SCORE
from tests.marketplace.helpers import actor
from tests.reporting.quality_helpers import claim, outside_reader, signed_primary, write_and_sign

pytestmark = pytest.mark.django_db


def test_sampling_takes_its_share_of_each_modality_within_one_report_and_is_random():
    rng = random.Random(16)
    taken: Counter = Counter()
    seen: Counter = Counter()
    picks_in_block = set()
    strata = {m: SamplingStratum(organization_id=1, modality=m) for m in ("CT", "MR", "CR", "MG")}
    shares = {"CT": 0.5, "MR": 0.25, "CR": 0.2, "MG": 0.05}  # 10,000 reports, very unequal modalities
    modalities = [m for m, share in shares.items() for _ in range(int(10_000 * share))]
    rng.shuffle(modalities)
    for modality in modalities:
        seen[modality] += 1
        if sampling.take(strata[modality], 250, rng):
            taken[modality] += 1
            if modality == "CT":
                picks_in_block.add((seen[modality] - 1) % 40)
    for modality, count in seen.items():
        expected = count * 250 / 10_000
        assert abs(taken[modality] - expected) <= 1, (modality, taken[modality], expected)
    assert sum(taken.values()) == 250
    assert len(picks_in_block) > 20  # the picked position moves around the block: not every 40th report


def test_a_changed_rate_starts_a_new_block():
    stratum = SamplingStratum(organization_id=1, modality="CT")
    rng = random.Random(1)
    assert sum(sampling.take(stratum, 10_000, rng) for _ in range(5)) == 5  # 100 %: every report
    assert sum(sampling.take(stratum, 5_000, rng) for _ in range(10)) == 5


@pytest.fixture
def all_sampled(cast):
    """The cast's center reviews every signed report (100 %), so that a test's one report is picked."""
    return QualitySettings.objects.create(organization=cast.center, review_basis_points=10_000)


def test_a_sampled_report_becomes_a_review_offered_to_others_never_its_reader_or_group(cast, all_sampled):
    outsider = outside_reader(name="Dr Reviewer")
    colleague = outside_reader(group=cast.group)
    original = signed_primary(cast)
    posted = sampling.sample_signed_reports(rng=random.Random(1))
    assert [r.original_report for r in posted] == [original]
    review = posted[0]
    request = review.read_request
    assert (request.kind, request.original_request, review.reader, review.modality) == (
        Kind.PEER_REVIEW, original.read_request, original.radiologist, "CT")
    offered = set(Offer.objects.filter(read_request=request).values_list("radiologist", flat=True))
    assert outsider.pk in offered
    assert not offered & {colleague.pk, original.radiologist_id}
    # Paid at the review rate: 40 % of the read's price (the price list's review share).
    assert request.quoted_cents == original.read_request.quoted_cents * DEFAULT_REVIEW_PERCENT // 100
    # The review's grants hide the study's signed reports from the reviewer (they name their reader).
    assert Offer.objects.get(read_request=request, radiologist=outsider).grant.hide_reports
    # A second run considers nothing again.
    assert sampling.sample_signed_reports(rng=random.Random(1)) == []


def test_overreads_reviews_and_second_opinions_are_not_sampled(cast, all_sampled):
    outsider = outside_reader(name="Dr Reviewer")
    original = signed_primary(cast)
    (review,) = sampling.sample_signed_reports(rng=random.Random(1))
    write_and_sign(outsider.user, claim(outsider.user, review.read_request), fields={RADPEER_SCORE: "1"})
    assert sampling.sample_signed_reports(rng=random.Random(1)) == []  # the review itself is not reviewed
    assert PeerReview.objects.filter(original_report=original).count() == 1


def _scored(cast, score: str, comment: str = "Concur."):
    reviewer = outside_reader(name="Dr Blind Reviewer")
    original = signed_primary(cast)
    (review,) = sampling.sample_signed_reports(rng=random.Random(3))
    signed = write_and_sign(reviewer.user, claim(reviewer.user, review.read_request), fields={RADPEER_SCORE: score},
                            sections={"impression": comment})
    review.refresh_from_db()
    return review, reviewer, original, signed


def test_a_concurring_review_is_final_at_once_counts_for_the_reader_and_is_never_delivered(
        cast, all_sampled, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        review, reviewer, original, signed = _scored(cast, "1")
    assert (review.status, review.score, review.final_score) == ("final", "1", "1")
    assert signed.template.name == "Peer review (RADPEER)"
    assert not Delivery.objects.filter(report=signed).exists()  # confidential: no PDF, HL7, FHIR, SR
    assert ReadRequest.objects.get(pk=review.read_request_id).status == Status.REPORTED  # and paid
    quality_row = ReaderQuality.objects.get(radiologist=original.radiologist)
    assert (quality_row.reviews, quality_row.concordant, quality_row.significant) == (1, 1, 0)
    told = Notification.objects.get(user=cast.radiologist, title="Peer review result: RADPEER 1")
    assert reviewer.name not in told.title + told.body


def test_2b_goes_to_arbitration_and_a_qa_radiologist_confirms_or_changes_it(cast, all_sampled):
    qa = outside_reader(name="Dr QA Lead")
    all_sampled.qa_radiologists.add(qa)
    review, reviewer, original, _ = _scored(cast, "2b", "Missed a 6 mm nodule.")
    assert review.status == "arbitration"
    assert review.final_score == ""
    assert not ReaderQuality.objects.filter(radiologist=original.radiologist, reviews__gt=0).exists()
    assert Notification.objects.filter(user=qa.user, title="Peer review to arbitrate: score 2b").exists()
    assert list(quality.arbitration_queue(actor(qa.user))) == [review]
    # Neither the reader, nor the reviewer, nor a stranger may arbitrate: the review does not exist for them.
    for someone in (cast.radiologist, reviewer.user, outside_reader().user):
        assert list(quality.arbitration_queue(actor(someone))) == []
        with pytest.raises(ApplicationError) as refused:
            peer_review.peer_review_arbitrate(actor=actor(someone), review=review, score="1", comment="x")
        assert refused.value.status_code == 404
    with pytest.raises(ApplicationError) as off_scale:
        peer_review.peer_review_arbitrate(actor=actor(qa.user), review=review, score="4", comment="")
    assert "score" in off_scale.value.fields
    with pytest.raises(ApplicationError) as unexplained:
        peer_review.peer_review_arbitrate(actor=actor(qa.user), review=review, score="2a", comment=" ")
    assert "comment" in unexplained.value.fields
    peer_review.peer_review_arbitrate(actor=actor(qa.user), review=review, score="2a",
                                      comment="Below the size threshold: unlikely significant.")
    review.refresh_from_db()
    assert (review.status, review.score, review.final_score, review.arbiter) == ("final", "2b", "2a", qa)
    told = Notification.objects.get(user=cast.radiologist, title="Peer review result: RADPEER 2a")
    assert reviewer.name not in told.body
    assert qa.name not in told.body
    with pytest.raises(ApplicationError) as again:
        peer_review.peer_review_arbitrate(actor=actor(qa.user), review=review, score="3b", comment="Changed mind.")
    assert again.value.code == "invalid_transition"  # final is final (the transition table)


def test_the_reviewer_cannot_score_off_the_scale_or_review_their_own_report(cast, all_sampled):
    reviewer = outside_reader(name="Dr Blind Reviewer")
    signed_primary(cast)
    (review,) = sampling.sample_signed_reports(rng=random.Random(3))
    claim(reviewer.user, review.read_request)
    with pytest.raises(ApplicationError) as off_scale:
        write_and_sign(reviewer.user, review.read_request, fields={RADPEER_SCORE: "4"})
    assert f"fields.{RADPEER_SCORE}" in off_scale.value.fields
    # The original reader is never offered it, so cannot claim it.
    assert not Offer.objects.filter(read_request=review.read_request, radiologist__user=cast.radiologist).exists()


def test_an_unread_review_ends_with_its_request(cast, all_sampled):
    signed_primary(cast)
    (review,) = sampling.sample_signed_reports(rng=random.Random(3))
    ReadRequest.objects.filter(pk=review.read_request_id).update(status=Status.EXPIRED)
    assert peer_review.cancel_unread_reviews() == 1
    review.refresh_from_db()
    assert review.status == "cancelled"


def test_the_reader_sees_final_results_without_the_reviewer(cast, all_sampled, login):
    review, reviewer, original, _ = _scored(cast, "1", "Concur, well described.")
    page = login(cast.radiologist).get(reverse("quality_reviews_received")).content.decode()
    assert 'id="received-reviews"' in page
    assert "<strong>1</strong>" in page
    assert reviewer.name not in page
    assert reviewer.user.email not in page


def test_over_10000_signed_reports_the_sampled_share_holds_per_modality_and_nobody_reviews_their_own(cast):
    """The issue's figure through the database: 10,000 signed reports of two readers over four modalities."""
    from django.utils import timezone

    from reporting.models import Report, ReportTemplate
    from tests.marketplace.helpers import ingest_study, make_radiologist

    readers = [make_radiologist(user=cast.radiologist), make_radiologist(name="Dr Second Reader")]
    study = ingest_study(cast.center, modality="CT")
    template = ReportTemplate.objects.filter(owner__isnull=True, name="General radiology").get()
    now = timezone.now()
    shares = {"CT": 5_000, "MR": 2_500, "CR": 2_000, "MG": 500}
    rng = random.Random(10_000)
    modalities = [m for m, n in shares.items() for _ in range(n)]
    rng.shuffle(modalities)
    requests = ReadRequest.objects.bulk_create([
        ReadRequest(center=cast.center, study=study, status=Status.REPORTED, deadline=now, jurisdiction="US-TX",
                    modalities=[m], quoted_cents=1000, assignee=readers[i % 2], reported_at=now)
        for i, m in enumerate(modalities)])
    Report.objects.bulk_create([
        Report(read_request=r, radiologist=r.assignee, template=template, status=Report.Status.FINAL, signed_at=now,
               content_hash="0" * 64, sections={"impression": "Normal."}) for r in requests])
    posted = []
    while batch := sampling.sample_signed_reports(rng=rng, batch=2_000):
        posted += batch
    by_modality = Counter(r.modality for r in posted)
    for modality, count in shares.items():
        assert abs(by_modality[modality] - count * 0.025) <= 1, (modality, by_modality[modality])
    assert 248 <= len(posted) <= 252
    for review in posted:
        assert review.reader_id == review.original_report.radiologist_id
        assert not Offer.objects.filter(read_request=review.read_request, radiologist=review.reader).exists()
    assert SamplingStratum.objects.filter(organization=cast.center).count() == 4
