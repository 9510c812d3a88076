"""The Celery app. Eager in the embedded default; a Redis broker when one is configured."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("readroom")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
