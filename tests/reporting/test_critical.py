"""Critical results, closed loop: the center acknowledges (once, by role, audited, the reader told, a webhook),
and the clock escalates what nobody acknowledged (center admins, then operations; idempotent)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from accounts.models import AuditEvent, Notification
from core.errors import NotFound, PermissionDenied
from marketplace.models import WebhookDelivery
from reporting.models import CriticalResult
from reporting.services.critical import (
    CATEGORY_1_LEVEL_1_MINUTES,
    CATEGORY_2_LEVEL_1_MINUTES,
    CATEGORY_2_LEVEL_2_MINUTES,
    critical_acknowledge,
    critical_escalate_due,
)
from tests.marketplace.helpers import actor
from tests.marketplace.test_webhooks import add_endpoint
from tests.reporting.critical_helpers import another_critical, sign_with_critical

pytestmark = pytest.mark.django_db


@pytest.fixture
def critical(cast, draft):
    return sign_with_critical(cast, draft, category=1)


def _at(critical, minutes: float):
    return critical.created_at + timedelta(minutes=minutes)


def _titles(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("id").values_list("title", flat=True))


def _escalation_notices(user) -> list[str]:
    return [t for t in _titles(user) if "unacknowledged" in t]


def _audits(critical, action: str):
    return AuditEvent.objects.filter(action=action, object_type="reporting.criticalresult",
                                     object_id=str(critical.public_id))


# --- acknowledgement ---------------------------------------------------------------------------------

def test_a_technologist_acknowledges_and_the_reader_is_told_with_an_audit_row_and_a_webhook(cast, draft, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    add_endpoint(cast, "http://127.0.0.1:9/ris")
    critical = sign_with_critical(cast, draft)
    outcome = critical_acknowledge(actor=actor(cast.technologist), critical=critical)
    assert outcome.first is True
    row = CriticalResult.objects.get(pk=critical.pk)
    assert row.acknowledged_by == cast.technologist
    assert row.acknowledged_at is not None
    [audit] = _audits(critical, "critical_result.acknowledged")
    assert audit.actor == cast.technologist
    assert audit.organization_id == cast.center.pk
    assert audit.extra["category"] == 1
    assert any(t.startswith("Critical result acknowledged") for t in _titles(cast.radiologist))
    [hook] = WebhookDelivery.objects.filter(event_type="report.critical_acknowledged")
    assert hook.payload["data"]["critical_result"]["id"] == str(critical.public_id)
    assert hook.payload["data"]["critical_result"]["category"] == 1


def test_a_second_acknowledgement_changes_nothing_and_names_who_was_first(cast, critical):
    first = critical_acknowledge(actor=actor(cast.technologist), critical=critical)
    when = CriticalResult.objects.get(pk=critical.pk).acknowledged_at
    again = critical_acknowledge(actor=actor(cast.center_admin), critical=critical)
    assert again.first is False
    row = CriticalResult.objects.get(pk=critical.pk)
    assert (row.acknowledged_by, row.acknowledged_at) == (cast.technologist, when)
    assert cast.technologist.display_name in again.message_for(actor(cast.center_admin))
    assert first.message_for(actor(cast.technologist)) == "Critical result acknowledged."
    assert _audits(critical, "critical_result.acknowledged").count() == 1
    assert sum(t.startswith("Critical result acknowledged") for t in _titles(cast.radiologist)) == 1


@pytest.mark.parametrize(("principal", "refusal"), [
    ("center_viewer", PermissionDenied),  # sees the center's critical results, may not acknowledge
    ("platform_staff", PermissionDenied),  # operations watch, never acknowledge for a center
    ("center_finance", NotFound),  # finance never sees clinical results
    ("other_admin", NotFound),  # another center's
    ("radiologist", NotFound),
    ("patient", NotFound),
])
def test_only_the_centers_admins_and_technologists_acknowledge(cast, critical, principal, refusal):
    with pytest.raises(refusal):
        critical_acknowledge(actor=actor(getattr(cast, principal)), critical=critical)
    assert CriticalResult.objects.get(pk=critical.pk).acknowledged_at is None
    assert not _audits(critical, "critical_result.acknowledged").exists()


# --- the clock -----------------------------------------------------------------------------------------

def test_category_1_escalates_to_center_admins_at_30_minutes_and_to_operations_at_60(cast, critical):
    assert critical_escalate_due(now=_at(critical, 29)).level_1 == 0
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 0

    at_31 = _at(critical, 31)
    result = critical_escalate_due(now=at_31)
    assert (result.level_1, result.level_2) == (1, 0)
    row = CriticalResult.objects.get(pk=critical.pk)
    assert (row.escalation_level, row.escalated_at) == (1, at_31)
    assert len(_escalation_notices(cast.center_admin)) == 1
    assert _escalation_notices(cast.technologist) == []  # level 1 is the center's admins
    assert _escalation_notices(cast.platform_staff) == []

    assert critical_escalate_due(now=_at(critical, 59)).level_2 == 0
    result = critical_escalate_due(now=_at(critical, 61))
    assert (result.level_1, result.level_2) == (0, 1)
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 2
    assert len(_escalation_notices(cast.platform_staff)) == 1
    assert "Lakeside Imaging" in _escalation_notices(cast.platform_staff)[0]
    assert len(_escalation_notices(cast.center_admin)) == 1

    levels = [(e.actor_id, e.extra["level"]) for e in _audits(critical, "critical_result.escalated").order_by("id")]
    assert levels == [(None, 1), (None, 2)]


def test_running_the_clock_twice_notifies_once(cast, critical):
    at = _at(critical, CATEGORY_1_LEVEL_1_MINUTES + 1)
    assert critical_escalate_due(now=at).level_1 == 1
    assert critical_escalate_due(now=at).level_1 == 0
    assert critical_escalate_due(now=at + timedelta(seconds=30)).level_1 == 0
    assert len(_escalation_notices(cast.center_admin)) == 1
    assert _audits(critical, "critical_result.escalated").count() == 1


def test_a_result_found_late_takes_both_steps_in_one_run(cast, critical):
    result = critical_escalate_due(now=_at(critical, 90))
    assert (result.level_1, result.level_2) == (1, 1)
    assert len(_escalation_notices(cast.center_admin)) == 1
    assert len(_escalation_notices(cast.platform_staff)) == 1


def test_an_acknowledged_result_never_escalates(cast, critical):
    critical_acknowledge(actor=actor(cast.technologist), critical=critical)
    result = critical_escalate_due(now=_at(critical, 600))
    assert (result.level_1, result.level_2) == (0, 0)
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 0
    assert _escalation_notices(cast.center_admin) == []
    assert not _audits(critical, "critical_result.escalated").exists()


def test_acknowledging_after_level_1_stops_level_2(cast, critical):
    critical_escalate_due(now=_at(critical, 31))
    critical_acknowledge(actor=actor(cast.center_admin), critical=critical)
    assert critical_escalate_due(now=_at(critical, 61)).level_2 == 0
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 1
    assert _escalation_notices(cast.platform_staff) == []


def test_category_2_escalates_at_4_and_8_hours(cast, draft):
    critical = sign_with_critical(cast, draft, category=2)
    assert critical_escalate_due(now=_at(critical, 31)).level_1 == 0
    assert critical_escalate_due(now=_at(critical, 61)).level_2 == 0
    assert critical_escalate_due(now=_at(critical, CATEGORY_2_LEVEL_1_MINUTES - 1)).level_1 == 0
    assert critical_escalate_due(now=_at(critical, CATEGORY_2_LEVEL_1_MINUTES + 1)).level_1 == 1
    assert critical_escalate_due(now=_at(critical, CATEGORY_2_LEVEL_2_MINUTES - 1)).level_2 == 0
    assert critical_escalate_due(now=_at(critical, CATEGORY_2_LEVEL_2_MINUTES + 1)).level_2 == 1
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 2


def test_category_3_never_escalates(cast, draft):
    critical = sign_with_critical(cast, draft, category=3, finding="Incidental 5 mm lung nodule")
    result = critical_escalate_due(now=_at(critical, 7 * 24 * 60))
    assert (result.level_1, result.level_2) == (0, 0)
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 0
    assert _escalation_notices(cast.center_admin) == []


def test_the_clock_counts_each_result_on_its_own_time(cast, critical):
    later = another_critical(cast)
    CriticalResult.objects.filter(pk=later.pk).update(created_at=critical.created_at + timedelta(minutes=20))
    result = critical_escalate_due(now=_at(critical, 31))
    assert (result.level_1, result.level_2) == (1, 0)
    assert CriticalResult.objects.get(pk=later.pk).escalation_level == 0
    assert critical_escalate_due(now=_at(critical, 51)).level_1 == 1
    assert CriticalResult.objects.get(pk=later.pk).escalation_level == 1


def test_the_beat_runs_the_clock_every_minute(settings):
    from celery.schedules import crontab

    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "reporting.escalate_critical_results"]
    assert len(entries) == 1
    assert entries[0]["schedule"] == crontab(minute="*")


def test_the_task_runs_the_clock(cast, critical):
    from reporting.tasks import escalate_critical_results

    CriticalResult.objects.filter(pk=critical.pk).update(created_at=critical.created_at - timedelta(minutes=45))
    assert escalate_critical_results.delay().get(timeout=5) == {"level_1": 1, "level_2": 0}
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 1


def _at_once(calls) -> list:
    """Run every call at the same instant, each on its own database connection; their results (or errors)."""
    barrier = threading.Barrier(len(calls))
    results, lock = [], threading.Lock()

    def run(call) -> None:
        try:
            barrier.wait(timeout=30)
            try:
                outcome = call()
            except Exception as error:  # noqa: BLE001 - a crash is a result the test reports
                outcome = error
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_acknowledgements_and_clock_runs_act_once_every_round(cast, draft, postgres_only):
    critical = sign_with_critical(cast, draft)
    at = _at(critical, CATEGORY_1_LEVEL_1_MINUTES + 1)
    for round_ in range(5):
        CriticalResult.objects.filter(pk=critical.pk).update(acknowledged_at=None, acknowledged_by=None,
                                                             escalation_level=0, escalated_at=None)
        notices = len(_escalation_notices(cast.center_admin))
        runs = _at_once([lambda: critical_escalate_due(now=at)] * 3)
        assert sorted(r.level_1 for r in runs) == [0, 0, 1], (round_, runs)
        assert len(_escalation_notices(cast.center_admin)) == notices + 1

        acks = _at_once([lambda: critical_acknowledge(actor=actor(cast.technologist), critical=critical),
                         lambda: critical_acknowledge(actor=actor(cast.center_admin), critical=critical)])
        assert sorted(a.first for a in acks) == [False, True], (round_, acks)
        winner = next(a for a in acks if a.first).critical.acknowledged_by
        loser = next(a for a in acks if not a.first)
        assert loser.critical.acknowledged_by == winner  # the second is told who was first
    assert _audits(critical, "critical_result.acknowledged").count() == 5
    assert _audits(critical, "critical_result.escalated").count() == 5
