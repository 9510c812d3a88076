"""Sharing a second opinion with the patient's doctor (issue 17, item 5): the patient's pages and the doctor's.

The patient (the ordering patient only; anyone else 404) makes, lists and revokes shares of a signed order.
The doctor needs no account: ``/shared/<token>/`` asks for the code, and the right code opens the report and
a simple image viewer for ``SHARE_SESSION_SECONDS`` in this browser session. The rules (expiry, revocation,
lock-out, audit) are in ``reporting.shares`` and ``reporting.share_access``; the session here only remembers
which shares this browser has opened, and every request checks the share again.
"""

from __future__ import annotations

import time

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.mfa import fresh_mfa_url, has_fresh_mfa, has_totp
from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from core.errors import ApplicationError, NotFound
from marketplace.order_selectors import order_get
from reporting import share_access, shares

SHARE_SESSION_KEY = "readroom_doctor_shares"
SHARE_SESSION_SECONDS = 30 * 60
IMAGE_MAX_AGE = 300  # seconds: the viewer steps back and forth through slices; a revoked share stops within it


class DoctorShareForm(forms.Form):
    """The shape of the patient's form; the rules (range, email, readiness) are the service's."""

    label = forms.CharField(max_length=shares.MAX_LABEL_CHARS, strip=True)
    doctor_email = forms.CharField(max_length=254, required=False)
    days = forms.IntegerField(initial=shares.DEFAULT_DAYS, min_value=shares.MIN_DAYS, max_value=shares.MAX_DAYS)
    email_code = forms.BooleanField(required=False)

    def add_application_error(self, exc: ApplicationError) -> None:
        for field, errors in (exc.fields or {"__all__": [exc.message]}).items():
            for error in errors:
                self.add_error(field if field in self.fields else None, error)


# --- the patient's pages ----------------------------------------------------------------------------

