"""The demo world's quality (issue 16, item 4): a significant overread with its addendum and answer, a two-level
read signed at both levels, blind reviews queued for a demo radiologist, a 2b waiting for the QA radiologist,
six months of history with an outlier; all found again by a second ``load_demo``, which creates nothing."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts import policy
from accounts.models import Membership, RadiologistProfile
from marketplace.models import Kind, Offer, ReaderQuality, ReadRequest
from reporting.demo_quality import ARBITRATED, OVERREAD_ORIGINAL, QUEUED_REVIEWS, TWO_LEVEL
from reporting.demo_quality_history import KEY, OUTLIER, READERS
from reporting.models import Addendum, Report
from reporting.quality import selectors as quality
from reporting.quality import stats
from reporting.quality_models import OverreadReply, PeerReview, QualitySettings, SamplingCursor
from tests.reporting.test_demo import demo_output, load_demo  # noqa: F401 - the fixture loads the demo world


def demo_read(key: str) -> ReadRequest:
    return ReadRequest.objects.select_related("assignee__user", "center").get(idempotency_key=f"demo:{key}")


def reader(last_name: str) -> RadiologistProfile:
    return RadiologistProfile.objects.select_related("user").get(user__email=f"dr.{last_name}@radiologists.demo")


def groups_of(profile: RadiologistProfile) -> set[int]:
    return set(Membership.objects.filter(user=profile.user, is_active=True).values_list("organization_id", flat=True))


def test_the_quality_stories_are_there(demo_output):  # noqa: F811
    # 1. A significant overread by someone outside the original reader's group, the addendum it caused, the answer.
    original = Report.objects.get(read_request=demo_read(OVERREAD_ORIGINAL.key))
    reply = OverreadReply.objects.select_related("report__template", "read_request").get(original_report=original)
    assert (reply.agreement, reply.level, reply.report.template.name) == ("significant", 1, "Overread")
    assert reply.read_request.center.slug == "lakeside"
    assert not groups_of(reply.report.radiologist) & groups_of(original.radiologist)
    assert reply.addendum == Addendum.objects.get(report=original)
    assert reply.answered_by == original.radiologist.user
    assert "missed the nodule" in reply.answer

    # 2. An urgent two-level read: level 1 and its second level signed, a chain of two on the request page.
    first = demo_read(TWO_LEVEL.key)
    assert (first.levels, first.priority, first.status) == (2, "urgent", "reported")
    steps = quality.chain_of(first)
    assert [(s.level, s.report.status) for s in steps] == [(1, "final"), (2, "final")]
    assert steps[1].reply.level == 2
    assert steps[1].reply.answered_at is None  # left for the original reader to answer (the browser journey)

    # 3. Blind reviews offered to one demo radiologist, never the reader's group, their reports hidden.
    whitfield = reader("whitfield")
    queued = PeerReview.objects.filter(status=PeerReview.Status.REQUESTED,
                                       original_report__read_request__idempotency_key__in=[
                                           f"demo:{spec.key}" for spec in QUEUED_REVIEWS])
    assert queued.count() == len(QUEUED_REVIEWS) == 3
    offers = Offer.objects.filter(read_request__peer_review__in=queued, radiologist=whitfield,
                                  status=Offer.Status.OPEN).select_related("grant")
    assert offers.count() == 3
    assert all(offer.grant.hide_reports for offer in offers)
    nakamura = reader("nakamura")
    assert not Offer.objects.filter(read_request__peer_review__in=queued,
                                    radiologist__user__memberships__organization__in=groups_of(nakamura)).exists()

    # 4. A 2b in arbitration, in the queue of the QA radiologist Lakeside named.
    kowalski = reader("kowalski")
    lakeside = first.center
    assert QualitySettings.objects.get(organization=lakeside).qa_radiologists.filter(pk=kowalski.pk).exists()
    pending = PeerReview.objects.get(original_report__read_request__idempotency_key=f"demo:{ARBITRATED.key}")
    assert (pending.status, pending.score, pending.final_score) == ("arbitration", "2b", "")
    assert list(quality.arbitration_queue(policy.actor_for_user(kowalski.user))) == [pending]
    assert "scored 2b by dr.whitfield@radiologists.demo, in arbitration" in demo_output


def test_six_months_of_history_draw_the_charts_and_make_one_outlier(demo_output):  # noqa: F811
    end = timezone.now()
    start = end - timedelta(days=190)
    overall = {row.reader_name: row for row in stats.reader_stats(start=start, end=end) if row.is_overall}
    for last_name in READERS:
        row = overall[reader(last_name).name]
        assert row.reads >= 30, last_name
        assert row.reviews >= stats.DEFAULT_MIN_REVIEWS, last_name
        assert row.median_turnaround_minutes is not None
        assert 0.5 < row.agreement_rate < 1  # mostly 1, some discrepancies
        assert 0.5 < row.on_time_rate <= 1
    months = stats.monthly_trend(start=start, end=end)
    assert sum(1 for point in months if point.reads and point.reviews) >= 5
    found = stats.outliers(start=start, end=end)
    assert [row.reader_name for row in found] == [reader(OUTLIER).name]
    # The pages' default period (the last 90 days) shows the outlier too: enough reviews in it for everyone.
    recent = end - timedelta(days=90)
    assert [row.reader_name for row in stats.outliers(start=recent, end=end)] == [reader(OUTLIER).name]
    assert all(row.reviews >= stats.DEFAULT_MIN_REVIEWS
               for row in stats.reader_stats(start=recent, end=end) if row.is_overall and row.reads)
    # The ranking sees it: the quality row of every history reader was recounted.
    quality_rows = {q.radiologist.user.email: q for q in ReaderQuality.objects.select_related("radiologist__user")}
    outlier = quality_rows[f"dr.{OUTLIER}@radiologists.demo"]
    assert outlier.significant / outlier.reviews > 0.15
    assert all(quality_rows[f"dr.{name}@radiologists.demo"].reviews >= 10 for name in READERS)
    # History is marked, and the sampling beat will never consider its reports.
    historic = ReadRequest.objects.filter(idempotency_key__startswith=KEY)
    assert historic.filter(kind=Kind.PRIMARY).count() > 300
    assert historic.filter(kind=Kind.PEER_REVIEW).count() == PeerReview.objects.filter(
        read_request__idempotency_key__startswith=KEY).count()
    newest = Report.objects.filter(read_request__idempotency_key__startswith=KEY).order_by("-pk").first()
    assert SamplingCursor.objects.get().last_report_id >= newest.pk
    # It reads only the demo's archive: the CTs the overflow and RIS demos add stay for them (Bayview's waiting
    # CTs are the backlog rule's; a history read on one would hide it from the rule).
    added = historic.filter(study__accession_number__regex=r"(OVF|RIS)\d+$")
    assert not added.exists(), list(added.values_list("study__accession_number", flat=True))


def test_a_second_load_creates_nothing(demo_output):  # noqa: F811
    def snapshot():
        return (ReadRequest.objects.count(), Report.objects.count(), Addendum.objects.count(),
                sorted(PeerReview.objects.values_list("pk", "status", "final_score")),
                sorted(OverreadReply.objects.values_list("pk", "answered_at", "addendum_id")),
                sorted(ReaderQuality.objects.values_list("radiologist_id", "reviews", "significant", "updated_at")),
                Offer.objects.count(), SamplingCursor.objects.get().last_report_id)

    before = snapshot()
    output = load_demo()
    assert snapshot() == before
    assert "Demo world ready: 0 created, 0 updated" in output
