"""The report as the center sees it: a panel on the read request's page and the downloads.

The marketplace's request page loads the panel by URL name with htmx (the marketplace never imports
reporting). The panel shows the released report — a preliminary clearly marked, or the final with its
signer, time and content hash — its addenda and the critical-result state, and links to every form of
every version. Access as for the request's page (``marketplace.selectors.read_request_get``) and then
``reporting.selectors.visible_report``: the center by role, operations and the reader; a draft shows
nothing to the center. Showing or downloading the report is a read of patient data: audited first.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_http_methods

from accounts.audit import audit_record
from accounts.views.common import actor_of, page_errors
from core.errors import ApplicationError, NotFound
from marketplace import selectors as marketplace_selectors
from reporting import policy, selectors
from reporting.api.report import addenda_param, file_response
from reporting.models import CriticalResult, Delivery, Report
from reporting.quality import overreads
from reporting.services import delivery

FORM_LINKS = (  # (form, label) in the order the panel offers them
    (Delivery.Form.PDF, "PDF"),
    (Delivery.Form.HL7, "HL7 ORU^R01"),
    (Delivery.Form.FHIR, "FHIR DiagnosticReport"),
    (Delivery.Form.SR, "DICOM SR"),
)
CONTENT_TYPES = {  # what a browser download is answered with
    Delivery.Form.PDF: "application/pdf",
    Delivery.Form.HL7: "x-application/hl7-v2+er7; charset=utf-8",
    Delivery.Form.FHIR: "application/fhir+json; charset=utf-8",
    Delivery.Form.SR: "application/dicom",
}


def _panel_context(actor, read_request) -> dict:
    report = selectors.visible_report(actor=actor, read_request=read_request)
    if report is None or report.status == Report.Status.DRAFT:
        return {"rr": read_request, "report": None}
    final = report.status == Report.Status.FINAL
    addenda = list(selectors.addenda_of(report)) if final else []
    critical = (CriticalResult.objects.select_related("acknowledged_by").filter(report=report).first()
                if final else None)
    # The document reads ``report.critical_result``: hand it the row just read (None included).
    Report._meta.get_field("critical_result").set_cached_value(report, critical)
    doc = delivery.report_document(report, len(addenda), addenda_rows=addenda)
    return {
        "rr": read_request, "report": report, "doc": doc, "final": final, "addenda": addenda,
        "held": final and overreads.is_held(report),  # a two-level read waiting for its second reader
        "critical": critical, "forms": FORM_LINKS,
        "can_acknowledge": critical is not None and critical.acknowledged_at is None
        and policy.can_acknowledge(actor, read_request.center_id),
        # newest first: the latest version, then each earlier one
        "versions": list(range(len(addenda), -1, -1)),
    }


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_report(request, public_id):
    """The report panel of a read request (an htmx fragment of the request's page)."""
    actor = actor_of(request)
    read_request = marketplace_selectors.read_request_get(actor=actor, public_id=public_id)
    context = _panel_context(actor, read_request)
    if context["report"] is not None:
        audit_record(action="report.viewed", actor=actor.user, request=request,
                     organization_id=read_request.center_id, object_type="reporting.report",
                     object_id=str(context["report"].public_id), phi_read=True)
    return render(request, "reporting/_report_panel.html", context)


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_report_download(request, public_id, form):
    """One form of the report (``?addenda=N``: that version, else the latest), audited before it is sent."""
    if form not in CONTENT_TYPES:
        raise NotFound("No such report form.")
    actor = actor_of(request)
    read_request = marketplace_selectors.read_request_get(actor=actor, public_id=public_id)
    report = delivery.released_report(actor=actor, read_request=read_request)
    try:
        version = addenda_param(request.GET.get("addenda"))
    except ApplicationError as exc:  # a malformed version number is a link nobody made: 404, as a missing one
        raise NotFound("No such version of the report.") from exc
    got = delivery.report_download(actor=actor, report=report, form=form, addenda_count=version, request=request,
                                   via="page")
    return file_response(got, CONTENT_TYPES[form], inline=form == Delivery.Form.PDF)


urlpatterns = [
    path("reads/<uuid:public_id>/report/", read_request_report, name="read_request_report"),
    path("reads/<uuid:public_id>/report/<slug:form>/", read_request_report_download,
         name="read_request_report_download"),
]
