"""Celery: eager in the embedded default; through a real Redis broker to a real worker in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings as django_settings

from core.tasks import ping
from tests.conftest import require_or_skip

BASE_DIR = Path(django_settings.BASE_DIR)
REDIS_BASE_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
# A database of its own, so that cache.clear() (FLUSHDB on the cache's database) never eats the queue.
BROKER_DB = 14

# Variables that would change which settings the child processes run with.
_SCRUBBED = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_TASK_ALWAYS_EAGER",
             "DJANGO_ENV", "DEBUG", "S3_BUCKET"}

PRODUCER = """
import json, sys
import django
django.setup()
from django.conf import settings
from core.tasks import ping
assert not settings.CELERY_TASK_ALWAYS_EAGER, "the producer must not run tasks in-process"
result = ping.apply_async(args=[sys.argv[1]], queue=sys.argv[2])
print(json.dumps({"id": result.id, "value": result.get(timeout=30)}))
"""


def redis_url_for_db(db: int) -> str:
    return str(urlsplit(REDIS_BASE_URL)._replace(path=f"/{db}").geturl())


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_BASE_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def test_ping_runs_in_process_when_tasks_are_eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True

    # An eager task run by an earlier test in this process can leave Celery's task stack non-empty (the
    # full suite did, session 10: tests/billing/test_checkout_live.py then this test reproduces it); the check
    # against result.get() inside a task is not what is tested here.
    assert ping.delay("eager").get(timeout=1, disable_sync_subtasks=False) == "pong:eager"


@pytest.mark.redis
def test_task_sent_through_redis_is_run_by_a_real_worker_process(tmp_path):
    require_or_skip(redis_available(), "Redis on 127.0.0.1:6379")
    broker_url = redis_url_for_db(BROKER_DB)
    queue = f"readroom-test-{uuid.uuid4().hex[:12]}"
    token = uuid.uuid4().hex
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
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
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        producer = subprocess.run([sys.executable, "-c", PRODUCER, token, queue], cwd=BASE_DIR, env=env,
                                  capture_output=True, text=True, timeout=90, check=False)
        worker_log = log_path.read_text()
        assert producer.returncode == 0, f"producer failed:\n{producer.stderr}\n--- worker log ---\n{worker_log}"
        outcome = json.loads(producer.stdout.strip().splitlines()[-1])
        assert outcome["value"] == f"pong:{token}"
        assert worker.poll() is None, f"the worker died:\n{worker_log}"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        client = redis.Redis.from_url(broker_url)
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()

    # The worker process, not the producer, ran this very task.
    worker_log = log_path.read_text()
    assert f"core.ping[{outcome['id']}] succeeded" in worker_log, worker_log
