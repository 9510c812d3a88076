"""Quality statistics pages (issue 16): a center's readers side by side, a group admin's readers, a
radiologist's own figures, and operations' view of every reader with the outliers; each with charts and a
CSV export of its table (``?format=csv``, same period).

Thin: who sees what is ``reporting.quality.stats_access`` (404 otherwise); the figures are
``reporting.quality.stats``; this module only lays them out.
"""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.text import Truncator
from django.views.decorators.http import require_http_methods

from accounts.models import Organization, Role
from accounts.views.common import actor_of, page_errors
from core.charts import bar_chart
from core.errors import NotFound
from reporting import policy
from reporting.quality import stats
from reporting.quality.stats_access import StatsScope, organization_scope, own_scope, platform_scope
from reporting.quality.stats_forms import OutlierForm, PeriodForm

CSV_HEADER = ["reader", "modality", "reads", "on_time_reads", "on_time_rate", "median_turnaround_minutes", "reviews",
              *(f"score_{code}" for code in stats.Score.values), "agreement_rate",
              *(f"rate_{code}" for code in stats.DISCREPANCIES)]


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def csv_values(row: stats.ReaderRow) -> list:
    """One CSV line: counts as they are, rates as fractions to four places, empty where nothing was counted."""
    median = row.median_turnaround_minutes
    return [row.reader_name, row.modality or "all", row.reads, row.on_time, _fraction(row.on_time_rate),
            "" if median is None else f"{median:.1f}", row.reviews, *(row.scores[code] for code in stats.Score.values),
            _fraction(row.agreement_rate), *(_fraction(value) for value in row.discrepancy_rates.values())]


def _csv_response(filename: str, rows: list[stats.ReaderRow]) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_values(row) for row in rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


def _cells(row: stats.ReaderRow) -> dict:
    return {"row": row, "on_time": _percent(row.on_time_rate), "turnaround": _minutes(row.median_turnaround_minutes),
            "agreement": _percent(row.agreement_rate),
            "discrepancies": [_percent(value) for value in row.discrepancy_rates.values()]}


def _charts(rows: list[stats.ReaderRow], trend: list[stats.MonthPoint]) -> dict:
    readers = [(Truncator(r.reader_name).chars(14), round(r.agreement_rate * 100, 1))
               for r in rows if r.is_overall and r.reviews]
    months = [f"{point.month:%b %y}" for point in trend]
    return {
        "agreement_chart": bar_chart(readers, title="Agreement (RADPEER 1) per reader", bar_width=64,
                                     fmt=lambda v: f"{v:.0f} %") if readers else None,
        "reads_chart": bar_chart(list(zip(months, [p.reads for p in trend], strict=True)), title="Reads per month"),
        # A month without reviews has no rate: drawn as an empty bar labelled "—" (bar_chart prints negatives).
        "trend_chart": bar_chart(list(zip(months, [-1 if p.agreement_rate is None else round(p.agreement_rate * 100, 1)
                                                   for p in trend], strict=True)),
                                 title="Agreement rate per month", fmt=lambda v: "—" if v < 0 else f"{v:.0f} %"),
    }


def _stats_page(request, scope: StatsScope, *, outlier_page: bool = False):
    zone = request.user.time_zone
    form = (OutlierForm if outlier_page else PeriodForm)(request.GET or None)
    period = form.period(zone=zone, today=timezone.localtime(timezone=ZoneInfo(zone)).date())
    rows = stats.reader_stats(**scope.filters, start=period.start, end=period.end)
    if request.GET.get("format") == "csv":
        slug = scope.organization.slug if scope.organization else ("mine" if scope.reader else "platform")
        return _csv_response(f"quality-{slug}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv", rows)
    trend = stats.monthly_trend(**scope.filters, start=period.start, end=period.end, zone=zone)
    context = {"scope": scope, "form": form, "period": period, "table": [_cells(row) for row in rows],
               "months": [{"point": p, "agreement": _percent(p.agreement_rate)} for p in trend],
               "export_query": _export_query(request), **_charts(rows, trend),
               # the center's or group's admins also set its peer-review programme (reporting.quality.settings)
               "can_configure": scope.organization is not None
               and actor_of(request).has_role(scope.organization, Role.ADMIN)}
    if outlier_page:
        margin, min_reviews = form.outlier_choice()
        found = stats.outliers(start=period.start, end=period.end, margin=margin, min_reviews=min_reviews)
        context.update(margin_points=f"{margin * 100:g}", min_reviews=min_reviews, outliers=[
            {"row": o, "rate": _percent(o.rate), "baseline_rate": _percent(o.baseline_rate)} for o in found])
    return render(request, "reporting/quality/stats.html", context)


def _export_query(request) -> str:
    query = request.GET.copy()
    query["format"] = "csv"
    return query.urlencode()


@login_required
@require_http_methods(["GET"])
@page_errors
def quality_stats(request):
    """The active organization's statistics: a center's readers, or a group's (its admins); operations are
    sent to the platform's page."""
    actor = actor_of(request)
    organization = actor.active_organization
    if organization is not None and organization.kind == Organization.Kind.PLATFORM and policy.is_operations(actor):
        return redirect("ops_quality")
    return _stats_page(request, organization_scope(actor=actor, organization=organization))


@login_required
@require_http_methods(["GET"])
@page_errors
def quality_stats_of(request, public_id):
    """A named center's or group's statistics (its own people by role, and operations; 404 for others)."""
    organization = Organization.objects.filter(public_id=public_id).first()
    if organization is None:
        raise NotFound()
    return _stats_page(request, organization_scope(actor=actor_of(request), organization=organization))


@login_required
@require_http_methods(["GET"])
@page_errors
def quality_mine(request):
    """A radiologist's own figures across every center they read for."""
    return _stats_page(request, own_scope(actor=actor_of(request)))


@login_required
@require_http_methods(["GET"])
@page_errors
def ops_quality(request):
    """Operations: every reader side by side and the outliers (margin and fewest reviews chosen)."""
    return _stats_page(request, platform_scope(actor=actor_of(request)), outlier_page=True)


urlpatterns = [
    path("quality/stats/", quality_stats, name="quality_stats"),
    path("quality/stats/mine/", quality_mine, name="quality_mine"),
    path("quality/stats/<uuid:public_id>/", quality_stats_of, name="quality_stats_of"),
    path("ops/quality/stats/", ops_quality, name="ops_quality"),
]
