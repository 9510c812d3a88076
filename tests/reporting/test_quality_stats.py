"""Quality statistics (issue 16, item 3): figures from a known set equal hand-computed values; the CSV parses
back to them; the selectors' query count does not grow with readers; who sees which page.

The known set (September and October 2026, UTC), built directly with the ORM:

- Ada (the cast's radiologist, in Night Hawk) at Lakeside: CT reads of 30, 60 and 90 minutes (the last one
  late), an MR read of 40 minutes; at Harbor an MR read of 100 minutes (late). Final reviews at Lakeside:
  CT 1, 1, 2a, 2b and MR 1; at Harbor MR 3a. Not counted: a CT read reported at the period's end, a review
  still in arbitration (3b), a cancelled one, a final one just before the period.
- Bea (Night Hawk) at Lakeside: CT reads of 20 and 50 minutes, both on time; final reviews CT 1, 1, 1.
- Cal (independent) at Lakeside: an MR read of 200 minutes (late) reported on Oct 1, 03:00 UTC (still
  September in Chicago); final reviews MR 3b and 1.
- Dora reviews them: her peer-review reads never count as reads, and her name appears on no page.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import RadiologistProfile, User
from marketplace.models import Assignment, Kind, ReadRequest
from reporting.models import Report, ReportTemplate
from reporting.quality import stats
from reporting.quality_models import PeerReview
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory, UserFactory
from tests.marketplace.helpers import ingest_study, make_radiologist

START, END = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
PERIOD = {"start": "2026-09-01", "end": "2026-10-31"}  # the pages' chooser (UTC viewers): the same period


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class World:
    """Builds reads and reviews straight into the tables (what the services would leave behind)."""

    def __init__(self, cast):
        self.cast = cast
        self.studies = {center.pk: ingest_study(center) for center in (cast.center, cast.other_center)}
        self.template = ReportTemplate.objects.create(name="Quality stats test", sections=[])
        self.reviewer = self.reader("Dora Viewmore", group=None)

    def reader(self, name: str, *, group=None, user=None) -> RadiologistProfile:
        profile = make_radiologist(user=user, group=group, name=name)
        profile.display_name = name
        profile.save(update_fields=["display_name"])
        return profile

    def _request(self, center, reader, modality, reported, minutes, *, kind=Kind.PRIMARY) -> ReadRequest:
        return ReadRequest.objects.create(
            center=center, study=self.studies[center.pk], kind=kind, modalities=[modality], jurisdiction="US-TX",
            quoted_cents=1000, status="reported", deadline=reported + timedelta(hours=1), assignee=reader,
            published_at=reported - timedelta(minutes=minutes), reported_at=reported)

    def read(self, center, reader, modality, reported, minutes, *, on_time=True, kind=Kind.PRIMARY) -> ReadRequest:
        request = self._request(center, reader, modality, reported, minutes, kind=kind)
        Assignment.objects.create(read_request=request, radiologist=reader, status="completed", ended_at=reported,
                                  on_time=on_time)
        return request

    def review(self, center, reader, modality, score, final_at, *, status="final") -> PeerReview:
        """A review of one of ``reader``'s reports (its read outside the period: it adds no read)."""
        original = self._request(center, reader, modality, at(6, 1), 30)
        report = Report.objects.create(read_request=original, radiologist=reader, template=self.template)
        review_read = self.read(center, self.reviewer, modality, final_at - timedelta(hours=1), 15,
                                kind=Kind.PEER_REVIEW)
        final = status == "final"
        return PeerReview.objects.create(
            original_report=report, read_request=review_read, programme=center, reader=reader, center=center,
            modality=modality, status=status, score=score, final_score=score if final else "",
            final_at=final_at if final else None)


