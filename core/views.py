"""Views with no domain of their own."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_storage() -> str:
    name = default_storage.save(f"healthz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name) as fh:
            if fh.read() != b"ok":
                raise OSError("storage returned different bytes")
    finally:
        default_storage.delete(name)
    return "ok"


def _check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "ok (eager: tasks run in-process)"
    if not settings.CELERY_BROKER_URL:
        raise RuntimeError("tasks are not eager and no CELERY_BROKER_URL/REDIS_URL is set")
    from config.celery import app

    # The URL comes from settings at request time, so the check reports what the settings say.
    with app.connection_for_write(url=settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    return "ok"


CHECKS = {"database": _check_database, "storage": _check_storage, "broker": _check_broker}


@never_cache
@require_GET
def healthz(request):
    """200 when database, storage and broker answer; 503 naming the ones that do not.

    The page is public (load balancers call it), so a failure is reported by name and exception
    class only; the full message, which may hold host names, goes to the log.
    """
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; report it, don't raise
            logger.warning("healthz: %s is down: %s: %s", name, exc.__class__.__name__, exc)
            results[name] = f"down ({exc.__class__.__name__})"
    down = [name for name, value in results.items() if value.startswith("down")]
    return JsonResponse({"status": "down" if down else "ok", "down": down, "checks": results},
                        status=503 if down else 200)


@require_GET
def favicon(request):
    """/favicon.ico, which browsers ask for whatever a page links: the product's icon (an SVG in static/).
    A temporary redirect: the static URL carries the file's hash once collected, and changes with it."""
    response = HttpResponseRedirect(static("img/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response
