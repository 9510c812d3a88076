"""Platform operations' watch list across centers: at risk, unclaimed STATs, STATs with nobody on shift,
late reads; each row one click from its explain page. Refreshed by htmx polling."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.views.common import actor_of, page_errors
from marketplace import selectors

SECTION_TITLES = {
    "at_risk": "At risk (80 % of the time gone, unclaimed)",
    "unclaimed_stat": "Unclaimed STAT",
    "no_reader_on_shift": "STAT with no eligible reader on shift",
    "late": "Late (assigned, past the deadline)",
}
SECTION_LIMIT = 100


def _sections(actor) -> list[dict]:
    return [{"key": key, "title": SECTION_TITLES[key], "rows": list(queryset[:SECTION_LIMIT])}
            for key, queryset in selectors.ops_reads(actor=actor).items()]


@login_required
@require_http_methods(["GET"])
@page_errors
def ops_reads(request):
    return render(request, "marketplace/ops_reads.html", {"sections": _sections(actor_of(request))})


@login_required
@require_http_methods(["GET"])
@page_errors
def ops_reads_rows(request):
    return render(request, "marketplace/_ops_rows.html", {"sections": _sections(actor_of(request))})
