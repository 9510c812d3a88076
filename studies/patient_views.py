"""A patient's own images (issue 17): the list with thumbnails, one study with a viewer button and the original
report, the upload into their personal space, deletion, and asking a center to share a study.

Only a patient reaches these pages (anyone else: 404). The rules live in studies.policy (a patient owns their
space), selectors, services, archive, original_reports and shares; the upload reuses the center's uploader.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ApplicationErrorFormMixin
from accounts.patients import patient_profile
from accounts.views.common import actor_of, message_refusal, page_errors, rule_refusals
from core.errors import NotFound
from studies import original_reports, page_selectors, policy, selectors, services, shares
from studies.views import upload_file_response, upload_form_post

DETAILS_FIRST = ("Before you bring images, tell us your date of birth and where you live: your residence decides "
                 "which licenses the specialist who reads your images needs.")


def _patient(request):
    """The patient acting, and their profile (None until they gave their details); anyone else: 404."""
    actor = actor_of(request)
    if not actor.is_patient:
        raise NotFound()
    return actor, patient_profile(request.user)


def _details_first(request):
    messages.info(request, DETAILS_FIRST)
    return redirect(f"{reverse('patient_details')}?next={request.path}")


def _patient_study(actor, public_id, *, own: bool = False):
    """A study the patient sees (their space's, or one a center shared); ``own``: of their space only."""
    access = page_selectors.study_get_for_page(actor=actor, public_id=public_id)
    if own and not policy.owns_space(actor, access.study.organization_id):
        raise NotFound()
    return access


# --- my images ------------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def patient_images(request):
    """The patient's studies (own uploads and studies centers shared), each with a thumbnail, and their requests."""
    actor, profile = _patient(request)
    studies = list(selectors.study_list(actor=actor).select_related("organization").order_by("-received_at")[:100])
    rows = page_selectors.study_rows(actor=actor, studies=studies)
    services.study_list_access_record(actor=actor, rows=rows, filters={"page": "my_images"}, request=request)
    share_requests = list(shares.share_requests_of_patient(actor=actor))
    shared_by = {s.study_id: s for s in share_requests if s.status == shares.Status.APPROVED}
    items = [{"row": row, "own": policy.owns_space(actor, study.organization_id), "share": shared_by.get(study.pk)}
             for row, study in zip(rows, studies, strict=True)]
    return render(request, "patients/images.html", {"profile": profile, "items": items,
                                                    "share_requests": share_requests})


@login_required
@require_http_methods(["GET"])
@page_errors
def patient_study(request, public_id):
    """One of the patient's studies: its series as thumbnails, the viewer, the original report, deletion."""
    actor, _profile = _patient(request)
    access = _patient_study(actor, public_id)
    services.study_access_record(actor=actor, access=access, fetched="patient_study_page", request=request)
    return render(request, "patients/study.html", _study_context(actor, access))


def _study_context(actor, access, **extra) -> dict:
    study = access.study
    own = policy.owns_space(actor, study.organization_id)
    context = {
        "study": page_selectors.study_row(study, access.level),
        "series": page_selectors.series_rows(access=access),
        "own": own,
        "can_open_viewer": access.is_full and study.number_of_instances > 0,
        "reports": original_reports.original_reports_of(access=access) if own else [],
        "report_form": OriginalReportForm(),
        "delete_refusal": services.study_delete_refusal(study) if own else None,
        "share": study.share_requests.filter(patient=actor.user, status=shares.Status.APPROVED).first(),
        "max_report_bytes": original_reports.MAX_ORIGINAL_REPORT_BYTES,
    }
    context.update(extra)
    return context


# --- upload ---------------------------------------------------------------------------------------

@csrf_exempt  # the form posted without JavaScript: checked in studies.views._upload_refusal, as for centers
@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def patient_upload(request):
    """The center's uploader, into the patient's own space: files, a CD/DVD export folder or a .zip."""
    actor, profile = _patient(request)
    if profile is None:
        return _details_first(request)
    context = {"organization": profile.space, "max_upload_bytes": settings.DICOM_MAX_UPLOAD_BYTES,
               "endpoint": reverse("patient_upload_file"), "form_action": reverse("patient_upload"), "results": None}
    status = 200
    if request.method == "POST":
        status = upload_form_post(request, profile.space, context, study_url_name="patient_study")
    return render(request, "patients/upload.html", context, status=status)


@csrf_exempt  # checked in studies.views._upload_refusal, after the size check
@login_required
@require_POST
def patient_upload_file(request):
    """One file of the patient's upload → the uploader's JSON (404 for anyone but a patient with details)."""
    actor = actor_of(request)
    profile = patient_profile(request.user) if actor.is_patient else None
    return upload_file_response(request, profile.space if profile else None, study_url_name="patient_study")


# --- the original report ---------------------------------------------------------------------------

class OriginalReportForm(ApplicationErrorFormMixin, forms.Form):
    file = forms.FileField(label="The report you were given", allow_empty_file=True,
                           widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png"}),
                           help_text="A PDF, or a photo of the paper report (JPEG or PNG), up to 20 MB.",
                           error_messages={"required": "Choose the file of the report."})


@login_required
@require_POST
@page_errors
def patient_original_report_upload(request, public_id):
    actor, _profile = _patient(request)
    access = _patient_study(actor, public_id, own=True)
    form = OriginalReportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        with rule_refusals(form.add_application_error) as call:
            original_reports.original_report_add(actor=actor, study=access.study, fileobj=upload, filename=upload.name,
                                                 size=upload.size, request=request)
        if call.ok:
            messages.success(request, "The original report is kept with this study.")
            return redirect("patient_study", public_id=access.study.public_id)
    return render(request, "patients/study.html", _study_context(actor, access, report_form=form), status=400)


@login_required
@require_http_methods(["GET"])
@page_errors
def original_report_file(request, public_id):
    """The file of an original report, for whoever sees its study in full (its patient; the reader later)."""
    actor = actor_of(request)
    report, _access = original_reports.original_report_get(actor=actor, public_id=public_id)
    original_reports.original_report_access_record(actor=actor, report=report, request=request)
    response = FileResponse(report.file.open("rb"), content_type=report.content_type)
    response["Content-Disposition"] = f'inline; filename="original-report.{report.file.name.rsplit(".", 1)[-1]}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# --- delete ---------------------------------------------------------------------------------------

class PatientDeleteForm(ApplicationErrorFormMixin, forms.Form):
    reason = forms.CharField(max_length=300, required=False, label="Why (optional)")


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def patient_study_delete(request, public_id):
    """Delete a study of the patient's own space (asks first); refused while an order on it is open."""
    actor, _profile = _patient(request)
    access = _patient_study(actor, public_id, own=True)
    form = PatientDeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.study_soft_delete(actor=actor, study=access.study, request=request,
                                       reason=form.cleaned_data["reason"] or "deleted by the patient")
        if call.ok:
            messages.success(request, "Your images are deleted. They are removed from our storage for good after "
                                      f"{settings.STUDY_RETENTION_DAYS} days.")
            return redirect("patient_images")
    return render(request, "patients/study_delete.html", {
        "study": page_selectors.study_row(access.study, access.level), "form": form,
        "refusal": services.study_delete_refusal(access.study)}, status=400 if form.errors else 200)


# --- shares from a center ---------------------------------------------------------------------------

class ShareRequestForm(ApplicationErrorFormMixin, forms.Form):
    center = forms.ChoiceField(label="Imaging center", error_messages={"required": "Choose the imaging center."})
    accession_number = forms.CharField(max_length=16, required=False, label="Accession number",
                                       help_text="On your appointment letter or the CD's label, if you have it.")
    study_date = forms.DateField(required=False, label="Date of the scan", input_formats=["%Y-%m-%d"],
                                 widget=forms.DateInput(attrs={"type": "date"}),
                                 error_messages={"invalid": "Enter the date as YYYY-MM-DD."})
    note = forms.CharField(max_length=300, required=False, label="Message to the center",
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].choices = [("", "Choose the center"),
                                         *((str(c.public_id), c.name) for c in shares.share_centers())]


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def patient_share_request(request):
    """Ask an imaging center on ReadRoom to share a study with you (it approves or declines)."""
    actor, profile = _patient(request)
    if profile is None:
        return _details_first(request)
    form = ShareRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with rule_refusals(form.add_application_error) as call:
            share = shares.share_request_create(actor=actor, center_public_id=data["center"],
                                                accession_number=data["accession_number"],
                                                study_date=data["study_date"], note=data["note"], request=request)
        if call.ok:
            messages.success(request, f"Your request is sent to {share.center.name}. The study appears here once "
                                      "they share it.")
            return redirect("patient_images")
    return render(request, "patients/share_request.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def patient_share_revoke(request, public_id):
    actor, _profile = _patient(request)
    share = shares.share_get(actor=actor, public_id=public_id)
    with rule_refusals(message_refusal(request)) as call:
        shares.share_revoke(actor=actor, share=share, request=request)
    if call.ok:
        messages.success(request, f"{share.center.name}'s study is no longer shared with you.")
    return redirect("patient_images")
