"""Authentication, CSRF, UID checks and error answers shared by every DICOMweb view (STOW, QIDO, WADO).

Wrap each view in ``@dicomweb_view(methods=[...])``. The wrapped view then runs with
``request.actor`` (an ``accounts.policy.Actor``) and ``request.dicomweb_auth`` (``"bearer"`` or
``"session"``), with its ``study_uid`` / ``series_uid`` / ``sop_uid`` arguments already checked.

Who may call:

- the browser session (``request.user``): a same-origin viewer signed in to ReadRoom;
- ``Authorization: Bearer <secret>`` with a personal API token (acts as that user, with their
  memberships) or an organization API key (acts inside its organization with its roles);
- ``?token=<secret>`` (or ``?access_token=``), read as a bearer secret: some viewers (OHIF) put the
  token in the URL when they cannot set headers (e.g. for images fetched by the browser).

Anyone else gets 401 with ``WWW-Authenticate: Bearer``. A person whose roles touch patient data
must have TOTP enrolled (403 otherwise, as everywhere else); session timeouts and the MFA gate of
``accounts.middleware`` apply to session requests before the view runs.

CSRF: bearer requests are exempt (a browser never attaches a bearer secret on its own, so a
forged cross-site request cannot carry one). Session requests with an unsafe method (a STOW-RS
POST) must carry the CSRF token, exactly as a Django form would: a same-origin viewer reads the
``csrftoken`` cookie (``settings.CSRF_COOKIE_NAME``, readable by scripts) and sends it back in the
``X-CSRFToken`` header (``settings.CSRF_HEADER_NAME``); over HTTPS the Referer/Origin must be
same-origin or in ``CSRF_TRUSTED_ORIGINS``. Safe methods (QIDO, WADO) need nothing.

Errors: ``core.errors.ApplicationError`` (and ``NotFound``/``PermissionDenied``), ``Http404``,
malformed-request exceptions and client disconnects become JSON
``{"error": {"code", "message", "fields"}}`` with the matching status; bad input never becomes a 500.
A malformed UID in the path is answered 404 before anything touches the database or storage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import wraps

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from accounts import policy
from accounts.mfa import has_totp
from accounts.middleware import MFA_OK_KEY
from accounts.models import OrganizationApiKey, PersonalApiToken
from accounts.policy import Actor
from accounts.services import credential_for_secret
from core.api import error_body
from core.errors import ApplicationError
from studies.dicom import DicomRejected, uid_problem

logger = logging.getLogger(__name__)

BEARER_QUERY_PARAMS = ("token", "access_token")
UID_ARGUMENTS = {"study_uid": "Study", "series_uid": "Series", "sop_uid": "Instance"}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MFA_MESSAGE = "Your role gives access to patient data: set up two-factor authentication (TOTP) first."
# An organization API key found usable this recently (in this process) is not looked up again; revoking
# it through the application takes effect at once here and within this many seconds everywhere else.
CREDENTIAL_CACHE_SECONDS = 2.0


def error_response(status: int, code: str, message: str, *, fields: dict | None = None,
                   headers: dict | None = None) -> JsonResponse:
    """The one error format, with the HTTP status a DICOMweb client acts on."""
    response = JsonResponse(error_body(code, message, fields), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def unauthorized(message: str, *, invalid_token: bool = False) -> JsonResponse:
    challenge = 'Bearer realm="dicomweb"' + (', error="invalid_token"' if invalid_token else "")
    return error_response(401, "invalid_token" if invalid_token else "not_authenticated", message,
                          headers={"WWW-Authenticate": challenge})


def method_not_allowed(allowed: Iterable[str]) -> JsonResponse:
    allowed = sorted(allowed)
    return error_response(405, "method_not_allowed", f"Use {' or '.join(allowed)} on this resource.",
                          headers={"Allow": ", ".join(allowed)})


def bearer_secret(request: HttpRequest) -> str | None:
    """The bearer secret of the request (header first, then ``?token=``); "" when one is present but empty."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() == "bearer":
        return secret.strip()
    for name in BEARER_QUERY_PARAMS:
        if name in request.GET:
            return request.GET.get(name, "").strip()
    return None


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering the reason instead of rendering a page (as DRF does)."""

    def _reject(self, request, reason):
        return reason


def _csrf_failure(request: HttpRequest) -> str | None:
    check = _CsrfCheck(lambda _request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _mfa_refusal() -> JsonResponse:
    return error_response(403, "mfa_enrollment_required", f"{MFA_MESSAGE} Go to {reverse('mfa_activate_totp')}.")


def authenticate(request: HttpRequest) -> Actor | HttpResponse:
    """The actor of a DICOMweb request, or the response refusing it (401/403)."""
    secret = bearer_secret(request)
    if secret is not None:
        credential = credential_for_secret(secret, max_age=CREDENTIAL_CACHE_SECONDS) if secret else None
        if credential is None:
            return unauthorized("Invalid, expired or revoked API token.", invalid_token=True)
        request.auth = credential
        request.dicomweb_auth = "bearer"
        if isinstance(credential, OrganizationApiKey):
            return policy.actor_for_api_key(credential)
        assert isinstance(credential, PersonalApiToken)  # credential_for_secret returns one of the two
        user = credential.user
        if not user.is_active:
            return unauthorized("This account is disabled.", invalid_token=True)
        request.user = user
        actor = policy.actor_for_user(user)
        if policy.requires_mfa(actor) and not has_totp(user):
            return _mfa_refusal()
        request._readroom_actor = actor
        return actor

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return unauthorized("Sign in, or send an API token or key as 'Authorization: Bearer <secret>'.")
    request.dicomweb_auth = "session"
    if request.method not in SAFE_METHODS:
        reason = _csrf_failure(request)
        if reason:
            return error_response(403, "csrf_failed", f"CSRF check failed ({reason}). A signed-in browser must "
                                  "send the csrftoken cookie's value in the X-CSRFToken header; integrations "
                                  "use a bearer token instead.")
    actor = policy.actor_from_request(request)
    if not request.session.get(MFA_OK_KEY) and policy.requires_mfa(actor) and not has_totp(user):
        return _mfa_refusal()
    return actor


def _check_uids(kwargs: dict) -> HttpResponse | None:
    for name, label in UID_ARGUMENTS.items():
        if name in kwargs:
            problem = uid_problem(kwargs[name])
            if problem:
                # Same answer as a UID that does not exist: nothing is looked up with it.
                return error_response(404, "not_found", f"{label} not found: the UID {problem}.")
    return None


def error_from_exception(exc: Exception) -> HttpResponse | None:
    """The answer for an exception that bad input or a vanished client can cause (None: a real bug)."""
    if isinstance(exc, ApplicationError):
        return error_response(exc.status_code, exc.code, exc.message, fields=exc.fields)
    if isinstance(exc, Http404):
        return error_response(404, "not_found", "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(403, "permission_denied", str(exc) or "You may not do this.")
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, "too_large", str(exc) or "The request is too large.")
    if isinstance(exc, DicomRejected):
        return error_response(400, exc.code, exc.reason)
    if isinstance(exc, (BadRequest, SuspiciousOperation)):
        return error_response(400, "bad_request", str(exc) or "The request is malformed.")
    if isinstance(exc, UnreadablePostError):
        return error_response(400, "unreadable_body", "The request body could not be read (the client went away?).")
    return None


def dicomweb_view(*, methods: Iterable[str] = ("GET",)) -> Callable:
    """Decorate a DICOMweb view: method check, authentication, CSRF for sessions, UID checks, errors."""
    allowed = frozenset(m.upper() for m in methods)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in allowed:
                return method_not_allowed(allowed)
            actor = authenticate(request)
            if isinstance(actor, HttpResponse):
                return actor
            request.actor = actor
            refused = _check_uids(kwargs)
            if refused is not None:
                return refused
            try:
                return view(request, *args, **kwargs)
            except Exception as exc:
                response = error_from_exception(exc)
                if response is None:
                    raise
                if response.status_code >= 500:
                    logger.warning("DICOMweb %s %s failed: %s", request.method, request.path, exc)
                return response

        # The CSRF middleware must let the request through: the wrapper checks CSRF itself, for
        # session requests only (bearer requests cannot be forged by a browser).
        return csrf_exempt(wrapper)

    return decorator


def method_dispatch(**views: Callable) -> Callable:
    """One URL served by several DICOMweb views by method (``/studies``: QIDO GET, STOW POST)."""
    allowed = frozenset(views)

    @csrf_exempt
    def dispatch(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        view = views.get(request.method)
        if view is None:
            return method_not_allowed(allowed)
        return view(request, *args, **kwargs)

    return dispatch
