"""The audit log for platform operations: filter, page, export as CSV, verify the hash chain."""

from __future__ import annotations

import csv
import datetime
import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import selectors, services
from accounts.filters import AuditEventFilter
from accounts.views.common import actor_of, page_errors

PAGE_SIZE = 50
CSV_COLUMNS = ["id", "time_utc", "actor_email", "action", "object_type", "object_id", "organization",
               "ip_address", "user_agent", "outcome", "reason", "extra", "row_hash"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _filtered(request, actor):
    events = selectors.audit_event_list(actor=actor)  # NotFound for everyone but platform staff
    return AuditEventFilter(request.GET or None, queryset=events, actor=actor, time_zone=request.user.time_zone)


@login_required
@require_http_methods(["GET"])
@page_errors
def audit_log(request):
    actor = actor_of(request)
    filterset = _filtered(request, actor)
    # Recorded first, so that the count and the rows of the page below agree (this view is one of them).
    services.audit_log_access_record(actor=actor, action="audit_log.viewed", request=request,
                                     extra={"page": request.GET.get("page") or "1",
                                            "filters": filterset.active_filters()})
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit_log.html", {
        "filterset": filterset,
        "form": filterset.form,
        "page_obj": page,
        "action_names": selectors.audit_action_names(actor=actor),
    })


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in text written by users or clients."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in queryset.iterator(chunk_size=2000):
        yield writer.writerow([
            event.id,
            event.created_at.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
            _cell(event.actor_email), _cell(event.action), _cell(event.object_type), _cell(event.object_id),
            _cell(event.organization.name if event.organization else ""), event.ip_address or "",
            _cell(event.user_agent), event.outcome, _cell(event.reason),
            _cell(json.dumps(event.extra, sort_keys=True, default=str) if event.extra else ""), event.row_hash,
        ])


@login_required
@require_http_methods(["GET"])
@page_errors
def audit_log_export(request):
    """Every row that matches the filters, streamed (no page limit, no memory spike)."""
    actor = actor_of(request)
    filterset = _filtered(request, actor)
    queryset = filterset.qs
    services.audit_log_access_record(actor=actor, action="audit_log.exported", request=request,
                                     extra={"filters": filterset.active_filters()})
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(_csv_rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="readroom-audit-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET"])
@page_errors
def audit_log_verify(request):
    """Check the whole hash chain on demand (it reads every row, so it is not done on each page view)."""
    actor = actor_of(request)
    broken = selectors.audit_chain_broken_rows(actor=actor)
    services.audit_log_access_record(actor=actor, action="audit_log.verified", request=request,
                                     extra={"broken_rows": len(broken), "first_broken": broken[:20]})
    context = {"broken": broken, "broken_preview": broken[:20], "checked_at": timezone.now()}
    template = "accounts/_audit_chain_status.html" if request.htmx else "accounts/audit_verify.html"
    return render(request, template, context)