def _list_page(request: HttpRequest, order, form: DoctorShareForm, *, status: int = 200):
    actor = actor_of(request)
    return render(request, "reporting/share_list.html", {
        "order": order, "form": form, "shares": list(shares.doctor_shares_of(actor=actor, order=order)),
        "report_ready": shares.final_report_of(order) is not None, "max_days": shares.MAX_DAYS,
        "min_days": shares.MIN_DAYS}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def doctor_share_list(request, public_id):
    """The order's shares with their state and last opening; the form that makes a new one. A new share's link
    and code are shown once, on the answer to the POST (not stored, not cached). A patient who turned on a
    second factor confirms a fresh code first, as for reading the report."""
    actor = actor_of(request)
    order = order_get(actor=actor, public_id=public_id)
    if has_totp(request.user) and not has_fresh_mfa(request):
        return redirect(fresh_mfa_url(reverse("doctor_share_list", args=[order.public_id])))
    if request.method == "GET":
        return _list_page(request, order, DoctorShareForm(initial={"days": shares.DEFAULT_DAYS}))
    form = DoctorShareForm(request.POST)
    if not form.is_valid():
        return _list_page(request, order, form, status=400)
    with rule_refusals(form.add_application_error) as call:
        new = shares.doctor_share_create(actor=actor, order=order, request=request, **form.cleaned_data)
    if not call.ok:
        return _list_page(request, order, form, status=400)
    response = render(request, "reporting/share_created.html", {"order": order, "new": new})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
@page_errors
def doctor_share_revoke(request, public_id, share_id):
    """The patient withdraws a share at once; back to the list."""
    actor = actor_of(request)
    order = order_get(actor=actor, public_id=public_id)
    share = shares.doctor_share_get(actor=actor, order=order, public_id=share_id)
    with rule_refusals(message_refusal(request)) as call:
        shares.doctor_share_revoke(actor=actor, share=share, request=request)
    if call.ok:
        messages.success(request, f"The link for {share.label} no longer opens anything.")
    return redirect("doctor_share_list", public_id=order.public_id)


# --- the doctor's pages (no account) ------------------------------------------------------------------

def _opened(request: HttpRequest) -> dict[str, float]:
    now = time.time()
    return {key: until for key, until in request.session.get(SHARE_SESSION_KEY, {}).items() if until > now}


def _is_opened(request: HttpRequest, share) -> bool:
    return str(share.public_id) in _opened(request)


def _remember_opened(request: HttpRequest, share) -> None:
    opened = _opened(request)
    opened[str(share.public_id)] = time.time() + SHARE_SESSION_SECONDS
    request.session.cycle_key()  # a session fixed before the code was entered does not inherit the opening
    request.session[SHARE_SESSION_KEY] = opened


def _closed_page(request: HttpRequest, message: str, status: int):
    response = render(request, "reporting/share_closed.html", {"message": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _code_page(request: HttpRequest, share, *, error: str = "", status: int = 200):
    response = render(request, "reporting/share_code.html", {"share": share, "error": error}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _viewer_position(request: HttpRequest, series: list) -> tuple[object | None, int]:
    """The series asked for (else the first) and the 1-based image in it (bad or missing values: the first)."""
    chosen = next((s for s in series if s.series_instance_uid == request.GET.get("series")),
                  series[0] if series else None)
    try:
        index = int(request.GET.get("image", "1"))
    except ValueError:
        index = 1
    count = len(chosen.images) if chosen else 0
    return chosen, min(max(index, 1), max(count, 1))


@require_http_methods(["GET", "POST"])
def shared_report(request, token):
    """The doctor's page: the code form until this browser has opened the share, then the report and images."""
    try:
        share = share_access.share_for_token(token)
        share_access.check_open(share)
    except share_access.ShareClosed as exc:
        return _closed_page(request, exc.message, 410)
    except NotFound as exc:
        return _closed_page(request, exc.message, 404)
    if request.method == "POST":
        try:
            share = share_access.doctor_share_unlock(share=share, code=request.POST.get("code"), request=request)
        except share_access.ShareClosed as exc:
            return _closed_page(request, exc.message, 410)
        except ApplicationError as exc:
            return _code_page(request, share, error=exc.message, status=400)
        _remember_opened(request, share)
        return redirect("shared_report", token=token)
    if not _is_opened(request, share):
        return _code_page(request, share)
    opinion = share_access.shared_report(share=share, request=request)
    series = share_access.shared_series(share=share)
    chosen, index = _viewer_position(request, series)
    response = render(request, "reporting/share_report.html", {
        "share": share, "token": token, "opinion": opinion, "series": series, "chosen": chosen, "index": index,
        "image": chosen.images[index - 1] if chosen and chosen.images else None,
        "image_base": reverse("shared_report", args=[token]) + "image/"})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def shared_image(request, token, sop_uid):
    """One image of the shared study as a JPEG, for a browser that has opened the share; else 404 (410 once
    the share is closed). ``?frame=N`` picks a frame of a multi-frame image."""
    try:
        share = share_access.share_for_token(token)
        if not _is_opened(request, share):
            raise NotFound("Open the link with its code first.")
        frame = request.GET.get("frame", "1")
        if not frame.isdigit():
            raise ApplicationError.for_field("frame", "frame must be a whole number from 1.")
        data = share_access.shared_image(share=share, sop_uid=sop_uid, frame=int(frame), request=request)
    except ApplicationError as exc:  # NotFound 404, ShareClosed 410, undecodable 422: a plain answer, never a 500
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = f"private, max-age={IMAGE_MAX_AGE}"
    return response


urlpatterns = [
    path("my/opinions/<uuid:public_id>/shares/", doctor_share_list, name="doctor_share_list"),
    path("my/opinions/<uuid:public_id>/shares/<uuid:share_id>/revoke/", doctor_share_revoke,
         name="doctor_share_revoke"),
    path("shared/<str:token>/", shared_report, name="shared_report"),
    path("shared/<str:token>/image/<str:sop_uid>.jpg", shared_image, name="shared_image"),
]

__all__ = ["urlpatterns"]
