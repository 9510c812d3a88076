"""The reading workspace: the study in ReadRoom's OHIF Viewer beside the report editor, for the assignee only.

Opening it starts the read and creates the draft (``report_open``). The editor saves itself as JSON
(``report_autosave``: a stale version is refused, never merged); releasing a STAT preliminary, signing and
addenda are form posts that need a second factor passed within ``settings.FRESH_MFA_SECONDS`` — without it
the reader confirms a code and comes back here, with what they had entered in the sign form kept. Anyone
but the assignee gets 404 (``reporting.selectors.assigned_request``).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.mfa import fresh_mfa_url, has_fresh_mfa, seconds_since_mfa
from accounts.views.common import actor_of, page_errors
from core.errors import ApplicationError, NotFound
from core.errors import PermissionDenied as AppPermissionDenied
from marketplace.models import Kind
from reporting import patient, selectors, templates
from reporting.forms import AddendumForm, SignForm, TemplateSwitchForm, VersionForm
from reporting.models import MAX_PATIENT_ANSWER_CHARS, Report
from reporting.quality import selectors as quality_selectors
from reporting.services import reports
from studies.templatetags.studies_viewer import viewer_url

PENDING_KEY = "reporting.pending:{}"  # what the sign / addendum form held when the reader went to confirm a code


def _open(request: HttpRequest, public_id) -> tuple:
    """The actor, the read request assigned to them (404 otherwise) and its report (opened on first use)."""
    actor = actor_of(request)
    read_request = selectors.assigned_request(actor=actor, public_id=public_id)
    return actor, read_request, reports.report_open(actor=actor, read_request=read_request, request=request)


def _workspace_url(read_request) -> str:
    return reverse("report_workspace", args=[read_request.public_id])


def _section_rows(report: Report, problems: dict) -> list[dict]:
    """Each template section with its text and the structured fields shown under it."""
    rows = []
    for section in report.template.sections:
        code = section["code"]
        fields = [{**spec, "value": report.fields.get(spec["code"], ""),
                   "shown": templates.choice_label(spec, report.fields.get(spec["code"], "")),
                   "error": " ".join(problems.get(f"fields.{spec['code']}", []))}
                  for spec in report.template.fields if spec.get("section", "findings") == code]
        rows.append({"code": code, "title": section["title"], "normal": section.get("normal", ""),
                     "text": report.sections.get(code, ""), "fields": fields,
                     "error": " ".join(problems.get(f"sections.{code}", []))})
    return rows


def _usable_templates(actor, read_request) -> list:
    """The templates the reader may switch to: usable at this center and fit for the read's kind."""
    group_ids = list(actor.user.memberships.filter(is_active=True).values_list("organization_id", flat=True))
    return [t for t in templates.usable_templates(center_id=read_request.center_id, group_ids=group_ids)
            .order_by("name") if templates.fits_kind(t, read_request.kind)]


def _render(request, actor, read_request, report, *, sign_form=None, addendum_form=None, problems=None,
            status=200, summary_review: bool = False) -> HttpResponse:
    pending = request.session.pop(PENDING_KEY.format(read_request.public_id), None) or {}
    second_opinion = read_request.kind == Kind.SECOND_OPINION
    # Back from confirming a code: the summary reviewed at this version is shown again with its sign button.
    summary_review = second_opinion and not report.is_final and (
        summary_review or str(pending.get("sign", {}).get("summary_reviewed", "")) == str(report.version))
    zone = request.user.time_zone
    sign_form = sign_form or SignForm(initial={"version": report.version, **pending.get("sign", {})}, zone=zone)
    addendum_form = addendum_form or AddendumForm(initial=pending.get("addendum", {}))
    study = read_request.study
    context = {
        "rr": read_request, "report": report, "study": study, "viewer_src": viewer_url(study.study_instance_uid),
        "sections": _section_rows(report, problems or {}),
        "comparisons": [{"study": s, "url": viewer_url(s.study_instance_uid)}
                        for s in read_request.comparison_studies.all()],
        "earlier": [{"report": r, "url": viewer_url(r.read_request.study.study_instance_uid)}
                    for r in selectors.earlier_reports(read_request=read_request)],
        "macros": {m.name: m.text for m in selectors.macros_of(actor)},
        "template_choices": _usable_templates(actor, read_request) if not report.is_final else [],
        "addenda": list(selectors.addenda_of(report)) if report.is_final else [],
        "critical": getattr(report, "critical_result", None) if report.is_final else None,
        "sign_form": sign_form, "addendum_form": addendum_form, "version_form": VersionForm(),
        "is_stat": read_request.priority == "stat", "fresh_mfa": has_fresh_mfa(request),
        "second_opinion": second_opinion, "summary_review": summary_review,
        "review": patient.summary_review(report) if summary_review else None,
        "patient_question": patient.question_for_reader(actor=actor, read_request=read_request)
        if second_opinion and report.is_final else None, "max_answer_chars": MAX_PATIENT_ANSWER_CHARS,
        "zone": zone,
        # An overread or a peer review reads an earlier report: a peer review blinded (issue 16).
        "original": quality_selectors.under_review(read_request),
        "blinded": read_request.kind == Kind.PEER_REVIEW,
    }
    return render(request, "reporting/workspace.html", context, status=status)


