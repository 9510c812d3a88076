"""Overflow rules (issue 18, item 3): each trigger fires exactly once on ingest and by the clock (real DICOM
ingest, the clock given as ``now``), one posting per study across rules and runs, paused rules and the "read
locally" mark post nothing, bad input names its field, another center's rule is 404, and the sentences."""

from __future__ import annotations

from datetime import date, time, timedelta
from io import BytesIO
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from core.errors import ApplicationError, NotFound
from marketplace import overflow
from marketplace.coverage_models import LocalRead, OverflowPosting, OverflowRule
from marketplace.models import Audience, ReadRequest
from marketplace.services.overflow import (
    RuleData,
    overflow_rule_create,
    overflow_rule_pause,
    overflow_tick,
    rule_of,
    study_mark_read_locally,
)
from studies import synthetic
from studies.ingest import Source, ingest_files
from tests.marketplace.helpers import actor

pytestmark = pytest.mark.django_db
_accessions = count(1)


def ingest_study(center, *, modality: str = "CT"):
    """A one-instance study arriving through ``ingest_files`` (the door STOW-RS, upload and C-STORE share, which
    tells the higher layers after its commit)."""
    n = next(_accessions)
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(1), accession=f"OV{n:05d}",
                               description=f"{modality} OVERFLOW {n}", study_date=date(2026, 11, 1))
    dataset = (synthetic.ct_series(spec, slices=1, size=32)[0] if modality == "CT"
               else synthetic.mr_study(spec, slices=1, size=32)[0])
    outcomes = ingest_files(organization=center, files=[("m.dcm", BytesIO(synthetic.to_bytes(dataset)))],
                            source=Source.STOW, jurisdiction=(center.country, center.region))
    assert outcomes[0].status == "stored", outcomes[0].reason
    study = outcomes[0].instance.study
    study.refresh_from_db()
    return study


def _window(center, *, open_now: bool) -> tuple[str, str]:
    """An hours window (HH:MM, HH:MM) in the center's zone that is open now, or opens in two hours."""
    local = timezone.now().astimezone(ZoneInfo(center.time_zone))
    start = local - timedelta(hours=1) if open_now else local + timedelta(hours=2)
    return f"{start:%H:%M}", f"{start + timedelta(hours=2):%H:%M}"


def _rule(cast, **fields) -> OverflowRule:
    data = RuleData(**{"trigger": "hours", **fields})
    return overflow_rule_create(actor=actor(cast.center_admin), center=cast.center, data=data)


def _hours_rule(cast, *, open_now: bool = True, **fields) -> OverflowRule:
    starts, ends = _window(cast.center, open_now=open_now)
    return _rule(cast, trigger="hours", starts=starts, ends=ends, **fields)


def _posted(study) -> ReadRequest | None:
    return ReadRequest.objects.filter(study=study).first()


# --- each trigger, once ---------------------------------------------------------------------------------

def test_hours_rule_posts_on_ingest_once_and_names_itself(cast, reader, django_capture_on_commit_callbacks):
    rule = _hours_rule(cast, modality="CT", priority="urgent")
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    read = _posted(study)
    assert read is not None
    assert read.priority == "urgent"
    assert read.audience == Audience.MARKETPLACE
    assert read.special_instructions == f"Posted automatically by the rule: {overflow.sentence(rule)}."
    assert OverflowPosting.objects.get(study=study).rule == rule
    assert overflow_tick(timezone.now() + timedelta(minutes=5)) == 0  # the clock finds nothing left
    assert ReadRequest.objects.filter(study=study).count() == 1


def test_hours_rule_outside_its_window_posts_nothing(cast, reader, django_capture_on_commit_callbacks):
    _hours_rule(cast, open_now=False)
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    assert _posted(study) is None
    assert overflow_tick() == 0


def test_hours_rule_of_another_modality_posts_nothing(cast, reader, django_capture_on_commit_callbacks,
                                                     django_assert_num_queries):
    from marketplace.services.overflow import on_studies_received

    _hours_rule(cast, modality="MR")
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    assert _posted(study) is None
    overflow.forget_rules(cast.center.pk)
    overflow.active_rules(cast.center.pk)[0].center  # noqa: B018 - the rules and their center, cached
    with django_assert_num_queries(1) as queries:  # the plain look at the arrival; postings are not asked about
        on_studies_received(organization_id=cast.center.pk, study_ids=[study.pk], source="stow")
    assert "EXISTS" not in queries.captured_queries[0]["sql"]


def test_hours_rule_arrival_the_hook_missed_is_posted_by_the_clock_once(cast, reader):
    _hours_rule(cast)
    study = ingest_study(cast.center, modality="CT")  # the after-commit hook never ran (a worker died)
    assert _posted(study) is None
    assert overflow_tick() == 1
    assert overflow_tick() == 0
    assert _posted(study) is not None


