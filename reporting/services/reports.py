"""Writing, releasing and signing a report: the one module that changes a report's state (``TRANSITIONS``).

Every save names the version it was written from; a save from an older version (a second tab) is
refused, never merged. Signing needs a second factor passed within ``settings.FRESH_MFA_SECONDS``
(5 minutes), the template's required fields and an impression; it freezes the content, its signer
and time and a hash of them (PostgreSQL refuses later changes), and moves the read request to
``reported`` through the marketplace's transition service. Delivery forms are built after commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace.models import Kind, Priority, ReadRequest, Status
from marketplace.services import events
from marketplace.services.offers import assignment_start, profile_of, read_request_mark_reported
from marketplace.services.requests import imaging_modalities
from reporting import tasks, templates
from reporting.models import (
    MAX_BODY_CHARS,
    MAX_SECTION_CHARS,
    SECTION_CODES,
    TRANSITIONS,
    Addendum,
    CriticalResult,
    Report,
    ReportTemplate,
)
from reporting.quality import overreads, signing

IMPRESSION = "impression"


def _err(field: str, message: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError.for_field(field, message, code=code)


def _conflict(message: str, code: str, **fields) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=409,
                            fields={k: [str(v)] for k, v in fields.items()} or None)


# --- checks ---------------------------------------------------------------------------------------

def _author(actor: Actor, report: Report) -> None:
    if actor.user is None or report.radiologist.user_id != actor.user.pk:
        raise NotFound("Report not found.")


def _writable(report: Report) -> None:
    if report.status == Report.Status.FINAL:
        raise _conflict("This report is signed: it cannot change. Add an addendum instead.", "report_final",
                        status=report.status)
    if report.read_request.status not in (Status.ASSIGNED, Status.IN_PROGRESS) or \
            report.read_request.assignee_id != report.radiologist_id:
        raise _conflict("This read is no longer assigned to you.", "not_assigned", status=report.read_request.status)


def _second_factor(age_seconds: float | None) -> None:
    if age_seconds is None or age_seconds > settings.FRESH_MFA_SECONDS:
        raise PermissionDenied("Signing needs a fresh second factor: enter the code from your authenticator app "
                               "(it counts for 5 minutes).", code="mfa_reauthentication_required")


def _clean_text(field: str, value, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _err(field, "Must be text.")
    if "\x00" in value:
        raise _err(field, "Contains a NUL character, which a report cannot hold.")
    if len(value) > limit:
        raise _err(field, f"At most {limit:,} characters (this has {len(value):,}).", code="too_long")
    return value.replace("\r\n", "\n")


def clean_content(template: ReportTemplate, sections: dict, fields: dict) -> tuple[dict, dict]:
    """The sections and fields as stored: known codes only, text within limits, field values valid."""
    if not isinstance(sections, dict):
        raise _err("sections", "Sections must be an object of section code → text.")
    if not isinstance(fields, dict):
        raise _err("fields", "Fields must be an object of field code → value.")
    codes = [s["code"] for s in template.sections]
    unknown = sorted(set(sections) - set(codes))
    if unknown:
        raise _err(f"sections.{unknown[0]}", f"The template {template.name!r} has no section {unknown[0]!r}.")
    clean_sections = {code: _clean_text(f"sections.{code}", sections.get(code, ""), MAX_SECTION_CHARS)
                      for code in codes}
    if sum(map(len, clean_sections.values())) > MAX_BODY_CHARS:
        raise _err("sections", f"A report holds at most {MAX_BODY_CHARS:,} characters in all.", code="too_long")
    specs = {f["code"]: f for f in template.fields}
    unknown = sorted(set(fields) - set(specs))
    if unknown:
        raise _err(f"fields.{unknown[0]}", f"The template {template.name!r} has no field {unknown[0]!r}.")
    clean_fields = {}
    for code, spec in specs.items():
        value = _clean_text(f"fields.{code}", fields.get(code, ""), 200).strip()
        if problem := templates.field_error(spec, value):
            raise _err(f"fields.{code}", problem)
        clean_fields[code] = value
    return clean_sections, clean_fields


def check_signable(report: Report) -> None:
    """What signing needs of the content: a second opinion's summary and agreement, required fields, an impression."""
    templates.check_second_opinion(report)
    missing = [f for f in report.template.fields if f.get("required") and not report.fields.get(f["code"])]
    if missing:
        raise ApplicationError("Fill in the required fields before signing: "
                               + ", ".join(f["label"] for f in missing) + ".", code="required",
                               fields={f"fields.{f['code']}": ["This field is required to sign."] for f in missing})
    if IMPRESSION in report.sections and not report.sections[IMPRESSION].strip():
        raise _err(f"sections.{IMPRESSION}", "Write an impression before signing.", code="required")