def _refused(request, exc: ApplicationError) -> None:
    """A refusal as a message (the service's messages name what is wrong in the reader's words)."""
    messages.error(request, exc.message)


def _needs_second_factor(request, read_request, pending: dict | None = None) -> HttpResponse:
    """Go confirm a code and come back to the workspace; what was typed into the form waits in the session."""
    if pending:
        request.session[PENDING_KEY.format(read_request.public_id)] = pending
    messages.warning(request, "Signing needs a fresh second factor: enter the code from your authenticator app, "
                              "then press the button again. Your draft is saved.")
    return redirect(fresh_mfa_url(_workspace_url(read_request)))


@login_required
@require_http_methods(["GET"])
@page_errors
def report_workspace(request, public_id):
    """The study beside the report. A read that can no longer be opened goes back to the worklist, saying why."""
    actor = actor_of(request)
    read_request = selectors.assigned_request(actor=actor, public_id=public_id)
    try:
        report = reports.report_open(actor=actor, read_request=read_request, request=request)
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("radiologist_worklist")
    return _render(request, actor, read_request, report)


def _json_error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse({"error": exc.message, "code": exc.code, "fields": exc.fields}, status=exc.status_code)


def _autosave_input(request) -> tuple[int, dict, dict]:
    """The JSON body's shape (the service checks the content): ``{version, sections, fields}``."""
    try:
        body = request.body
    except RequestDataTooBig as exc:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        raise ApplicationError(f"The report is too large to save: a request body holds at most {limit:,} kB.",
                               code="too_large", status_code=413,
                               fields={"sections": ["Too large to save."]}) from exc
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApplicationError("The body must be JSON: {version, sections, fields}.", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise ApplicationError("The body must be a JSON object: {version, sections, fields}.", code="invalid_json")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ApplicationError.for_field("version", "The draft version must be a whole number from 1.")
    return version, data.get("sections", {}), data.get("fields", {})


@login_required
@require_POST
def report_autosave(request, public_id):
    """Save the editor's whole content from the version it started at: JSON in, JSON out
    (``{version, saved_at}``, or ``{error, code, fields}`` with 400, 404, 409 or 413)."""
    try:
        actor = actor_of(request)
        report = selectors.draft_of_assigned_request(actor=actor, public_id=public_id)  # one query, the hot path
        if report is None:
            read_request = selectors.assigned_request(actor=actor, public_id=public_id)  # 404 before the body
            report = reports.report_open(actor=actor, read_request=read_request, request=request)
        version, sections, fields = _autosave_input(request)
        report = reports.report_save(actor=actor, report=report, version=version, sections=sections, fields=fields)
    except ApplicationError as exc:
        return _json_error(exc)
    return JsonResponse({"version": report.version, "saved_at": report.updated_at.isoformat()})


@login_required
@require_POST
@page_errors
def report_template_switch(request, public_id):
    actor, read_request, report = _open(request, public_id)
    form = TemplateSwitchForm(request.POST)
    chosen = None
    if form.is_valid():
        chosen = next((t for t in _usable_templates(actor, read_request)
                       if t.public_id == form.cleaned_data["template"]), None)
    if chosen is None:
        messages.error(request, "Template: choose one of the listed templates.")
        return redirect(_workspace_url(read_request))
    try:
        reports.report_switch_template(actor=actor, report=report, version=form.cleaned_data["version"],
                                       template=chosen)
    except NotFound:
        raise
    except ApplicationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Template switched to {chosen.name}: your text is kept by section.")
    return redirect(_workspace_url(read_request))


@login_required
@require_POST
@page_errors
def report_release_preliminary(request, public_id):
    """STAT only: the center sees the current text, marked preliminary, until the final report."""
    actor, read_request, report = _open(request, public_id)
    form = VersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Version: reload the page and try again.")
        return redirect(_workspace_url(read_request))
    if not has_fresh_mfa(request, max_age=settings.FRESH_MFA_SECONDS):
        return _needs_second_factor(request, read_request)
    try:
        reports.report_release_preliminary(actor=actor, report=report, version=form.cleaned_data["version"],
                                           second_factor_age=seconds_since_mfa(request), request=request)
    except AppPermissionDenied as exc:
        if exc.code != "mfa_reauthentication_required":
            raise
        return _needs_second_factor(request, read_request)
    except NotFound:
        raise
    except ApplicationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Preliminary report released: the center sees it, marked preliminary.")
    return redirect(_workspace_url(read_request))


@login_required
@require_POST
@page_errors
def report_sign(request, public_id):
    """Make the report final (and a critical result, if flagged). Refusals come back on the page, by field."""
    actor, read_request, report = _open(request, public_id)
    form = SignForm(request.POST, zone=request.user.time_zone)
    if not form.is_valid():
        messages.error(request, "Check the critical result: " + "; ".join(
            f"{form.fields[name].label if name in form.fields else name}: {' '.join(errors)}"
            for name, errors in form.errors.items()))
        return _render(request, actor, read_request, report, sign_form=form, status=400)
    reviewed = form.cleaned_data["summary_reviewed"] == form.cleaned_data["version"]
    if read_request.kind == Kind.SECOND_OPINION and not reviewed:
        return _review_summary(request, actor, read_request, report, form)
    if not has_fresh_mfa(request, max_age=settings.FRESH_MFA_SECONDS):
        kept = {k: v for k, v in request.POST.items() if k in form.fields and k != "version"}
        return _needs_second_factor(request, read_request, {"sign": kept})
    try:
        reports.report_sign(actor=actor, report=report, version=form.cleaned_data["version"],
                            second_factor_age=seconds_since_mfa(request), critical=form.critical(), request=request)
    except AppPermissionDenied as exc:
        if exc.code != "mfa_reauthentication_required":
            raise
        return _needs_second_factor(request, read_request)
    except NotFound:
        raise
    except ApplicationError as exc:
        _refused(request, exc)
        form.add_application_error(exc)
        report.refresh_from_db()
        return _render(request, actor, read_request, report, sign_form=form, problems=exc.fields,
                       status=exc.status_code)
    messages.success(request, "Signed: the report is final and on its way to the center.")
    return redirect(_workspace_url(read_request))


def _review_summary(request, actor, read_request, report, form) -> HttpResponse:
    """A second opinion's sign step: the patient's summary and the agreement as the patient will read them,
    to confirm (the summary, the agreement and the rest are checked first, naming what is missing)."""
    report.refresh_from_db()
    try:
        if report.version != form.cleaned_data["version"]:
            raise ApplicationError("This draft was saved elsewhere: reload and check the text before signing.",
                                   code="stale_version", status_code=409)
        reports.check_signable(report)
    except ApplicationError as exc:
        _refused(request, exc)
        form.add_application_error(exc)
        return _render(request, actor, read_request, report, sign_form=form, problems=exc.fields,
                       status=exc.status_code)
    return _render(request, actor, read_request, report, sign_form=form, summary_review=True)


@login_required
@require_POST
@page_errors
def report_addendum(request, public_id):
    """Append a numbered, signed addendum to the final report (same second-factor rule as signing)."""
    actor, read_request, report = _open(request, public_id)
    form = AddendumForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Addendum: " + " ".join(form.errors.get("text", ["write it."])))
        return _render(request, actor, read_request, report, addendum_form=form, status=400)
    if not has_fresh_mfa(request, max_age=settings.FRESH_MFA_SECONDS):
        return _needs_second_factor(request, read_request, {"addendum": {"text": form.cleaned_data["text"]}})
    try:
        addendum = reports.addendum_sign(actor=actor, report=report, text=form.cleaned_data["text"],
                                         second_factor_age=seconds_since_mfa(request), request=request)
    except AppPermissionDenied as exc:
        if exc.code != "mfa_reauthentication_required":
            raise
        return _needs_second_factor(request, read_request, {"addendum": {"text": form.cleaned_data["text"]}})
    except NotFound:
        raise
    except ApplicationError as exc:
        _refused(request, exc)
        form.add_application_error(exc)
        return _render(request, actor, read_request, report, addendum_form=form, status=exc.status_code)
    messages.success(request, f"Addendum {addendum.number} signed: the center is told.")
    return redirect(_workspace_url(read_request))


urlpatterns = [
    path("worklist/reads/<uuid:public_id>/", report_workspace, name="report_workspace"),
    path("worklist/reads/<uuid:public_id>/autosave/", report_autosave, name="report_autosave"),
    path("worklist/reads/<uuid:public_id>/template/", report_template_switch, name="report_template_switch"),
    path("worklist/reads/<uuid:public_id>/preliminary/", report_release_preliminary,
         name="report_release_preliminary"),
    path("worklist/reads/<uuid:public_id>/sign/", report_sign, name="report_sign"),
    path("worklist/reads/<uuid:public_id>/addendum/", report_addendum, name="report_addendum"),
]