@pytest.fixture
def world(cast):
    User.objects.filter(pk__in=[u.pk for u in cast.users.values()]).update(time_zone="UTC")  # PERIOD is UTC's
    w = World(cast)
    lakeside, harbor, night_hawk = cast.center, cast.other_center, cast.group
    cast.radiologist.full_name = "Ada Quill"
    cast.radiologist.save(update_fields=["full_name"])
    w.ada = w.reader("Ada Quill", user=cast.radiologist)
    w.bea = w.reader("Bea Brook", group=night_hawk)
    w.cal = w.reader("Cal Crane")
    w.read(lakeside, w.ada, "CT", at(9, 10), 30)
    w.read(lakeside, w.ada, "CT", at(9, 20), 60)
    w.read(lakeside, w.ada, "CT", at(10, 5), 90, on_time=False)
    w.read(lakeside, w.ada, "MR", at(10, 10), 40)
    w.read(harbor, w.ada, "MR", at(10, 12), 100, on_time=False)
    w.read(lakeside, w.ada, "CT", END, 10)  # reported at the end: outside [start, end)
    w.read(lakeside, w.bea, "CT", at(9, 15), 20)
    w.read(lakeside, w.bea, "CT", at(10, 15), 50)
    w.read(lakeside, w.cal, "MR", at(10, 1, 3), 200, on_time=False)
    for modality, score, final_at in [("CT", "1", at(9, 12)), ("CT", "1", at(10, 2)), ("CT", "2a", at(10, 3)),
                                      ("CT", "2b", at(10, 20)), ("MR", "1", at(9, 25))]:
        w.review(lakeside, w.ada, modality, score, final_at)
    w.review(harbor, w.ada, "MR", "3a", at(10, 22))
    w.review(lakeside, w.ada, "CT", "3b", at(10, 23), status="arbitration")
    w.review(lakeside, w.ada, "CT", "", at(10, 24), status="cancelled")
    w.review(lakeside, w.ada, "CT", "3b", START - timedelta(seconds=1))
    for day in (5, 6):
        w.review(lakeside, w.bea, "CT", "1", at(9, day))
    w.review(lakeside, w.bea, "CT", "1", at(10, 7))
    w.review(lakeside, w.cal, "MR", "3b", at(10, 25))
    w.review(lakeside, w.cal, "MR", "1", at(9, 28))
    return w


def figures(row: stats.ReaderRow) -> dict:
    return {"reads": row.reads, "on_time_rate": row.on_time_rate, "median": row.median_turnaround_minutes,
            "reviews": row.reviews, "agreement": row.agreement_rate, **row.discrepancy_rates}


def table(rows) -> dict:
    return {(r.reader_name, r.modality): figures(r) for r in rows}


def expected(reads, on_time_rate, median, reviews, agreement, r2a=0.0, r2b=0.0, r3a=0.0, r3b=0.0):
    none = reviews == 0
    return {"reads": reads, "on_time_rate": on_time_rate, "median": median, "reviews": reviews,
            "agreement": None if none else agreement, "2a": None if none else r2a, "2b": None if none else r2b,
            "3a": None if none else r3a, "3b": None if none else r3b}


LAKESIDE = {
    ("Ada Quill", ""): expected(4, 3 / 4, 50, 5, 3 / 5, r2a=1 / 5, r2b=1 / 5),
    ("Ada Quill", "CT"): expected(3, 2 / 3, 60, 4, 2 / 4, r2a=1 / 4, r2b=1 / 4),
    ("Ada Quill", "MR"): expected(1, 1.0, 40, 1, 1.0),
    ("Bea Brook", ""): expected(2, 1.0, 35, 3, 1.0),
    ("Bea Brook", "CT"): expected(2, 1.0, 35, 3, 1.0),
    ("Cal Crane", ""): expected(1, 0.0, 200, 2, 1 / 2, r3b=1 / 2),
    ("Cal Crane", "MR"): expected(1, 0.0, 200, 2, 1 / 2, r3b=1 / 2),
}
ADA_EVERYWHERE = {
    ("Ada Quill", ""): expected(5, 3 / 5, 60, 6, 3 / 6, r2a=1 / 6, r2b=1 / 6, r3a=1 / 6),
    ("Ada Quill", "CT"): expected(3, 2 / 3, 60, 4, 2 / 4, r2a=1 / 4, r2b=1 / 4),
    ("Ada Quill", "MR"): expected(2, 1 / 2, 70, 2, 1 / 2, r3a=1 / 2),
}


def test_a_centers_figures_equal_the_hand_computed_ones(world):
    rows = stats.reader_stats(center=world.cast.center, start=START, end=END)
    assert table(rows) == LAKESIDE
    assert [(r.reader_name, r.modality) for r in rows] == list(LAKESIDE)  # by name, overall row first


def test_platform_figures_include_every_center_and_never_count_reviews_as_reads(world):
    rows = table(stats.reader_stats(start=START, end=END))
    assert {key: rows[key] for key in ADA_EVERYWHERE} == ADA_EVERYWHERE
    assert ("Dora Viewmore", "") not in rows  # her reads are peer reviews


def test_a_groups_figures_cover_its_member_readers_only(world):
    rows = table(stats.reader_stats(group=world.cast.group, start=START, end=END))
    assert set(rows) == {*ADA_EVERYWHERE, ("Bea Brook", ""), ("Bea Brook", "CT")}
    assert rows[("Ada Quill", "")] == ADA_EVERYWHERE[("Ada Quill", "")]


def test_named_readers_are_listed_even_without_figures(world):
    idle = world.reader("Ida Idle")
    rows = stats.reader_stats(readers=[idle, world.ada.pk], start=START, end=END)
    assert table(rows)[("Ida Idle", "")] == expected(0, None, None, 0, None)
    assert {r.reader_name for r in rows} == {"Ada Quill", "Ida Idle"}


