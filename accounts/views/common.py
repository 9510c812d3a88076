"""What every page view shares: the actor, the active organization, and errors as pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from types import SimpleNamespace

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts import policy
from accounts.mfa import fresh_mfa_url, has_fresh_mfa, has_totp
from accounts.models import Organization
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from core.errors import PermissionDenied as AppPermissionDenied


def actor_of(request: HttpRequest) -> Actor:
    return policy.actor_from_request(request)


def active_organization(actor: Actor) -> Organization:
    """The organization the page acts on; a person without one (a patient) gets 404."""
    if actor.active_organization is None:
        raise NotFound()
    return actor.active_organization


def page_errors(view):
    """Turn the application's NotFound / PermissionDenied into Django's 404 / 403 pages."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except AppPermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc

    return wrapper


def fresh_mfa_if_enrolled(view):
    """Like ``accounts.mfa.fresh_mfa_required``, for pages open to people without TOTP too.

    Someone with TOTP must have confirmed a code recently; someone without (a patient, a finance
    user) has no second factor to confirm, so the check does not apply to them.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if has_totp(request.user) and not has_fresh_mfa(request):
            return redirect(fresh_mfa_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper


def safe_next(request: HttpRequest, candidate: str | None, default: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()},
                                                     require_https=request.is_secure()):
        return candidate
    return default


def render_secret_once(request: HttpRequest, *, title: str, credential, secret: str, kind: str, back_url_name: str,
                       back_label: str):
    """The one page that shows a new token or key. The secret exists only in this response."""
    response = render(request, "accounts/secret_created.html", {
        "title": title, "credential": credential, "secret": secret, "kind": kind,
        "back_url": reverse(back_url_name), "back_label": back_label})
    response["Cache-Control"] = "no-store"
    return response


@contextmanager
def rule_refusals(report: Callable[[ApplicationError], None]) -> Iterator[SimpleNamespace]:
    """Run a service call from a page; a business rule it refuses goes to ``report`` and ``call.ok`` is False.

    NotFound and PermissionDenied are not refusals to show on the page: they propagate to the 404/403
    pages (``page_errors``). Use: ``with rule_refusals(form.add_application_error) as call: ...``
    then ``if call.ok: ...``.
    """
    call = SimpleNamespace(ok=False)
    try:
        yield call
    except (NotFound, AppPermissionDenied):
        raise
    except ApplicationError as exc:
        report(exc)
    else:
        call.ok = True


def message_refusal(request: HttpRequest) -> Callable[[ApplicationError], None]:
    """Report a refused business rule as an error message on the next page."""
    return lambda exc: messages.error(request, exc.message)