def test_a_studys_later_instances_cost_the_ingest_hook_no_query(cast, reader, django_capture_on_commit_callbacks,
                                                                django_assert_num_queries):
    from marketplace.services.overflow import on_studies_received

    _hours_rule(cast, modality="CT")
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    assert _posted(study) is not None
    with django_assert_num_queries(0):  # the rules are cached and the study was checked moments ago
        on_studies_received(organization_id=cast.center.pk, study_ids=[study.pk], source="stow")
    overflow.forget_rules(cast.center.pk)  # a rule changed: every study is checked again
    # The rules, their center, the study's plain look, then whether it is posted (it is: nothing more).
    with django_assert_num_queries(4):
        on_studies_received(organization_id=cast.center.pk, study_ids=[study.pk], source="stow")
    assert ReadRequest.objects.filter(study=study).count() == 1


def test_unread_rule_fires_by_the_clock_exactly_once(cast, reader, django_capture_on_commit_callbacks):
    _rule(cast, trigger="unread", minutes="30", modality="CT")
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    assert _posted(study) is None  # ingest leaves the unread trigger to the clock
    arrived = study.received_at
    assert overflow_tick(arrived + timedelta(minutes=29)) == 0
    assert overflow_tick(arrived + timedelta(minutes=31)) == 1
    assert overflow_tick(arrived + timedelta(minutes=32)) == 0
    assert ReadRequest.objects.filter(study=study).count() == 1


def test_unread_rule_leaves_the_archive_from_before_it_alone(cast, reader):
    old = ingest_study(cast.center, modality="CT")
    old.received_at = timezone.now() - timedelta(days=3)
    old.save(update_fields=["received_at"])
    _rule(cast, trigger="unread", minutes="30")
    assert overflow_tick(timezone.now() + timedelta(hours=1)) == 0
    assert _posted(old) is None


def test_backlog_rule_posts_the_oldest_beyond_n_once(cast, reader):
    _rule(cast, trigger="backlog", backlog="2", modality="CT")
    studies = [ingest_study(cast.center, modality="CT") for _ in range(4)]
    ingest_study(cast.center, modality="MR")  # another modality does not count
    assert overflow_tick() == 2
    assert [_posted(s) is not None for s in studies] == [True, True, False, False]
    assert overflow_tick() == 0


def test_backlog_at_n_posts_nothing(cast, reader):
    _rule(cast, trigger="backlog", backlog="2", modality="CT")
    ingest_study(cast.center, modality="CT")
    ingest_study(cast.center, modality="CT")
    assert overflow_tick() == 0


# --- one posting per study --------------------------------------------------------------------------------

def test_two_rules_on_the_same_study_post_it_once(cast, reader, django_capture_on_commit_callbacks):
    first = _hours_rule(cast)
    _hours_rule(cast, modality="CT")
    _rule(cast, trigger="unread", minutes="5")
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    assert overflow_tick(timezone.now() + timedelta(minutes=10)) == 0
    assert ReadRequest.objects.filter(study=study).count() == 1
    assert OverflowPosting.objects.get(study=study).rule == first


def test_a_study_posted_by_hand_is_never_posted_by_a_rule(cast, reader):
    from tests.marketplace.helpers import post

    _rule(cast, trigger="unread", minutes="5")
    study = ingest_study(cast.center, modality="CT")
    post(cast.technologist, study)
    assert overflow_tick(timezone.now() + timedelta(minutes=10)) == 0
    assert ReadRequest.objects.filter(study=study).count() == 1


def test_paused_rule_posts_nothing_until_resumed(cast, reader, django_capture_on_commit_callbacks):
    rule = _hours_rule(cast, paused=True)
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    assert _posted(study) is None
    assert overflow_tick() == 0
    overflow_rule_pause(actor=actor(cast.center_admin), rule=rule, paused=False)
    assert overflow_tick() == 1  # resumed: the clock's catch-up posts the arrival of its hours


def test_read_locally_mark_stops_posting(cast, reader):
    _rule(cast, trigger="unread", minutes="5")
    _rule(cast, trigger="backlog", backlog="1")
    study = ingest_study(cast.center, modality="CT")
    ingest_study(cast.center, modality="CT")
    study_mark_read_locally(actor=actor(cast.technologist), study=study)
    study_mark_read_locally(actor=actor(cast.technologist), study=study)  # again: nothing changes
    assert LocalRead.objects.filter(study=study).count() == 1
    overflow_tick(timezone.now() + timedelta(minutes=10))
    assert _posted(study) is None


def test_read_locally_mark_is_refused_to_another_center(cast):
    study = ingest_study(cast.center, modality="CT")
    with pytest.raises(NotFound):
        study_mark_read_locally(actor=actor(cast.other_admin), study=study)


def test_read_locally_button_on_the_page(cast, login):
    study = ingest_study(cast.center, modality="CT")
    response = login(cast.technologist).post(reverse("study_read_locally", args=[study.public_id]))
    assert response.status_code == 302
    assert LocalRead.objects.filter(study=study).exists()
    assert login(cast.other_admin).post(reverse("study_read_locally", args=[study.public_id])).status_code == 404