def test_monthly_trend_counts_reads_and_final_reviews_per_month(world):
    trend = stats.monthly_trend(center=world.cast.center, start=START, end=END)
    assert [(p.month.isoformat(), p.reads, p.reviews, p.agreement_rate) for p in trend] == [
        ("2026-09-01", 3, 5, 1.0), ("2026-10-01", 4, 5, 2 / 5)]


def test_monthly_trend_follows_the_viewers_time_zone_and_keeps_empty_months(world):
    trend = stats.monthly_trend(center=world.cast.center, start=START, end=END, zone="America/Chicago")
    # START is Aug 31, 19:00 in Chicago: August is in the period with nothing in it; Cal's read is September's
    assert [(p.month.isoformat(), p.reads, p.reviews, p.agreement_rate) for p in trend] == [
        ("2026-08-01", 0, 0, None), ("2026-09-01", 4, 5, 1.0), ("2026-10-01", 3, 5, 2 / 5)]


def test_outliers_compare_a_reader_with_their_group_and_an_independent_with_the_platform(world):
    # Ada: 2 significant of 6 (1/3) vs Night Hawk's 2 of 9 (2/9): 1/9 above. Cal: 1 of 2 vs the platform's 3 of 11.
    found = stats.outliers(start=START, end=END, margin=0.05, min_reviews=2)
    assert [(o.reader_name, o.baseline, o.reviews, o.significant, o.baseline_reviews, o.baseline_significant)
            for o in found] == [("Cal Crane", "Platform", 2, 1, 11, 3), ("Ada Quill", "Night Hawk Readers", 6, 2, 9, 2)]
    assert found[1].excess == pytest.approx(1 / 9)


@pytest.mark.parametrize(("margin", "min_reviews", "flagged"), [
    (0.05, 3, ["Ada Quill"]),  # Cal's two reviews are too few
    (0.12, 2, ["Cal Crane"]),  # Ada is 11.1 points above her group
    (0.23, 2, []),  # Cal is 22.7 points above the platform
])
def test_outliers_respect_the_margin_and_the_fewest_reviews(world, margin, min_reviews, flagged):
    assert [o.reader_name for o in stats.outliers(start=START, end=END, margin=margin,
                                                  min_reviews=min_reviews)] == flagged


def test_reader_stats_query_count_does_not_grow_with_readers(world):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            stats.reader_stats(start=START, end=END)
            stats.monthly_trend(start=START, end=END)
            stats.outliers(start=START, end=END, min_reviews=1)
        return len(seen)

    before = count_queries()
    for n in range(4):
        extra = world.reader(f"Extra {n}", group=world.cast.group)
        world.read(world.cast.center, extra, "CR", at(9, 3 + n), 15)
        world.review(world.cast.center, extra, "CR", "2b", at(9, 4 + n))
    assert count_queries() == before == 4 + 2 + 3


# --- pages ----------------------------------------------------------------------------------------