def _move(report: Report, to: str) -> None:
    if to not in TRANSITIONS[report.status]:
        raise _conflict(f"This report is {report.get_status_display().lower()}: it cannot become {to}.",
                        "invalid_transition", status=report.status)


# --- opening and saving ---------------------------------------------------------------------------

def _initial_sections(template: ReportTemplate, read_request: ReadRequest) -> dict:
    sections = {s["code"]: s.get("normal", "") for s in template.sections}
    history = "\n".join(t for t in (read_request.reason_for_exam, read_request.clinical_history) if t.strip())
    if "clinical_information" in sections and history:
        sections["clinical_information"] = history
    return sections


def _group_ids(report_radiologist) -> list[int]:
    return list(report_radiologist.user.memberships.filter(is_active=True).values_list("organization_id", flat=True))


def default_template(read_request: ReadRequest, radiologist) -> ReportTemplate:
    usable = templates.usable_templates(center_id=read_request.center_id, group_ids=_group_ids(radiologist))
    study = read_request.study
    chosen = templates.choose(usable, modalities=imaging_modalities(study) or read_request.modalities,
                              body_part=read_request.body_part, description=study.study_description,
                              center_id=read_request.center_id, kind=read_request.kind,
                              requested=read_request.requested_template)
    if chosen is None:
        raise ApplicationError("No report template is available for this study.", code="no_template")
    return chosen


@transaction.atomic
def report_open(*, actor: Actor, read_request: ReadRequest, request: HttpRequest | None = None) -> Report:
    """The assignee opens the read: it starts (assigned → in progress) and its draft exists from a template."""
    profile = profile_of(actor)
    if profile is None or read_request.assignee_id != profile.pk:
        raise NotFound("Read request not found.")
    report = Report.objects.select_related("template", "read_request").filter(read_request=read_request).first()
    if report is not None and report.radiologist_id == profile.pk:
        return report
    if read_request.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
        if report is not None:
            return report
        raise _conflict("This read is not open for reporting.", "not_assigned", status=read_request.status)
    if read_request.status == Status.ASSIGNED:
        assignment = read_request.assignments.filter(status="active").first()
        if assignment is not None:
            assignment_start(actor=actor, assignment=assignment, request=request)
    if report is not None:
        # The read was released by the reader who started this draft and claimed by this one: the draft
        # (never signed) is handed over, its version moved on so the first reader's open tab cannot save.
        Report.objects.filter(pk=report.pk).exclude(status=Report.Status.FINAL).update(
            radiologist=profile, version=report.version + 1, updated_at=timezone.now())
        audit_record(action="report.handed_over", actor=actor.user, request=request,
                     organization_id=read_request.center_id, object_type="reporting.report",
                     object_id=str(report.public_id), extra={"from_radiologist": report.radiologist_id})
        report.refresh_from_db()
        return report
    template = default_template(read_request, profile)
    report = Report.objects.create(read_request=read_request, radiologist=profile, template=template,
                                   sections=_initial_sections(template, read_request),
                                   fields={f["code"]: "" for f in template.fields})
    audit_record(action="report.opened", actor=actor.user, request=request, organization_id=read_request.center_id,
                 object_type="reporting.report", object_id=str(report.public_id))
    return report


