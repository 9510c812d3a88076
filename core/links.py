"""Absolute links for emails: the one place that decides which site a link points at.

Within a request, a link follows the site that is actually serving (its scheme, host and port, as
Django sees them: ``ALLOWED_HOSTS`` has already vetted the host). Without one (a Celery task, a
management command), ``settings.SITE_URL`` says where the site lives; ``bin/dev up --port N`` sets it
to the port it serves on.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """``path`` (``/invitations/...``) as an absolute link; an absolute ``path`` is returned unchanged."""
    if not path or "://" in path:
        return path
    if not path.startswith("/"):
        path = "/" + path
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.SITE_URL.rstrip("/") + path
