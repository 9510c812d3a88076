"""Study pages: the list, a study's page (with the admin's jurisdiction edit, delete and restore) and
the upload page with its one-file-per-request endpoint. Thin: the rules live in studies.policy,
selectors, services and archive."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.core.paginator import Paginator
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from core.api import error_body
from core.errors import NotFound
from core.timefmt import local_time
from studies import page_selectors, policy, selectors, services
from studies.archive import SKIPPED, UploadResult, upload_ingest
from studies.filters import StudyFilter
from studies.forms import JurisdictionForm, StudyDeleteForm, UploadFilesForm
from studies.ingest import Status

PAGE_SIZE = 50
NO_JS_MAX_FILES = 100  # the page without JavaScript posts every chosen file at once


# --- list -----------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def study_list(request):
    """The actor's studies: search, filters, sort, 50 a page; preview rows carry no patient data."""
    actor = actor_of(request)
    if not policy.can_browse_studies(actor):
        raise NotFound()
    can_manage = actor.active_organization is not None and policy.can_manage_studies(actor,
                                                                                     actor.active_organization)
    show_deleted = can_manage and request.GET.get("deleted") == "1"
    studies = page_selectors.study_deleted_list(actor=actor) if show_deleted else selectors.study_list(actor=actor)
    filterset = StudyFilter(request.GET, queryset=studies.select_related("organization"), actor=actor)
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = page_selectors.study_rows(actor=actor, studies=list(page.object_list))
    services.study_list_access_record(actor=actor, rows=rows, filters=filterset.active_filters(), request=request)
    return render(request, "studies/study_list.html", {
        "filterset": filterset,
        "form": filterset.form,
        "page_obj": page,
        "rows": rows,
        "show_deleted": show_deleted,
        "can_manage": can_manage,
        "can_upload": _can_upload(actor),
        "retention_days": settings.STUDY_RETENTION_DAYS,
    })


def _can_upload(actor) -> bool:
    return actor.active_organization is not None and policy.can_send_studies(actor, actor.active_organization)


# --- one study ------------------------------------------------------------------------------------

def _detail_context(actor, access, **extra) -> dict:
    study = access.study
    can_manage = access.is_full and policy.can_manage_studies(actor, study.organization_id)
    purge_after = services.study_purge_after(study)
    context = {
        "access": access,
        "study": page_selectors.study_page_row(access=access),  # a blinded reviewer's counters leave the reports out
        "series": page_selectors.series_rows(access=access),
        "can_manage": can_manage,
        "deleted": study.deleted_at is not None,
        # the images open in the viewer at full access only (a preview shows thumbnails, studies.policy)
        "can_open_viewer": access.is_full and study.deleted_at is None and study.number_of_instances > 0,
        "deleted_by": study.deleted_by if can_manage else None,
        "purge_after": purge_after,
        "restorable": purge_after is not None and purge_after > timezone.now(),
        "audit_events": page_selectors.study_audit_trail(actor=actor, study=study) if can_manage else [],
    }
    if can_manage and "jurisdiction_form" not in extra:
        context["jurisdiction_form"] = JurisdictionForm(initial={"country": study.jurisdiction_country,
                                                                 "region": study.jurisdiction_region})
    context.update(extra)
    return context


@login_required
@require_http_methods(["GET"])
@page_errors
def study_detail(request, public_id):
    """A study's page: header, series with thumbnails, and for the center's admins jurisdiction,
    deletion and the audit trail. Viewing it is an audited access at the actor's level."""
    actor = actor_of(request)
    access = page_selectors.study_get_for_page(actor=actor, public_id=public_id)
    services.study_access_record(actor=actor, access=access, fetched="study_page", request=request)
    return render(request, "studies/study_detail.html", _detail_context(actor, access))


def _managed_study(actor, public_id):
    """The study for an admin-only action: anyone but the center's admins gets 404, as for a missing study."""
    access = page_selectors.study_get_for_page(actor=actor, public_id=public_id)
    if not access.is_full or not policy.can_manage_studies(actor, access.study.organization_id):
        raise NotFound()
    return access


