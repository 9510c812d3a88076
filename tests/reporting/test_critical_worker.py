"""The critical-result clock run by a real Celery worker through Redis, as beat sends it: the first run
escalates the overdue result and notifies the center's admins, a second run notifies nobody again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection

from accounts.models import AuditEvent, Notification
from reporting.models import CriticalResult
from tests.conftest import require_or_skip
from tests.core.test_celery_worker import _SCRUBBED, BROKER_DB, redis_available, redis_url_for_db
from tests.marketplace.test_webhooks_worker import database_url_of_this_test, forget_queue, wait_for
from tests.reporting.critical_helpers import sign_with_critical

# Sends the beat's task by name to this test's queue and prints what the worker returned.
PRODUCER = """
import json, sys
import django
django.setup()
from django.conf import settings
from config.celery import app
assert not settings.CELERY_TASK_ALWAYS_EAGER, "the producer must publish to the broker"
result = app.send_task(settings.CELERY_BEAT_SCHEDULE["reporting-critical-escalation"]["task"], queue=sys.argv[1])
print(json.dumps({"id": result.id, "value": result.get(timeout=60)}))
"""


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_escalates_an_overdue_critical_result_once(cast, draft, tmp_path):
    require_or_skip(redis_available(), "Redis on 127.0.0.1:6379")
    require_or_skip(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    critical = sign_with_critical(cast, draft, category=1)
    CriticalResult.objects.filter(pk=critical.pk).update(created_at=critical.created_at - timedelta(minutes=35))
    broker_url = redis_url_for_db(BROKER_DB)
    queue = f"readroom-critical-{uuid.uuid4().hex[:12]}"
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "READROOM_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    })
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--concurrency=1",
             "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO",
             "-Q", queue, "-n", f"{queue}@%h"],
            cwd=django_settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: " ready." in log_path.read_text(), 60, "the worker to start", log_path)
        runs = []
        for _ in range(2):
            producer = subprocess.run([sys.executable, "-c", PRODUCER, queue], cwd=django_settings.BASE_DIR, env=env,
                                      capture_output=True, text=True, timeout=120, check=False)
            assert producer.returncode == 0, f"{producer.stderr}\n--- worker log ---\n{log_path.read_text()}"
            runs.append(json.loads(producer.stdout.strip().splitlines()[-1]))
        assert worker.poll() is None, f"the worker died:\n{log_path.read_text()}"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        forget_queue(broker_url, queue)

    assert [run["value"] for run in runs] == [{"level_1": 1, "level_2": 0}, {"level_1": 0, "level_2": 0}]
    worker_log = log_path.read_text()
    assert f"reporting.escalate_critical_results[{runs[0]['id']}] succeeded" in worker_log, worker_log
    assert CriticalResult.objects.get(pk=critical.pk).escalation_level == 1
    assert Notification.objects.filter(user=cast.center_admin, title__contains="unacknowledged").count() == 1
    assert AuditEvent.objects.filter(action="critical_result.escalated", object_id=str(critical.public_id)).count() == 1