def _save_if_current(report: Report, version: int, **values) -> Report:
    """Write ``values`` only if the row is still at ``version`` and not final (one UPDATE, no lock)."""
    now = timezone.now()
    updated = (Report.objects.filter(pk=report.pk, version=version)
               .exclude(status=Report.Status.FINAL)
               .update(version=version + 1, updated_at=now, **values))
    if not updated:
        current = Report.objects.filter(pk=report.pk).values_list("version", "status").first()
        if current and current[1] == Report.Status.FINAL:
            raise _conflict("This report is signed: it cannot change. Add an addendum instead.", "report_final")
        raise _conflict(
            f"This draft was saved elsewhere (another tab or window) as version {current[0] if current else '?'}; "
            f"you were editing version {version}. Reload to see the newer text; your change was not saved.",
            "stale_version", version=current[0] if current else "")
    for name, value in values.items():
        setattr(report, name, value)
    report.version, report.updated_at = version + 1, now
    return report


def report_save(*, actor: Actor, report: Report, version: int, sections: dict, fields: dict) -> Report:
    """Autosave: the editor's whole content, written from ``version`` (a stale version is refused)."""
    _author(actor, report)
    _writable(report)
    clean_sections, clean_fields = clean_content(report.template, sections, fields)
    return _save_if_current(report, version, sections=clean_sections, fields=clean_fields)


def report_switch_template(*, actor: Actor, report: Report, version: int, template: ReportTemplate) -> Report:
    """Use another template: text already written is kept by section; empty sections take the new
    normal text; fields the new template lacks are dropped."""
    _author(actor, report)
    _writable(report)
    group_ids = _group_ids(report.radiologist)
    if not templates.usable_templates(center_id=report.read_request.center_id, group_ids=group_ids).filter(
            pk=template.pk).exists():
        raise _err("template", "That template is not available for this read.")
    if not templates.fits_kind(template, report.read_request.kind):
        raise _err("template", "A second opinion is written on a second-opinion template (with the patient's "
                               "plain-language summary)." if report.read_request.kind == Kind.SECOND_OPINION
                   else "A second-opinion template is for a patient's second opinion only.")
    sections = {s["code"]: (report.sections.get(s["code"], "").strip() and report.sections[s["code"]])
                or s.get("normal", "") for s in template.sections}
    fields = {f["code"]: report.fields.get(f["code"], "") for f in template.fields}
    return _save_if_current(report, version, template=template, sections=sections, fields=fields)


# --- preliminary, signing, addenda --------------------------------------------------------------

@dataclass(frozen=True)
class CriticalInput:
    """What the radiologist records about a critical finding when signing (ACR: who, when, how, read back)."""

    category: int
    finding: str
    contacted_name: str
    contacted_at: datetime
    method: str
    read_back: bool


def _check_critical(critical: CriticalInput, now: datetime) -> None:
    if critical.category not in CriticalResult.Category.values:
        raise _err("critical.category", "Choose category 1 (immediate), 2 (urgent) or 3 (non-urgent).")
    if not critical.finding.strip():
        raise _err("critical.finding", "Name the critical finding.", code="required")
    if not critical.contacted_name.strip():
        raise _err("critical.contacted_name", "Record who at the center was contacted.", code="required")
    if critical.contacted_at is None or timezone.is_naive(critical.contacted_at):
        raise _err("critical.contacted_at", "Record when they were contacted (with the time zone).")
    if critical.contacted_at > now + timedelta(minutes=2):
        raise _err("critical.contacted_at", "The contact time is in the future.")
    if critical.method not in CriticalResult.Method.values:
        raise _err("critical.method", "Record how they were contacted.")
    if not critical.read_back:
        raise _err("critical.read_back", "A critical result is communicated only once it was read back.",
                   code="required")
    for name in ("finding", "contacted_name"):
        _clean_text(f"critical.{name}", getattr(critical, name), 500 if name == "finding" else 200)