def csv_rows(response) -> dict:
    assert response["Content-Type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.content.decode()))
    return {(line["reader"], line["modality"]): line for line in reader}


def as_figures(line: dict) -> dict:
    def fraction(text):
        return None if text == "" else float(text)

    return {"reads": int(line["reads"]), "on_time_rate": fraction(line["on_time_rate"]),
            "median": fraction(line["median_turnaround_minutes"]), "reviews": int(line["reviews"]),
            "agreement": fraction(line["agreement_rate"]),
            **{code: fraction(line[f"rate_{code}"]) for code in ("2a", "2b", "3a", "3b")}}


def rounded(values: dict) -> dict:
    return {key: None if value is None else round(value, 4) for key, value in values.items()}


def test_a_center_sees_its_readers_side_by_side_and_exports_the_same_numbers(world, login):
    client = login(world.cast.center_admin)
    page = client.get(reverse("quality_stats"), PERIOD)
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("Ada Quill", "Bea Brook", "Cal Crane", "<svg"):
        assert name in html
    assert "Dora Viewmore" not in html
    exported = csv_rows(client.get(reverse("quality_stats"), {**PERIOD, "format": "csv"}))
    assert {(name, "" if modality == "all" else modality): as_figures(line)
            for (name, modality), line in exported.items()} == {key: rounded(value) for key, value in LAKESIDE.items()}
    assert exported[("Ada Quill", "CT")]["score_2b"] == "1"


def test_a_center_reading_another_centers_statistics_gets_404(world, login):
    other = login(world.cast.other_admin)
    assert other.get(reverse("quality_stats_of", args=[world.cast.center.public_id])).status_code == 404
    assert other.get(reverse("quality_stats_of", args=[world.cast.other_center.public_id])).status_code == 200
    own = login(world.cast.center_admin)
    assert own.get(reverse("quality_stats_of", args=[world.cast.center.public_id])).status_code == 200


@pytest.mark.parametrize("route", ["quality_stats", "quality_stats_of"])
def test_finance_gets_404(world, login, route):
    args = [world.cast.center.public_id] if route == "quality_stats_of" else []
    assert login(world.cast.center_finance).get(reverse(route, args=args)).status_code == 404


def test_a_radiologist_sees_only_their_own_figures_and_no_reviewer(world, login):
    client = login(world.cast.radiologist)
    page = client.get(reverse("quality_mine"), PERIOD)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ada Quill" in html
    for other in ("Bea Brook", "Cal Crane", "Dora Viewmore", world.reviewer.user.email):
        assert other not in html
    exported = csv_rows(client.get(reverse("quality_mine"), {**PERIOD, "format": "csv"}))
    assert set(exported) == {("Ada Quill", "all"), ("Ada Quill", "CT"), ("Ada Quill", "MR")}
    assert as_figures(exported[("Ada Quill", "all")]) == rounded(ADA_EVERYWHERE[("Ada Quill", "")])
    for route in ("quality_stats", "ops_quality"):  # a group's reader is not its admin, nor operations
        assert client.get(reverse(route)).status_code == 404


def test_someone_without_a_radiologist_profile_has_no_own_page(world, login):
    assert login(world.cast.center_admin).get(reverse("quality_mine")).status_code == 404
    assert login(world.cast.patient).get(reverse("quality_mine")).status_code == 404


def test_a_group_admin_sees_the_groups_readers(world, login):
    admin = MembershipFactory(user__email="nh-admin@example.test", organization=world.cast.group, roles=["admin"]).user
    enroll_totp(admin)
    User.objects.filter(pk=admin.pk).update(time_zone="UTC")
    html = login(admin).get(reverse("quality_stats"), PERIOD).content.decode()
    assert "Ada Quill" in html
    assert "Bea Brook" in html
    assert "Cal Crane" not in html


def test_operations_see_every_reader_and_the_right_outlier(world, login):
    client = login(world.cast.platform_staff)
    assert client.get(reverse("quality_stats")).url == reverse("ops_quality")
    page = client.get(reverse("ops_quality"), {**PERIOD, "margin": "5", "min_reviews": "3"})
    assert page.status_code == 200
    outliers = [cell["row"] for cell in page.context["outliers"]]
    assert [(o.reader_name, o.baseline) for o in outliers] == [("Ada Quill", "Night Hawk Readers")]
    html = page.content.decode()
    section = html[html.index('id="outliers"'):html.index('id="quality-charts"')]
    assert "Ada Quill" in section
    assert "33.3 %" in section
    assert "Cal Crane" not in section
    assert all(name in html for name in ("Bea Brook", "Cal Crane"))
    assert client.get(reverse("quality_stats_of", args=[world.cast.center.public_id])).status_code == 200


def test_others_never_reach_the_operations_page(world, login):
    for user in (world.cast.center_admin, UserFactory(email="nobody@example.test")):
        assert login(user).get(reverse("ops_quality")).status_code == 404


def test_a_bad_period_falls_back_to_the_last_90_days(world, login):
    page = login(world.cast.center_admin).get(reverse("quality_stats"), {"start": "2026-10-31", "end": "2026-09-01"})
    assert page.status_code == 200
    assert (page.context["period"].last - page.context["period"].first).days == 89
    assert page.context["form"].errors


CENTER_READERS = {"center_admin", "technologist", "center_viewer"}
# Who gets what (everyone else 404; anonymous is sent to sign in): the rows tests/reporting/matrix.py holds.
ACCESS = {
    "quality_stats": {**dict.fromkeys(CENTER_READERS | {"other_admin"}, 200), "platform_staff": 302},
    "quality_stats_of": {**dict.fromkeys(CENTER_READERS, 200), "platform_staff": 200},
    "quality_mine": {"radiologist": 200},
    "ops_quality": {"platform_staff": 200},
}


@pytest.mark.parametrize("route", sorted(ACCESS))
def test_each_principal_gets_what_the_access_rules_say(cast, login, route):
    make_radiologist(user=cast.radiologist)
    finance = MembershipFactory(user__email="pf@example.test", organization=cast.platform, roles=["finance"]).user
    enroll_totp(finance)  # platform people pass the MFA gate first
    args = [cast.center.public_id] if route == "quality_stats_of" else []
    url = reverse(route, args=args)
    people = {**cast.users, "platform_finance": finance}
    seen = {name: login(user).get(url).status_code for name, user in people.items()}
    assert seen == {name: ACCESS[route].get(name, 404) for name in seen}
    assert login(None).get(url).status_code == 302
