"""The viewer's pages: OHIF's shell under /viewer/… and its configuration at /app-config.js.

The shell is served only to a signed-in person who may open every study named in the URL with full
access (the policy's ``study_get``); each opening is an audited viewer session. Everything the viewer
then fetches goes through DICOMweb, which checks and audits each request again, so a grant revoked
while the viewer is open stops the next request. Access rules: studies.policy.ROUTES.
"""

from __future__ import annotations

import hashlib
import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_http_methods

from accounts.views.common import actor_of, page_errors
from core.errors import NotFound
from studies import page_selectors, policy, selectors, services, viewer
from studies.dicom import uid_problem

MAX_STUDIES_PER_SESSION = 10  # OHIF can lay out several studies side by side; more is not a reading session


def requested_study_uids(request: HttpRequest) -> list[str]:
    """The StudyInstanceUIDs of a viewer URL: OHIF reads the parameter case-insensitively, repeated or
    comma-separated."""
    uids: list[str] = []
    for key in request.GET:
        if key.lower() == "studyinstanceuids":
            for value in request.GET.getlist(key):
                uids.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(uids))


@login_required
@require_http_methods(["GET"])  # each GET opens (and audits) a viewer session
@xframe_options_sameorigin  # the reading workspace shows it in a frame beside the report
@page_errors
def viewer_app(request: HttpRequest, route: str = "") -> HttpResponse:
    """OHIF's shell for ``/viewer/<mode>?StudyInstanceUIDs=…``: 404 for a study the person may not see
    (as for one that does not exist), a page explaining why for a preview-only study, and without any
    study the study list (ReadRoom's list is the worklist: the viewer's own is off). Whoever holds a
    grant (a radiologist's, or operations' break-glass access) opens that study like its center does."""
    actor = actor_of(request)
    uids = requested_study_uids(request)
    if not uids:
        if not policy.can_browse_studies(actor):
            raise NotFound()
        return redirect("study_list")
    if len(uids) > MAX_STUDIES_PER_SESSION or any(uid_problem(uid) for uid in uids):
        raise NotFound("Study not found.")
    accesses = [selectors.study_get(actor=actor, study_uid=uid) for uid in uids]
    preview_only = [access for access in accesses if not access.is_full]
    if preview_only:
        return render(request, "studies/viewer/preview_only.html",
                      {"studies": [page_selectors.study_page_row(access=a) for a in preview_only]}, status=403)
    shell = viewer.index_html()
    if shell is None:
        return render(request, "studies/viewer/not_installed.html", status=503)
    services.viewer_session_record(actor=actor, accesses=accesses, route=route or "viewer", request=request)
    response = HttpResponse(shell.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = viewer.content_security_policy(shell)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "HEAD"])
def viewer_app_config(request: HttpRequest) -> HttpResponse:
    """``window.config`` for OHIF: our DICOMweb root (same origin: the session cookie goes along), the
    request shapes our server answers, ReadRoom's name on the logo, no tour or demo dialogs."""
    dicomweb_root = reverse("dicomweb_studies").removesuffix("/studies")
    data_source = {
        "friendlyName": "ReadRoom",
        "name": "readroom",
        "qidoRoot": dicomweb_root,
        "wadoRoot": dicomweb_root,
        "wadoUriRoot": dicomweb_root,
        "qidoSupportsIncludeField": True,
        "imageRendering": "wadors",
        # Series thumbnails as our server renders them (a few kB of JPEG in an <img>, with the session
        # cookie) rather than each series' middle frame fetched whole, decoded and drawn by the viewer
        # (which on a slow machine still competes with the first image; docs/decisions/0004).
        "thumbnailRendering": "thumbnailDirect",
        "enableStudyLazyLoad": True,
        "supportsFuzzyMatching": False,
        "supportsWildcard": True,
        "staticWado": False,
        "omitQuotationForMultipartRequest": True,
        "dicomUploadEnabled": False,
        "bulkDataURI": {"enabled": True},
    }
    body = render(request, "studies/viewer/app-config.js", {
        "data_source": json.dumps(data_source, indent=8),
        "router_basename": json.dumps(viewer.ROUTER_BASENAME),
        "home_url": json.dumps(reverse("study_list")),
        "service_worker_url": json.dumps(reverse("viewer_service_worker")),
        "service_worker_scope": json.dumps(SERVICE_WORKER_SCOPE),
    }, content_type="application/javascript; charset=utf-8")
    body["Cache-Control"] = "no-cache"
    return body


SERVICE_WORKER_SCOPE = f"{viewer.ROUTER_BASENAME}/"
SERVICE_WORKER_CACHE_PREFIX = "readroom-viewer-"  # its caches: any other of this name is an old version's


@require_http_methods(["GET", "HEAD"])
def viewer_service_worker(request: HttpRequest) -> HttpResponse:
    """ReadRoom's service worker for the viewer's pages (scope ``/viewer/``): it keeps the installed viewer's
    content-hashed scripts, fetched when it installs, and nothing else. Chromium compiles a script cached while
    its service worker installs and keeps the compiled code with it, so the next opening of the viewer neither
    fetches nor compiles them; without it, the compiled code is kept only from the third opening. Public: it
    names files WhiteNoise serves to anyone, and the browser fetches it again (no-cache) to look for updates."""
    scripts = viewer.precached_scripts()  # none while the viewer is not installed: it then keeps nothing
    digest = hashlib.sha256("\n".join(scripts).encode()).hexdigest()[:12]
    body = render(request, "studies/viewer/viewer-sw.js", {
        "cache_name": json.dumps(f"{SERVICE_WORKER_CACHE_PREFIX}{digest}"),
        "cache_prefix": json.dumps(SERVICE_WORKER_CACHE_PREFIX),
        "scripts": json.dumps(scripts, indent=2),
    }, content_type="application/javascript; charset=utf-8")
    body["Cache-Control"] = "no-cache"
    body["Service-Worker-Allowed"] = SERVICE_WORKER_SCOPE
    return body


@require_http_methods(["GET", "HEAD"])
def viewer_init_service_worker(request: HttpRequest) -> HttpResponse:
    """What OHIF's shell loads as ``/init-service-worker.js``: nothing. Theirs unregisters every service
    worker of the origin (ours included); ReadRoom registers its own from ``app-config.js``."""
    body = HttpResponse("/* ReadRoom registers its own service worker for the viewer: /viewer-sw.js */\n",
                        content_type="text/javascript; charset=utf-8")
    body["Cache-Control"] = "no-cache"
    return body
