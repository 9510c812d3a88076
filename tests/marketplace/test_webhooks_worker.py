"""No webhook lost when a real Celery worker dies between commit and send (reliability.md, "Concurrency").

A producer process makes the state change (a claim) with Celery eager off: the commit writes the outbox
row and publishes ``marketplace.deliver_webhook`` to Redis. A real worker takes the row and starts the
HTTP request; the receiver holds that request open and the worker is SIGKILLed. The row must still be
pending, and the relay must then deliver it, to the same ``X-ReadRoom-Delivery`` id. The receiver saw the
in-flight request too: delivery is at least once, receivers dedupe on that header.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from marketplace import webhooks
from marketplace.models import Offer, WebhookDelivery
from tests.conftest import require_or_skip
from tests.core.test_celery_worker import _SCRUBBED, BROKER_DB, redis_available, redis_url_for_db
from tests.marketplace.helpers import post
from tests.marketplace.test_webhooks import Receiver, add_endpoint

PRODUCER = """
import sys
import django
django.setup()
from django.conf import settings
from config.celery import app
app.conf.task_default_queue = sys.argv[3]  # before the first publish: every task goes to this test's worker
assert not settings.CELERY_TASK_ALWAYS_EAGER, "the producer must publish to the broker"
from accounts import policy
from accounts.models import User
from marketplace.models import Offer
from marketplace.services.offers import offer_claim
claimant = policy.actor_for_user(User.objects.get(pk=int(sys.argv[2])))
offer_claim(actor=claimant, offer=Offer.objects.get(pk=int(sys.argv[1])))
print("claimed")
"""


def database_url_of_this_test() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate, timeout: float, what: str, log_path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n--- worker log ---\n{log_path.read_text()}")
        time.sleep(0.1)


def forget_queue(broker_url: str, queue: str) -> None:
    """Drop the test's queue and the unacknowledged message the killed worker left (Redis transport)."""
    client = redis.Redis.from_url(broker_url)
    for tag, payload in client.hgetall("unacked").items():
        if queue.encode() in payload:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.delete(queue, f"_kombu.binding.{queue}")
    client.close()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_leaves_the_row_pending_and_the_relay_delivers_it(
        cast, ct_study, reader, settings, tmp_path):
    require_or_skip(redis_available(), "Redis on 127.0.0.1:6379")
    require_or_skip(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    settings.WEBHOOK_ALLOW_PRIVATE = True
    broker_url = redis_url_for_db(BROKER_DB)
    queue = f"readroom-webhooks-{uuid.uuid4().hex[:12]}"
    read_request = post(cast.technologist, ct_study)
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "30",
        "READROOM_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    })
    log_path = tmp_path / "worker.log"
    with Receiver(block_first=True) as receiver:
        endpoint = add_endpoint(cast, receiver.url)
        with log_path.open("w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--concurrency=1",
                 "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO",
                 "-Q", queue, "-n", f"{queue}@%h"],
                cwd=django_settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: " ready." in log_path.read_text(), 60, "the worker to start", log_path)
            producer = subprocess.run([sys.executable, "-c", PRODUCER, str(offer.pk), str(cast.radiologist.pk), queue],
                                      cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True,
                                      timeout=90, check=False)
            assert producer.returncode == 0, f"{producer.stderr}\n--- worker log ---\n{log_path.read_text()}"

            # The worker took the row and its HTTP request is in flight: kill it now.
            wait_for(receiver.arrived.is_set, 60, "the worker's request to reach the receiver", log_path)
            row = WebhookDelivery.objects.get(endpoint=endpoint, event_type="read_request.assigned")
            assert row.status == "pending"
            assert row.attempts == 0
            worker.kill()
            worker.wait(timeout=20)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=20)
            forget_queue(broker_url, queue)
        receiver.release.set()

        row.refresh_from_db()
        assert (row.status, row.attempts, row.delivered_at) == ("pending", 0, None)  # not marked delivered
        in_flight = receiver.requests[0]
        assert in_flight["headers"]["X-ReadRoom-Delivery"] == str(row.event_id)

        # Not before the claim's lease runs out (the dead worker might still have been sending) ...
        assert webhooks.relay_pending() == 0
        # ... then the relay (beat, every minute) sends it again.
        assert webhooks.relay_pending(now=row.next_attempt_at) == 1

        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
        after_kill = receiver.requests[1:]
        assert len(after_kill) == 1
        assert after_kill[0]["headers"]["X-ReadRoom-Delivery"] == str(row.event_id)
        assert webhooks.verify(endpoint.secret, after_kill[0]["headers"]["X-ReadRoom-Signature"], after_kill[0]["body"])
        assert webhooks.relay_pending(now=row.next_attempt_at) == 0
        assert len(receiver.requests) == 2


@pytest.mark.django_db(transaction=True)
def test_a_state_change_commits_while_the_broker_is_down_and_the_relay_delivers_its_event(
        cast, ct_study, reader, settings, tmp_path):
    """The publish after the commit fails (broker on a closed port): the claim still succeeds for its caller
    (no 500 after a committed change), the outbox row waits, and the relay sends it."""
    require_or_skip(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    settings.WEBHOOK_ALLOW_PRIVATE = True
    read_request = post(cast.technologist, ct_study)
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url_of_this_test(),
                "CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "CELERY_RESULT_BACKEND": "",
                "CELERY_TASK_ALWAYS_EAGER": "false", "READROOM_VAR_DIR": str(tmp_path / "var")})
    with Receiver() as receiver:
        endpoint = add_endpoint(cast, receiver.url)
        producer = subprocess.run([sys.executable, "-c", PRODUCER, str(offer.pk), str(cast.radiologist.pk), "celery"],
                                  cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
                                  check=False)
        assert producer.returncode == 0, producer.stderr
        assert producer.stdout.strip().endswith("claimed")
        row = WebhookDelivery.objects.get(endpoint=endpoint, event_type="read_request.assigned")
        assert row.status == "pending"
        assert receiver.requests == []

        assert webhooks.relay_pending() == 1

        row.refresh_from_db()
        assert row.status == "delivered"
        assert [r["headers"]["X-ReadRoom-Delivery"] for r in receiver.requests] == [str(row.event_id)]