@login_required
@require_POST
@page_errors
def study_jurisdiction(request, public_id):
    actor = actor_of(request)
    access = _managed_study(actor, public_id)
    form = JurisdictionForm(request.POST)
    if form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.study_update_jurisdiction(actor=actor, study=access.study, country=form.cleaned_data["country"],
                                               region=form.cleaned_data["region"], request=request)
        if call.ok:
            messages.success(request, "Jurisdiction saved.")
            return redirect("study_detail", public_id=access.study.public_id)
    return render(request, "studies/study_detail.html",
                  _detail_context(actor, access, jurisdiction_form=form), status=400)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def study_delete(request, public_id):
    """A center admin deletes a study with a reason (asks first on GET); it stays restorable for the
    retention window."""
    actor = actor_of(request)
    access = _managed_study(actor, public_id)
    form = StudyDeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            study = services.study_soft_delete(actor=actor, study=access.study, reason=form.cleaned_data["reason"],
                                               request=request)
        if call.ok:
            until = local_time(services.study_purge_after(study), request.user.time_zone)
            messages.success(request, f"Study deleted. It can be restored until {until}; after that its images "
                                      "are removed for good.")
            return redirect("study_list")
    return render(request, "studies/study_delete.html", {
        "study": page_selectors.study_row(access.study, access.level), "form": form,
        "retention_days": settings.STUDY_RETENTION_DAYS}, status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def study_restore(request, public_id):
    actor = actor_of(request)
    access = _managed_study(actor, public_id)
    with rule_refusals(message_refusal(request)) as call:
        services.study_restore(actor=actor, study=access.study, request=request)
    if call.ok:
        messages.success(request, "Study restored.")
    return redirect("study_detail", public_id=access.study.public_id)


# --- upload ---------------------------------------------------------------------------------------

class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering the reason instead of rendering a page."""

    def _reject(self, request, reason):
        return reason


def _upload_refusal(request: HttpRequest, organization) -> tuple[int, str, str] | None:
    """Check an upload request in the order that keeps a large body from being read for nothing:
    the sender's right, the declared size (before Django parses the multipart body), the body's
    shape, then CSRF (which needs the parsed form)."""
    actor = actor_of(request)
    if organization is None or not policy.can_send_studies(actor, organization):
        return 404, "not_found", "Not found."
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.DICOM_MAX_UPLOAD_BYTES:
        limit_mb = settings.DICOM_MAX_UPLOAD_BYTES // (1024 * 1024)
        return 413, "too_large", (f"The upload is {declared / (1024 * 1024):,.1f} MB, more than the limit of "
                                  f"{limit_mb:,} MB per upload. Split the study into smaller archives or send "
                                  "the files one by one.")
    try:
        request.POST  # noqa: B018 - parse the multipart body now, to answer a malformed one with 400
        request.FILES  # noqa: B018
    except (MultiPartParserError, RequestDataTooBig, TooManyFilesSent, UnreadablePostError) as exc:
        return 400, "bad_upload", f"The upload could not be read: {str(exc)[:200] or exc.__class__.__name__}."
    reason = _CsrfCheck(lambda _request: None).process_view(request, None, (), {})
    if reason is not None:
        return 403, "csrf_failed", f"The upload was refused by the CSRF check ({reason}); reload the page."
    return None


def _study_urls(actor, organization, results: list[UploadResult], url_name: str) -> dict[str, str]:
    uids = set().union(*(r.study_uids for r in results)) if results else set()
    ids = page_selectors.study_public_ids(actor=actor, organization=organization, uids=uids)
    return {uid: reverse(url_name, kwargs={"public_id": public_id}) for uid, public_id in ids.items()}


def _upload_body(result: UploadResult, urls: dict[str, str]) -> dict:
    body = result.as_dict()
    body["study_url"] = urls.get(result.study_instance_uid, "")
    for entry in body.get("entries", ()):
        entry["study_url"] = urls.get(entry["study_instance_uid"], "")
    return body


def upload_file_response(request: HttpRequest, organization, *, study_url_name: str = "study_detail") -> JsonResponse:
    """Ingest the one file of an upload request into ``organization`` (a center, or a patient's own space)
    and answer the uploader's JSON; each study touched is linked through ``study_url_name``."""
    refusal = _upload_refusal(request, organization)
    if refusal is not None:
        status, code, message = refusal
        return JsonResponse(error_body(code, message), status=status)
    form = UploadFilesForm(request.POST, request.FILES)
    if len(request.FILES.getlist("file")) != 1 or not form.is_valid():
        return JsonResponse(error_body("one_file", "Send exactly one file, in the form field “file”."), status=400)
    upload = form.cleaned_data["file"]
    actor = actor_of(request)
    try:
        result = upload_ingest(actor=actor, organization=organization, fileobj=upload,
                               filename=form.cleaned_data.get("path") or upload.name, size=upload.size,
                               skip_non_dicom=form.cleaned_data["in_folder"], request=request)
    except NotFound:
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    finally:
        upload.close()
    response = JsonResponse(_upload_body(result, _study_urls(actor, organization, [result], study_url_name)))
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # checked in _upload_refusal, after the size check (Django's check would parse the body first)
@login_required
@require_POST
def study_upload_file(request):
    """One file per request from the upload page (a DICOM file, a DICOMDIR or a .zip) → JSON:
    ``{file, status: stored|duplicate|conflict|rejected|skipped, reason, study_instance_uid, ...}``.

    Sending the same file again (an interrupted upload retried) answers ``duplicate`` and writes nothing.
    """
    return upload_file_response(request, actor_of(request).active_organization)


def upload_form_post(request: HttpRequest, organization, context: dict, *,
                     study_url_name: str = "study_detail") -> int:
    """The upload page's form posted without JavaScript: every chosen file ingested into ``organization``;
    the results (or the refusal) go into ``context``. Returns the page's status."""
    refusal = _upload_refusal(request, organization)
    if refusal is not None:
        status, _code, message = refusal
        if status == 404:
            raise NotFound()
        context["error"] = message
        return status
    actor = actor_of(request)
    status = 200
    files = request.FILES.getlist("file")[:NO_JS_MAX_FILES]
    if not files:
        context["error"] = "Choose at least one file."
        status = 400
    results = []
    for upload in files:
        try:
            results.append(upload_ingest(actor=actor, organization=organization, fileobj=upload,
                                         filename=upload.name, size=upload.size, request=request))
        finally:
            upload.close()
    urls = _study_urls(actor, organization, results, study_url_name)
    context["results"] = [_upload_body(r, urls) for r in results]
    context["counts"] = _count_statuses(results)
    return status


@csrf_exempt  # the page's no-JavaScript form posts here; checked in _upload_refusal like the endpoint
@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def study_upload(request):
    """The upload page: drag and drop files, folders or a .zip; with JavaScript each file goes to
    ``study_upload_file`` with its own progress bar, without it the form posts every file here."""
    actor = actor_of(request)
    if not _can_upload(actor):
        raise NotFound()
    context = {
        "organization": actor.active_organization,
        "max_upload_bytes": settings.DICOM_MAX_UPLOAD_BYTES,
        "endpoint": reverse("study_upload_file"),
        "form_action": reverse("study_upload"),
        "results": None,
    }
    status = 200
    if request.method == "POST":
        status = upload_form_post(request, actor.active_organization, context)
    return render(request, "studies/upload.html", context, status=status)


def _count_statuses(results: list[UploadResult]) -> dict[str, int]:
    counts = dict.fromkeys((Status.STORED, Status.DUPLICATE, Status.CONFLICT, Status.REJECTED, SKIPPED), 0)
    for result in results:
        for item in result.entries or [result]:
            counts[item.status] = counts.get(item.status, 0) + 1
    return counts