def content_hash(report: Report, critical: CriticalInput | None) -> str:
    """SHA-256 of what the signature covers: request, template, text, fields, signer, time, critical result."""
    payload = {
        "read_request": str(report.read_request.public_id), "template": report.template.name,
        "sections": report.sections, "fields": report.fields, "signer": report.signer_name,
        "credentials": report.signer_credentials, "signed_at": report.signed_at.isoformat(),
        "critical": {**asdict(critical), "contacted_at": critical.contacted_at.isoformat()} if critical else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


@transaction.atomic
def report_release_preliminary(*, actor: Actor, report: Report, version: int, second_factor_age: float | None,
                               request: HttpRequest | None = None) -> Report:
    """A STAT read's preliminary report: the center sees this text, marked preliminary, until the final."""
    _author(actor, report)
    _writable(report)
    if report.read_request.priority != Priority.STAT:
        raise _conflict("Only a STAT read is released as a preliminary report.", "not_stat",
                        priority=report.read_request.priority)
    _move(report, Report.Status.PRELIMINARY)
    _second_factor(second_factor_age)
    check_signable(report)
    first = report.status == Report.Status.DRAFT
    report = _save_if_current(report, version, status=Report.Status.PRELIMINARY, preliminary_at=timezone.now(),
                              preliminary_sections=report.sections, preliminary_fields=report.fields)
    read_request = report.read_request
    audit_record(action="report.preliminary", actor=actor.user, request=request,
                 organization_id=read_request.center_id, object_type="reporting.report",
                 object_id=str(report.public_id), extra={"version": report.version})
    events.notify(events.center_people(read_request.center),
                  title=f"Preliminary report {'ready' if first else 'updated'}: {read_request.study.study_description}",
                  body="A preliminary report is available; the final report follows.",
                  url=events.request_url(read_request))
    events.webhook_enqueue(read_request, "report.preliminary", extra={"report": str(report.public_id)})
    return report


@transaction.atomic
def report_sign(*, actor: Actor, report: Report, version: int, second_factor_age: float | None,
                critical: CriticalInput | None = None, request: HttpRequest | None = None) -> Report:
    """Sign: the report becomes final and immutable, the read becomes ``reported``, deliveries follow."""
    _author(actor, report)
    report = Report.objects.select_for_update(of=("self",)).select_related(
        "template", "read_request__center", "read_request__study", "radiologist__user").get(pk=report.pk)
    _writable(report)
    if report.version != version:
        raise _conflict(f"This draft was saved elsewhere as version {report.version}; you are signing version "
                        f"{version}. Reload and check the text before signing.", "stale_version",
                        version=report.version)
    _move(report, Report.Status.FINAL)
    _second_factor(second_factor_age)
    check_signable(report)
    now = timezone.now()
    if critical is not None:
        _check_critical(critical, now)
    read_request = report.read_request
    if read_request.status == Status.ASSIGNED:
        raise _conflict("Open the read before signing it.", "not_started", status=read_request.status)
    profile = report.radiologist
    report.status, report.signed_at, report.signed_by = Report.Status.FINAL, now, actor.user
    report.signer_name, report.signer_credentials = profile.name, profile.credentials_line
    report.content_hash = content_hash(report, critical)
    report.template_snapshot = {"name": report.template.name, "sections": report.template.sections,
                                "fields": report.template.fields}
    report.version += 1
    report.save(update_fields=["status", "signed_at", "signed_by", "signer_name", "signer_credentials",
                               "content_hash", "template_snapshot", "version", "updated_at"])
    if critical is not None:
        CriticalResult.objects.create(report=report, read_request=read_request, center_id=read_request.center_id,
                                      category=critical.category, finding=critical.finding.strip(),
                                      contacted_name=critical.contacted_name.strip(),
                                      contacted_at=critical.contacted_at, method=critical.method,
                                      read_back=critical.read_back)
    read_request_mark_reported(read_request=read_request, actor=actor, request=request, at=now)
    audit_record(action="report.signed", actor=actor.user, request=request, organization_id=read_request.center_id,
                 object_type="reporting.report", object_id=str(report.public_id),
                 extra={"content_hash": report.content_hash, "critical": critical.category if critical else None})
    released = signing.after_sign(report, now)  # overreads, two levels, peer review (reporting.quality)
    if report not in released and read_request.levels == 2:
        title = "Critical result (level 1 of 2)" if critical is not None else "Level 1 of 2 signed"
        events.notify(events.center_people(read_request.center),
                      title=f"{title}: {read_request.study.study_description}",
                      body="The report is final once the second reader signs.", url=events.request_url(read_request))
    for shown in released:
        _announce_signed(shown, critical=(critical is not None) if shown is report else
                         CriticalResult.objects.filter(report=shown).exists())
    return report


def _announce_signed(report: Report, *, critical: bool) -> None:
    """The center hears of a final report and receives its forms."""
    read_request = report.read_request
    title = "Critical result" if critical else "Report signed"
    events.notify(events.center_people(read_request.center), title=f"{title}: {read_request.study.study_description}",
                  body=f"Signed by {report.signer_name}.", url=events.request_url(read_request))
    events.webhook_enqueue(read_request, "report.signed", extra={"report": str(report.public_id), "critical": critical})
    _deliver_after_commit(report, 0)


@transaction.atomic
def addendum_sign(*, actor: Actor, report: Report, text: str, second_factor_age: float | None,
                  request: HttpRequest | None = None) -> Addendum:
    """Append a numbered, signed addendum to a final report (the original never changes)."""
    _author(actor, report)
    report = Report.objects.select_for_update(of=("self",)).select_related(
        "read_request__center", "read_request__study", "radiologist__user").get(pk=report.pk)
    if report.status != Report.Status.FINAL:
        raise _conflict("An addendum extends a signed report; this one is not signed yet: edit it instead.",
                        "report_not_final", status=report.status)
    text = _clean_text("text", text, MAX_SECTION_CHARS).strip()
    if not text:
        raise _err("text", "Write the addendum.", code="required")
    _second_factor(second_factor_age)
    now = timezone.now()
    number = (report.addenda.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    profile = report.radiologist
    digest = hashlib.sha256(json.dumps({"report": report.content_hash, "number": number, "text": text,
                                        "signer": profile.name, "signed_at": now.isoformat()}, sort_keys=True,
                                       ensure_ascii=False).encode()).hexdigest()
    addendum = Addendum.objects.create(report=report, number=number, text=text, signed_by=actor.user, signed_at=now,
                                       signer_name=profile.name, signer_credentials=profile.credentials_line,
                                       content_hash=digest)
    read_request = report.read_request
    audit_record(action="report.addendum", actor=actor.user, request=request, organization_id=read_request.center_id,
                 object_type="reporting.report", object_id=str(report.public_id),
                 extra={"number": number, "content_hash": digest})
    events.notify(events.center_people(read_request.center),
                  title=f"Addendum {number} to the report: {read_request.study.study_description}",
                  body=text[:300], url=events.request_url(read_request))
    events.webhook_enqueue(read_request, "report.addendum", extra={"report": str(report.public_id), "number": number})
    _deliver_after_commit(report, number)
    overreads.on_addendum_signed(report, addendum)
    return addendum


def _deliver_after_commit(report: Report, addenda_count: int) -> None:
    report_id = report.pk
    transaction.on_commit(lambda: tasks.deliver_report.delay(report_id, addenda_count))


__all__ = ["SECTION_CODES", "CriticalInput", "addendum_sign", "check_signable", "clean_content", "content_hash",
           "default_template", "report_open", "report_release_preliminary", "report_save", "report_sign",
           "report_switch_template"]
