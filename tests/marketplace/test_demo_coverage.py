"""The demo world's coverage and overflow (issue 18, item 5) and its RIS orders (issue 23, item 5): Summit's one
MR night gap in the coverage map's own words, Lakeside's and Bayview's rules with the reads they posted, the three
HL7 orders, and that a second run, and a run after emptying the demo's reads and studies, bring back the same."""

from __future__ import annotations

import re

from accounts import demo_hooks, policy
from accounts.models import Organization, User
from marketplace import overflow
from marketplace.coverage import coverage_map
from marketplace.coverage_models import OverflowPosting, OverflowRule
from marketplace.models import ReadRequest
from marketplace.ris_models import Hl7Message, RisOrder
from studies.models import Study
from tests.accounts.test_demo import delete_demo_reads_and_studies
from tests.marketplace.helpers import load_demo

# Sydney's and Denver's clocks change on different days: the gap starts between 00:00 and 02:00 Denver time.
SUMMIT_GAP = re.compile(r"Sat 0[0-2]:00–06:00: no MR reader licensed in US-CO")
RIS_STATES = {"LKS-ORD-0001": "posted", "LKS-ORD-0002": "waiting", "LKS-ORD-0003": "cancelled"}


def summit_mr_coverage():
    admin = User.objects.get(email="admin@summit.demo")
    return coverage_map(actor=policy.actor_for_user(admin), center=Organization.objects.get(slug="summit"),
                        modality="MR")


def postings(slug: str) -> dict[str, OverflowPosting]:
    return {p.study.accession_number: p for p in OverflowPosting.objects.filter(rule__center__slug=slug)
            .select_related("rule", "study", "read_request")}


def ris_states() -> dict[str, str]:
    return dict(RisOrder.objects.filter(center__slug="lakeside").values_list("placer_order_number", "status"))


def test_summit_mr_has_one_night_gap_on_saturday_in_the_gap_list(demo_output):
    coverage = summit_mr_coverage()

    assert len(coverage.gaps) == 1, coverage.gaps
    assert SUMMIT_GAP.fullmatch(coverage.gaps[0])
    assert coverage.gaps[0] in demo_output
    saturday = next(day for day in coverage.days if day.day.weekday() == 5)
    assert [hour.count for hour in saturday.hours[2:6]] == [0, 0, 0, 0]  # 02:00 to 06:00: nobody
    assert saturday.hours[6].radiologists == ["Sofia Alvarez"]  # Los Angeles starts at 05:00, 06:00 in Denver
    friday = next(day for day in coverage.days if day.day.weekday() == 4)
    assert "Liam Brennan" in friday.hours[23].radiologists  # Sydney's Saturday afternoon
    assert all(hour.count for hour in coverage.hours if hour.count is not None and hour.day != saturday.day)


def test_lakeside_nights_and_bayview_backlog_rules_posted_reads_that_name_them(demo_output):
    lakeside = OverflowRule.objects.get(center__slug="lakeside")
    bayview = OverflowRule.objects.get(center__slug="bayview")
    assert (lakeside.trigger, lakeside.modality, f"{lakeside.starts:%H:%M}", f"{lakeside.ends:%H:%M}",
            lakeside.paused) == ("hours", "CT", "22:00", "07:00", False)
    assert (bayview.trigger, bayview.modality, bayview.backlog, bayview.paused) == ("backlog", "CT", 2, False)

    at_lakeside, at_bayview = postings("lakeside"), postings("bayview")
    assert set(at_lakeside) == {"LKSOVF0001"}
    assert set(at_bayview) == {"BVDOVF0001", "BVDOVF0002"}  # the two oldest of four; two wait, not beyond 2
    # The two younger ones were not posted (the quality demo's synthetic history may have "read" them long ago).
    assert not ReadRequest.objects.filter(study__accession_number__in=["BVDOVF0003", "BVDOVF0004"],
                                          idempotency_key__isnull=True).exists()
    night = at_lakeside["LKSOVF0001"]
    assert overflow.in_hours(lakeside, night.study.received_at, "America/Chicago")
    for posting in [*at_lakeside.values(), *at_bayview.values()]:
        assert posting.read_request.study == posting.study
        assert posting.read_request.status == "open"
        assert overflow.sentence(posting.rule) in posting.read_request.special_instructions
        assert posting.read_request.posted_by is None  # nobody at the center clicked
    assert f'overflow rule "{overflow.sentence(lakeside)}" posted LKSOVF0001 (open)' in demo_output
    assert "posted BVDOVF0001 (open), BVDOVF0002 (open)" in demo_output


def test_the_ris_demo_orders_are_matched_waiting_and_cancelled(demo_output):
    assert ris_states() == RIS_STATES
    matched = RisOrder.objects.select_related("read_request__study").get(placer_order_number="LKS-ORD-0001")
    assert matched.read_request.study.accession_number == "LKSRIS0001"
    assert sorted(Hl7Message.objects.filter(interface__center__slug="lakeside", direction="in")
                  .values_list("control_id", "ack_code")) == [
        ("DEMO-ORM-0001", "AA"), ("DEMO-ORM-0002", "AA"), ("DEMO-ORM-0003", "AA"), ("DEMO-ORM-0004", "AA")]
    assert "LKS-ORD-0001 posted, LKS-ORD-0002 waiting, LKS-ORD-0003 cancelled" in demo_output


def test_a_second_run_changes_nothing_and_a_run_after_a_reset_brings_the_stories_back(db, settings, tmp_path,
                                                                                       monkeypatch):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}
    # Signed reports cannot be deleted (PostgreSQL refuses it): the reset leaves the reporting demo out.
    monkeypatch.setitem(demo_hooks._LOADERS, "reporting", [lambda *args, **kwargs: None])
    load_demo()

    def snapshot():
        return (sorted(OverflowRule.objects.values_list("pk", "updated_at")),
                sorted(OverflowPosting.objects.values_list("pk", "study_id", "read_request_id")),
                sorted(RisOrder.objects.values_list("pk", "status")), Hl7Message.objects.count(),
                Study.objects.count(), ReadRequest.objects.count())

    before = snapshot()
    assert "Demo world ready: 0 created, 0 updated" in load_demo()
    assert snapshot() == before

    delete_demo_reads_and_studies()
    output = load_demo()

    assert "Demo world ready: 0 created" not in output
    assert ris_states() == RIS_STATES
    assert set(postings("lakeside")) == {"LKSOVF0001"}
    assert set(postings("bayview")) == {"BVDOVF0001", "BVDOVF0002"}
    gaps = summit_mr_coverage().gaps
    assert len(gaps) == 1
    assert SUMMIT_GAP.fullmatch(gaps[0])
    assert (Study.objects.count(), ReadRequest.objects.count()) == before[-2:]