def test_read_locally_through_the_api(cast, login):
    study = ingest_study(cast.center, modality="CT")
    client = login(cast.technologist, api=True)
    response = client.post(reverse("api_study_read_locally", args=[study.public_id]))
    assert response.status_code == 200, response.content
    assert response.json()["read_locally"] is True
    other = login(cast.other_admin, api=True)
    assert other.post(reverse("api_study_read_locally", args=[study.public_id])).status_code == 404


# --- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "field_name"), [
    ({"trigger": "unread", "minutes": "0"}, "minutes"),
    ({"trigger": "unread", "minutes": "-5"}, "minutes"),
    ({"trigger": "unread", "minutes": "soon"}, "minutes"),
    ({"trigger": "backlog", "backlog": "0"}, "backlog"),
    ({"trigger": "hours", "starts": "25:99", "ends": "07:00"}, "starts"),
    ({"trigger": "hours", "starts": "22:00", "ends": "night"}, "ends"),
    ({"trigger": "hours", "starts": "22:00", "ends": "07:00", "weekdays": [7]}, "weekdays"),
    ({"trigger": "hours", "starts": "22:00", "ends": "07:00", "weekdays": ["x"]}, "weekdays"),
    ({"trigger": "sometimes"}, "trigger"),
    ({"trigger": "unread", "minutes": "5", "priority": "whenever"}, "priority"),
])
def test_bad_rule_is_refused_naming_the_field(cast, fields, field_name):
    with pytest.raises(ApplicationError) as refused:
        _rule(cast, **fields)
    assert field_name in refused.value.fields
    assert not OverflowRule.objects.exists()


def test_a_modality_the_center_never_had_is_fine(cast):
    assert _rule(cast, trigger="backlog", backlog="3", modality="pt").modality == "PT"


def test_another_centers_rule_is_404(cast, login):
    rule = _rule(cast, trigger="unread", minutes="5")
    with pytest.raises(NotFound):
        rule_of(actor(cast.other_admin), rule.public_id)
    other = login(cast.other_admin)
    assert other.get(reverse("overflow_rule_edit", args=[rule.public_id])).status_code == 404
    assert other.post(reverse("overflow_rule_pause", args=[rule.public_id])).status_code == 404
    assert other.post(reverse("overflow_rule_delete", args=[rule.public_id])).status_code == 404
    assert OverflowRule.objects.filter(pk=rule.pk, paused=False).exists()


def test_technologist_may_not_manage_rules(cast):
    with pytest.raises(NotFound):
        overflow_rule_create(actor=actor(cast.technologist), center=cast.center,
                             data=RuleData(trigger="unread", minutes=5))


# --- sentences and the page --------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "text"), [
    ({"trigger": "hours", "modality": "CT", "starts": time(22), "ends": time(7), "weekdays": [0, 1, 2, 3, 4]},
     "Post every CT that arrives between 22:00 and 07:00 on weekdays as a routine read, contract readers first"),
    ({"trigger": "hours", "starts": time(0), "ends": time(23, 59), "weekdays": [5, 6], "priority": "urgent",
      "audience": "marketplace"},
     "Post every study that arrives between 00:00 and 23:59 at weekends as a urgent read, to every eligible "
     "reader at once"),
    ({"trigger": "unread", "modality": "MR", "minutes": 45, "priority": "stat"},
     "Post every MR nobody has read locally within 45 minutes of arrival as a STAT read, contract readers first"),
    ({"trigger": "backlog", "modality": "CT", "backlog": 20},
     "When more than 20 CT studies wait unread, post the oldest beyond 20 as a routine read, contract readers "
     "first"),
])
def test_each_rule_reads_as_one_sentence(cast, fields, text):
    assert overflow.sentence(_rule(cast, **fields)) == text


def test_rules_page_lists_sentences_adds_pauses_and_shows_postings(cast, reader, login,
                                                                    django_capture_on_commit_callbacks):
    client = login(cast.center_admin)
    url = reverse("overflow_rules")
    starts, ends = _window(cast.center, open_now=True)
    response = client.post(url, {"trigger": "hours", "modality": "CT", "starts": starts, "ends": ends,
                                 "priority": "routine", "audience": "preferred"})
    assert response.status_code == 302, response.content
    rule = OverflowRule.objects.get(center=cast.center)
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_study(cast.center, modality="CT")
    page = client.get(url).content.decode()
    assert overflow.sentence(rule) in page
    assert study.study_description in page  # the recent automatic posting, beside the rule that posted it
    bad = client.post(url, {"trigger": "unread", "minutes": "0", "priority": "routine", "audience": "preferred"})
    assert bad.status_code == 400
    assert "at least 1" in bad.content.decode()
    client.post(reverse("overflow_rule_pause", args=[rule.public_id]))
    rule.refresh_from_db()
    assert rule.paused
    client.post(reverse("overflow_rule_delete", args=[rule.public_id]))
    assert OverflowRule.objects.filter(pk=rule.pk, paused=True).exists()  # it posted: kept, paused, named
