"""Peer-review quality in the marketplace ranking (issue 16): agreement smoothed toward a prior, weighed after the
on-time rate at half its weight in one rank score, shown with its weights on the center's explain page, and
loaded with the candidates at no extra query."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts.models import FacilityPrivilege
from marketplace.models import Assignment, ReaderQuality, ReadRequest
from marketplace.services.matching import PRIOR_QUALITY, match
from tests.marketplace.helpers import a_monday_ahead, ingest_study, make_radiologist, post

CHICAGO = ZoneInfo("America/Chicago")
AT = a_monday_ahead()  # a Monday morning
DAY = AT.date()


def finished_reads(cast, profile, *, on_time: int, late: int) -> None:
    filler = post(cast.technologist, ingest_study(cast.center, patient=40), publish=False)
    Assignment.objects.bulk_create([Assignment(read_request=filler, radiologist=profile, status="completed",
                                               on_time=i < on_time) for i in range(on_time + late)])


def reviewed(profile, *, reviews: int, concordant: int) -> None:
    ReaderQuality.objects.update_or_create(radiologist=profile,
                                           defaults={"reviews": reviews, "concordant": concordant})


def _reread(read_request: ReadRequest) -> ReadRequest:
    return ReadRequest.objects.select_related("center").get(pk=read_request.pk)


def ranked(read_request: ReadRequest) -> list[int]:
    """The order of the full match, checked against the hot path's (the quality must reach both)."""
    full = [c.radiologist_id for c in match(_reread(read_request), at=AT).candidates]
    assert [c.radiologist_id for c in match(_reread(read_request), at=AT, eligible_only=True).candidates] == full
    return full


@pytest.fixture
def rr(cast, ct_study):
    return post(cast.technologist, ct_study, publish=False, deadline=AT + timedelta(hours=3))


def test_two_otherwise_equal_readers_swap_places_when_ones_quality_drops(cast, rr):
    amy, zoe = make_radiologist(name="Amy First"), make_radiologist(name="Zoe Second")
    for profile in (amy, zoe):
        finished_reads(cast, profile, on_time=9, late=1)
        reviewed(profile, reviews=20, concordant=19)
    assert ranked(rr) == [amy.pk, zoe.pk]  # equal scores: the name decides
    reviewed(amy, reviews=20, concordant=14)
    assert ranked(rr) == [zoe.pk, amy.pk]


def test_a_better_on_time_rate_outranks_a_small_quality_edge_but_not_a_large_one(cast, rr):
    punctual, careful = make_radiologist(name="Amy Punctual"), make_radiologist(name="Zoe Careful")
    finished_reads(cast, punctual, on_time=10, late=0)
    finished_reads(cast, careful, on_time=9, late=1)
    reviewed(punctual, reviews=20, concordant=18)  # quality 0.90
    reviewed(careful, reviews=20, concordant=20)  # quality 0.98
    assert ranked(rr) == [punctual.pk, careful.pk]
    scores = {c.radiologist_id: c.rank_score for c in match(_reread(rr), at=AT).candidates}
    assert scores[punctual.pk] == pytest.approx(2 / 3 * 1.0 + 1 / 3 * 0.90)
    assert scores[careful.pk] == pytest.approx(2 / 3 * 0.9 + 1 / 3 * 0.98)
    reviewed(punctual, reviews=20, concordant=10)  # quality 0.58: a third of the score outweighs 10 % on time
    assert ranked(rr) == [careful.pk, punctual.pk]


def test_few_reviews_move_the_quality_only_a_little(cast, rr):
    unlucky, unreviewed = make_radiologist(name="Amy Unlucky"), make_radiologist(name="Zoe Unreviewed")
    reviewed(unlucky, reviews=1, concordant=0)  # one discordant review: 75 %, not 0 %
    qualities = {c.radiologist_id: c.quality for c in match(_reread(rr), at=AT).candidates}
    assert qualities == {unlucky.pk: pytest.approx(0.75), unreviewed.pk: PRIOR_QUALITY}
    assert ranked(rr) == [unreviewed.pk, unlucky.pk]


def test_explain_page_shows_each_readers_quality_and_the_score_with_its_weights(cast, ct_study, login):
    reviewed_reader = make_radiologist(name="Dr Reviewed")
    make_radiologist(name="Dr Unreviewed")
    finished_reads(cast, reviewed_reader, on_time=19, late=1)
    reviewed(reviewed_reader, reviews=25, concordant=23)
    read_request = post(cast.technologist, ct_study)
    url = reverse("read_request_explain", args=[read_request.public_id])
    response = login(cast.center_admin).get(url)
    assert response.status_code == 200
    rows = response.content.decode().split('id="candidates"')[1].split("</table>")[0]
    first, second = rows.split("Dr Reviewed")[1].split("</tr>")[0], rows.split("Dr Unreviewed")[1].split("</tr>")[0]
    # (23 + 0.9 × 5) / (25 + 5) = 0.92; 2/3 × 0.95 + 1/3 × 0.9167 = 0.94
    assert "peer review 92 % agreement (23 of 25 reviews)" in first
    assert "rank score 0.94 = 2/3 × on time 95 % + 1/3 × quality 92 %" in first
    assert "no peer reviews yet" in second
    assert "rank score 0.90 = 2/3 × on time 90 % (assumed) + 1/3 × quality 90 %" in second
    assert rows.index("Dr Reviewed") < rows.index("Dr Unreviewed")
    assert "2/3 × on-time rate + 1/3 × peer-review quality" in response.content.decode()  # the legend
    why = login(cast.center_admin).get(url, {"radiologist": reviewed_reader.pk}).content.decode()
    assert "peer review 92 % agreement (23 of 25 reviews)" in why.split('id="why"')[1].split("</div>")[0]


@pytest.mark.parametrize(("eligible_only", "queries"), [(True, 8), (False, 7)], ids=["hot-path", "explain"])
def test_quality_loads_with_the_candidates_at_no_extra_query(cast, eligible_only, queries,
                                                             django_assert_num_queries):
    """test_matching_rows' costliest match (a mammogram at a center requiring privileges), with quality rows:
    still 8 queries on the hot path reading its pool afresh (this transaction wrote the pool's tables) and 7 for
    the explanation."""
    cast.center.requires_privileges = True
    cast.center.save(update_fields=["requires_privileges"])
    mammogram = ingest_study(cast.center, modality="MG", patient=4)
    rr = post(cast.technologist, mammogram, publish=False, deadline=AT + timedelta(hours=3))
    readers = [make_radiologist(mqsa=True) for _ in range(6)]
    for n, profile in enumerate(readers):
        FacilityPrivilege.objects.create(radiologist=profile, center=cast.center, granted_on=DAY)
        if n % 2:
            reviewed(profile, reviews=10, concordant=n)
    asked = _reread(rr)
    with django_assert_num_queries(queries):
        result = match(asked, at=AT, eligible_only=eligible_only)
    by_id = {c.radiologist_id: c for c in result.candidates}
    assert [(by_id[p.pk].reviews, by_id[p.pk].concordant) for p in readers] == [
        (0, 0), (10, 1), (0, 0), (10, 3), (0, 0), (10, 5)]
