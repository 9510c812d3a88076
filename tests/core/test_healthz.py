"""/healthz: 200 when database, storage and broker answer; 503 naming the one that does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client

from tests.conftest import require_or_skip

BASE_DIR = Path(django_settings.BASE_DIR)
REDIS_BASE_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_url_for_db(db: int) -> str:
    return str(urlsplit(REDIS_BASE_URL)._replace(path=f"/{db}").geturl())


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_BASE_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def media_in_tmp(settings, tmp_path):
    storages = dict(settings.STORAGES)
    storages["default"] = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                           "OPTIONS": {"location": str(tmp_path / "media")}}
    settings.STORAGES = storages
    return tmp_path / "media"


def test_healthz_is_200_when_database_storage_and_eager_tasks_are_up(db, media_in_tmp):
    response = Client().get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert set(body["checks"]) == {"database", "storage", "broker"}
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] == "ok"
    assert body["checks"]["broker"].startswith("ok (eager")
    # The storage probe cleans up after itself.
    assert not any(p.is_file() for p in media_in_tmp.rglob("*"))


def test_healthz_is_503_naming_storage_when_the_media_location_cannot_be_written(db, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage folder should be")
    storages = dict(settings.STORAGES)
    storages["default"] = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                           "OPTIONS": {"location": str(blocker)}}
    settings.STORAGES = storages

    response = Client().get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["storage"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"].startswith("down")


def test_healthz_is_503_naming_broker_when_the_broker_refuses_connections(db, settings, media_in_tmp):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = Client().get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"] == "down (OperationalError)"
    # Internal addresses are logged, not shown on a public page.
    assert "127.0.0.1" not in response.content.decode()


def test_healthz_is_503_when_tasks_are_not_eager_and_no_broker_is_configured(db, settings, media_in_tmp):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = ""

    response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]


@pytest.mark.redis
def test_healthz_is_200_with_a_real_redis_broker(db, settings, media_in_tmp):
    require_or_skip(redis_available(), "Redis on 127.0.0.1:6379")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = redis_url_for_db(15)

    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


def test_healthz_is_503_naming_database_when_the_database_server_is_unreachable(tmp_path):
    """A real process whose DATABASE_URL points at a closed port: the database check fails, the rest answer."""
    script = (
        "import django, json\n"
        "django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/healthz')\n"
        "print(json.dumps({'status_code': r.status_code, 'body': r.json()}))\n"
    )
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
                          "CELERY_TASK_ALWAYS_EAGER", "DJANGO_ENV", "DEBUG", "S3_BUCKET"}}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/readroom_unreachable",
        "READROOM_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "ERROR",
    })

    result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status_code"] == 503
    assert outcome["body"]["down"] == ["database"]
    assert outcome["body"]["checks"]["storage"] == "ok"
    assert outcome["body"]["checks"]["broker"].startswith("ok")
