"""Credentialing pages: own credentials and onboarding, staff verification, group grid, center privileges.

Thin: each view checks the input's shape, calls one service or selector and renders. Access is
decided by ``accounts.credentials.policy`` through the selectors and services (404 otherwise).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.credentials import policy as cpolicy
from accounts.credentials import selectors, services
from accounts.credentials.forms import (
    KIND_FORMS,
    DecisionForm,
    DirectoryForm,
    DocumentForm,
    PrivilegeChangeForm,
    PrivilegeGrantForm,
    ProfileForm,
    RequiresPrivilegesForm,
)
from accounts.credentials.models import CredentialKind, RadiologistProfile, VerificationStatus
from accounts.credentials.services import STEPS, onboarding_gaps
from accounts.views.common import active_organization, actor_of, message_refusal, page_errors, rule_refusals
from core.errors import ApplicationError, NotFound

STEP_KINDS = {"licenses": ["license"], "certifications": ["board", "mqsa"], "insurance": ["insurance"]}


def _profile_initial(profile: RadiologistProfile) -> dict:
    return {name: getattr(profile, name) for name in (
        "display_name", "credentials_line", "npi", "home_time_zone", "languages", "subspecialties", "modalities",
        "priorities", "max_concurrent_cases", "bio")}


def _kind_or_404(kind: str) -> str:
    if kind not in KIND_FORMS:
        raise NotFound()
    return kind


def _handle_profile_form(request, actor, profile):
    form = ProfileForm(request.POST or None, request.FILES or None, initial=_profile_initial(profile))
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "photo"}
        with rule_refusals(form.add_application_error) as call:
            services.radiologist_profile_update(actor=actor, data=data, photo=form.cleaned_data.get("photo"),
                                                request=request)
        if call.ok:
            return form, True
    return form, False


# --- the radiologist's own pages --------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def credentials_mine(request):
    """Every item of mine with its state, rejection reason, expiry and documents."""
    actor = actor_of(request)
    if not cpolicy.is_radiologist(actor):
        raise NotFound()
    sheet = selectors.credential_sheet_own(actor=actor)
    return render(request, "accounts/credentials/mine.html", {
        "sheet": sheet, "kinds": [(k, CredentialKind(k).label) for k in KIND_FORMS],
        "today": timezone.now().date(), "gaps": onboarding_gaps(sheet.profile) if sheet else []})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def credential_add(request, kind):
    actor = actor_of(request)
    kind = _kind_or_404(kind)
    if not cpolicy.is_radiologist(actor):
        raise NotFound()
    form = KIND_FORMS[kind](request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            services.credential_create(actor=actor, kind=kind, data=form.cleaned_data, request=request)
        if call.ok:
            messages.success(request, f"{CredentialKind(kind).label} added: it is pending verification.")
            return redirect(request.POST.get("next") or reverse("credentials_mine"))
    return render(request, "accounts/credentials/item_form.html", {
        "form": form, "kind_label": CredentialKind(kind).label, "item": None},
        status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def credential_edit(request, kind, public_id):
    """Edit one of my items; changing a verified item's key fields sends it back to verification."""
    actor = actor_of(request)
    item = selectors.credential_get_own(actor=actor, kind=_kind_or_404(kind), public_id=public_id)
    initial = {name: getattr(item, name) for name in KIND_FORMS[kind].base_fields if hasattr(item, name)}
    if kind == "insurance":
        initial["coverage_jurisdictions"] = " ".join(item.coverage_jurisdictions)
    form = KIND_FORMS[kind](request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            item = services.credential_update(actor=actor, item=item, data=form.cleaned_data, request=request)
        if call.ok:
            messages.success(request, f"Saved. Status: {item.get_status_display()}.")
            return redirect("credentials_mine")
    history = selectors.credential_history(actor=actor, item=item)[:20]
    return render(request, "accounts/credentials/item_form.html", {
        "form": form, "kind_label": CredentialKind(kind).label, "item": item, "history": history,
        "document_form": DocumentForm(), "today": timezone.now().date()}, status=400 if form.errors else 200)


@login_required
@require_POST
@page_errors
def credential_delete(request, kind, public_id):
    actor = actor_of(request)
    item = selectors.credential_get_own(actor=actor, kind=_kind_or_404(kind), public_id=public_id)
    services.credential_delete(actor=actor, item=item, request=request)
    messages.success(request, f"{item.title} was removed.")
    return redirect("credentials_mine")


@login_required
@require_POST
@page_errors
def credential_document_upload(request, kind, public_id):
    actor = actor_of(request)
    item = selectors.credential_get_own(actor=actor, kind=_kind_or_404(kind), public_id=public_id)
    form = DocumentForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a file to upload.")
    else:
        with rule_refusals(message_refusal(request)) as call:
            services.credential_document_upload(actor=actor, item=item, upload=form.cleaned_data["file"],
                                                request=request)
        if call.ok:
            messages.success(request, "Document uploaded.")
    return redirect(request.POST.get("next") or reverse("credential_edit", args=[kind, item.public_id]))


@login_required
@require_http_methods(["GET"])
@page_errors
def credential_document(request, public_id):
    """The document itself, for its owner and platform staff only (audited); never cached."""
    actor = actor_of(request)
    document = selectors.document_get(actor=actor, public_id=public_id)
    services.credential_document_read_record(actor=actor, document=document, request=request)
    response = FileResponse(document.file.open("rb"), content_type=document.content_type)
    response["Content-Disposition"] = f'inline; filename="{document.public_id}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- onboarding wizard ------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def onboarding(request):
    """Resume the wizard where it was left."""
    actor = actor_of(request)
    profile = services.radiologist_profile_ensure(actor=actor)
    return redirect("onboarding_step", step=profile.onboarding_step)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def onboarding_step(request, step):
    actor = actor_of(request)
    profile = services.onboarding_go_to(actor=actor, step=step)
    index = STEPS.index(step)
    next_step = STEPS[index + 1] if index + 1 < len(STEPS) else None
    context = {"step": step, "steps": [(s, RadiologistProfile.OnboardingStep(s).label, i < index, s == step)
                                       for i, s in enumerate(STEPS)],
               "step_number": index + 1, "step_count": len(STEPS), "next_step": next_step,
               "previous_step": STEPS[index - 1] if index else None, "profile": profile}
    if step == "profile":
        form, saved = _handle_profile_form(request, actor, profile)
        if saved and profile.submitted_at:
            # Editing the profile after onboarding: back to the credentials, not through the wizard again.
            messages.success(request, "Profile saved.")
            return redirect("credentials_mine")
        if saved:
            services.onboarding_go_to(actor=actor, step=next_step)
            return redirect("onboarding_step", step=next_step)
        context["form"] = form
    elif step == "submit" and request.method == "POST" and profile.submitted_at:
        messages.info(request, "Your profile is already submitted: changed items go back to verification by "
                               "themselves.")
        return redirect("credentials_mine")
    elif step == "submit" and request.method == "POST":
        try:
            services.onboarding_submit(actor=actor, request=request)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Submitted: platform operations will verify your credentials.")
            return redirect("credentials_mine")
    sheet = selectors.credential_sheet_own(actor=actor)
    items = sheet.all_items if sheet else []
    context["fully_verified"] = bool(items) and all(i.status == VerificationStatus.VERIFIED for i in items)
    context["pending_count"] = sum(1 for i in items if i.status == VerificationStatus.PENDING)
    context.update({"sheet": sheet, "kinds": [(k, CredentialKind(k).label) for k in STEP_KINDS.get(step, [])],
                    "gaps": onboarding_gaps(profile), "document_form": DocumentForm(),
                    "today": timezone.now().date()})
    return render(request, "accounts/credentials/onboarding.html", context,
                  status=400 if context.get("form") is not None and context["form"].errors else 200)


# --- platform operations: verification ----------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def verification_queue(request):
    actor = actor_of(request)
    kind = request.GET.get("kind") or None
    items = selectors.verification_queue(actor=actor, kind=kind if kind in KIND_FORMS else None)
    return render(request, "accounts/credentials/queue.html", {
        "items": items, "kind": kind, "kinds": [(k, CredentialKind(k).label) for k in KIND_FORMS]})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def verification_review(request, kind, public_id):
    """The claimed data beside its documents; verify (how, reference) or reject (reason)."""
    actor = actor_of(request)
    if not cpolicy.is_verifier(actor):
        raise NotFound()
    item = selectors.credential_get(actor=actor, kind=_kind_or_404(kind), public_id=public_id)
    form = DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.credential_transition(obj=item, to=data["decision"], actor=actor, reason=data["reason"],
                                           method=data["method"], reference=data["reference"], request=request)
        except NotFound:
            raise
        except ApplicationError as exc:
            form.add_application_error(exc)
        else:
            messages.success(request, f"{item.title} of {item.radiologist.name}: {data['decision']}.")
            return redirect("verification_queue")
    fields = [(item._meta.get_field(n).verbose_name, getattr(item, n)) for n in item.KEY_FIELDS]
    return render(request, "accounts/credentials/review.html", {
        "item": item, "form": form, "fields": fields,
        "history": selectors.credential_history(actor=actor, item=item)[:20],
        "can_decide": cpolicy.can_verify(actor, item.radiologist)}, status=400 if form.errors else 200)


# --- radiology group admins -----------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def group_credentials(request):
    actor = actor_of(request)
    group = active_organization(actor)
    rows = selectors.group_credential_grid(actor=actor, group=group)
    return render(request, "accounts/credentials/group_grid.html", {
        "group": group, "rows": rows, "kinds": [(k, CredentialKind(k).label) for k in KIND_FORMS]})


# --- centers: directory, public profile, privileges --------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def directory(request):
    actor = actor_of(request)
    form = DirectoryForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    center = actor.active_organization
    can_read_now = bool(filters.get("can_read_now")) and center is not None and \
        center.kind == center.Kind.IMAGING_CENTER
    entries = selectors.directory_search(actor=actor, state=filters.get("state", ""),
                                         subspecialty=filters.get("subspecialty", ""),
                                         modality=filters.get("modality", ""), language=filters.get("language", ""),
                                         can_read_now=can_read_now, center=center if can_read_now else None)
    return render(request, "accounts/credentials/directory.html", {"form": form, "entries": entries,
                                                                  "center": center})


@login_required
@require_http_methods(["GET"])
@page_errors
def radiologist_profile_public(request, public_id):
    actor = actor_of(request)
    public = selectors.public_profile_get(actor=actor, public_id=public_id)
    center = actor.active_organization
    return render(request, "accounts/credentials/public_profile.html", {
        "public": public, "profile": public.profile,
        "can_grant": center is not None and cpolicy.can_manage_privileges(actor, center)})


@login_required
@require_http_methods(["GET"])
@page_errors
def radiologist_photo(request, public_id):
    actor = actor_of(request)
    profile = selectors.profile_photo_get(actor=actor, public_id=public_id)
    response = FileResponse(profile.photo.open("rb"))
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def center_privileges(request):
    """A center admin sees the privileges their center granted and whether it requires them."""
    actor = actor_of(request)
    center = active_organization(actor)
    privileges = selectors.privilege_list(actor=actor, center=center)
    form = RequiresPrivilegesForm(request.POST or None, initial={"requires_privileges": center.requires_privileges})
    if request.method == "POST" and form.is_valid():
        services.center_set_requires_privileges(actor=actor, center=center,
                                                required=form.cleaned_data["requires_privileges"], request=request)
        messages.success(request, "Saved.")
        return redirect("center_privileges")
    return render(request, "accounts/credentials/privileges.html", {
        "center": center, "privileges": privileges, "form": form, "change_form": PrivilegeChangeForm()})


@login_required
@require_POST
@page_errors
def privilege_grant(request):
    actor = actor_of(request)
    center = active_organization(actor)
    form = PrivilegeGrantForm(request.POST)
    if not form.is_valid():
        raise NotFound()
    profile = selectors.radiologist_get_for_center(actor=actor, center=center,
                                                   public_id=form.cleaned_data["radiologist"])
    with rule_refusals(message_refusal(request)) as call:
        services.privilege_grant(actor=actor, center=center, radiologist=profile,
                                 expires_on=form.cleaned_data["expires_on"], request=request)
    if call.ok:
        messages.success(request, f"{profile.name} now holds privileges at {center.name}.")
    return redirect("center_privileges")


@login_required
@require_POST
@page_errors
def privilege_change(request, public_id):
    actor = actor_of(request)
    center = active_organization(actor)
    privilege = selectors.privilege_get(actor=actor, center=center, public_id=public_id)
    form = PrivilegeChangeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("center_privileges")
    if form.cleaned_data["to"] == PrivilegeChangeForm.NO_CHANGE:
        messages.info(request, f"Privileges of {privilege.radiologist.name} left as they are.")
        return redirect("center_privileges")
    with rule_refusals(message_refusal(request)) as call:
        services.privilege_transition(actor=actor, privilege=privilege, to=form.cleaned_data["to"],
                                      reason=form.cleaned_data["reason"], request=request)
    if call.ok:
        messages.success(request, f"Privileges of {privilege.radiologist.name}: {form.cleaned_data['to']}.")
    return redirect("center_privileges")
