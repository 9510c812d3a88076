"""The report's rules as its users state them: what a save keeps and refuses (with which message), that a
read the center withdrew can no longer be written, what a signature, a preliminary and an addendum record
(audit, notices, webhooks), and that every hash can be recomputed from what the report keeps."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import AuditEvent, Notification
from core.errors import ApplicationError, NotFound
from marketplace.models import Assignment, Offer, Status, WebhookDelivery
from marketplace.services.offers import assignment_release, offer_claim
from marketplace.services.requests import read_request_cancel
from reporting.models import CriticalResult, Report, ReportTemplate
from reporting.seed_templates import SECOND_OPINION
from reporting.services import reports
from studies.models import Study
from tests.marketplace.helpers import actor, ingest_study, make_radiologist
from tests.marketplace.test_webhooks import add_endpoint
from tests.reporting.conftest import CT_SECTIONS, assigned_read, make_template
from tests.reporting.patient_helpers import claimed_order, opened
from tests.reporting.templates_helpers import seed_platform_templates

pytestmark = pytest.mark.django_db

SIGNER_IP = "203.0.113.9"


def _reader(cast):
    return actor(cast.radiologist)


def _save(cast, report, **sections):
    return reports.report_save(actor=_reader(cast), report=report, version=report.version,
                               sections={**report.sections, **sections}, fields=report.fields)


def _refusal(call, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        call(**kwargs)
    return refused.value


def _request():
    return RequestFactory().post("/", REMOTE_ADDR=SIGNER_IP, HTTP_USER_AGENT="Workstation 7")


def _audit(action: str, report: Report) -> AuditEvent:
    return AuditEvent.objects.get(action=action, object_type="reporting.report", object_id=str(report.public_id))


def _critical(**change) -> reports.CriticalInput:
    values = {"category": 1, "finding": "Acute subdural hematoma", "contacted_name": "Dr Rivera",
              "contacted_at": timezone.now() - timedelta(minutes=3), "method": "phone", "read_back": True, **change}
    return reports.CriticalInput(**values)


def _sign(cast, report, **kwargs):
    profile = report.radiologist
    if not profile.credentials_line:  # what the signature carries beside the name
        profile.credentials_line = "MD, FACR"
        profile.save(update_fields=["credentials_line"])
    kwargs.setdefault("second_factor_age", 10)
    return reports.report_sign(actor=_reader(cast), report=report, version=report.version, **kwargs)


# --- what a save keeps and refuses ------------------------------------------------------------------

def test_a_save_stores_windows_line_endings_as_newlines_and_an_omitted_section_as_empty(cast, draft):
    saved = reports.report_save(actor=_reader(cast), report=draft, version=draft.version,
                                sections={"findings": "Line one.\r\nLine two."}, fields={})
    stored = Report.objects.get(pk=draft.pk)
    assert stored.sections == {"clinical_information": "", "technique": "", "findings": "Line one.\nLine two.",
                               "impression": ""}
    assert saved.sections == stored.sections


def test_text_refusals_name_the_section_and_say_what_is_wrong(cast, draft):
    save = reports.report_save
    base = {"actor": _reader(cast), "report": draft, "version": 1, "fields": {}}
    too_long = _refusal(save, **base, sections={"findings": "a" * 20_001})
    assert (too_long.code, too_long.message) == ("too_long", "At most 20,000 characters (this has 20,001).")
    assert too_long.fields == {"sections.findings": ["At most 20,000 characters (this has 20,001)."]}
    assert _refusal(save, **base, sections={"findings": 12}).fields == {"sections.findings": ["Must be text."]}
    assert _refusal(save, **base, sections={"findings": "a\x00b"}).fields == {
        "sections.findings": ["Contains a NUL character, which a report cannot hold."]}
    assert _refusal(save, **base, sections={"nonsense": "x"}).fields == {
        "sections.nonsense": ["The template 'Test CT head' has no section 'nonsense'."]}
    assert _refusal(save, **base, sections=["findings"]).fields == {
        "sections": ["Sections must be an object of section code → text."]}
    assert _refusal(save, **{**base, "fields": "birads"}, sections={}).fields == {
        "fields": ["Fields must be an object of field code → value."]}
    unknown_field = _refusal(save, **{**base, "fields": {"birads": "2"}}, sections={})
    assert unknown_field.fields == {"fields.birads": ["The template 'Test CT head' has no field 'birads'."]}
    assert Report.objects.get(pk=draft.pk).version == 1


def test_a_report_holds_at_most_100000_characters_in_all(cast):
    sections = [{"code": f"part{n}", "title": f"Part {n}", "normal": ""} for n in range(6)]
    ReportTemplate.objects.update(active=False)
    ReportTemplate.objects.create(name="Long", modalities=["CT"], body_parts=[], sections=sections, fields=[])
    report = reports.report_open(actor=_reader(cast), read_request=assigned_read(cast))
    full = {f"part{n}": "a" * 20_000 for n in range(5)}
    report = reports.report_save(actor=_reader(cast), report=report, version=report.version, sections=full,
                                 fields={})  # exactly 100,000 characters: accepted
    refused = _refusal(reports.report_save, actor=_reader(cast), report=report, version=report.version,
                       sections={**full, "part5": "a"}, fields={})
    assert refused.code == "too_long"
    assert refused.fields == {"sections": ["A report holds at most 100,000 characters in all."]}


def test_saving_one_draft_leaves_the_readers_other_draft_alone(cast, draft):
    other = reports.report_open(actor=_reader(cast), read_request=assigned_read(
        cast, study=ingest_study(cast.center, modality="CT", patient=5)))
    assert (draft.version, other.version) == (1, 1)
    _save(cast, draft, findings="Only this one.")
    untouched = Report.objects.get(pk=other.pk)
    assert untouched.version == 1
    assert untouched.sections["findings"] == "No acute intracranial abnormality."


def test_a_save_that_loses_the_race_to_the_signature_is_refused_as_signed(cast, draft):
    _save(cast, draft, impression="Contusion.")
    open_tab = Report.objects.select_related("read_request", "template", "radiologist").get(pk=draft.pk)
    _sign(cast, Report.objects.get(pk=draft.pk))
    refused = _refusal(reports.report_save, actor=_reader(cast), report=open_tab, version=open_tab.version,
                       sections=open_tab.sections, fields={})
    assert (refused.code, refused.status_code) == ("report_final", 409)
    assert refused.message == "This report is signed: it cannot change. Add an addendum instead."


# --- a read the center withdrew ------------------------------------------------------------------------

def test_a_read_the_center_cancelled_can_no_longer_be_written_released_or_signed(cast, ct_template):
    report = reports.report_open(actor=_reader(cast), read_request=assigned_read(cast, priority="stat"))
    report = _save(cast, report, impression="No bleed.")
    read_request_cancel(actor=actor(cast.center_admin), read_request=report.read_request, reason="duplicate")
    report = Report.objects.select_related("read_request", "template", "radiologist").get(pk=report.pk)
    assert report.read_request.assignee_id == report.radiologist_id  # the cancel keeps who was assigned
    refusals = [
        _refusal(reports.report_save, actor=_reader(cast), report=report, version=report.version,
                 sections=report.sections, fields={}),
        _refusal(reports.report_switch_template, actor=_reader(cast), report=report, version=report.version,
                 template=report.template),
        _refusal(reports.report_release_preliminary, actor=_reader(cast), report=report, version=report.version,
                 second_factor_age=1),
        _refusal(reports.report_sign, actor=_reader(cast), report=report, version=report.version,
                 second_factor_age=1),
    ]
    for refused in refusals:
        assert (refused.code, refused.status_code) == ("not_assigned", 409)
        assert refused.message == "This read is no longer assigned to you."
        assert refused.fields == {"status": ["cancelled"]}
    assert Report.objects.get(pk=report.pk).status == Report.Status.DRAFT


def test_a_cancelled_read_that_was_never_opened_cannot_be_opened(cast, ct_template):
    read_request = assigned_read(cast)
    read_request_cancel(actor=actor(cast.center_admin), read_request=read_request, reason="wrong patient")
    read_request.refresh_from_db()
    refused = _refusal(reports.report_open, actor=_reader(cast), read_request=read_request)
    assert (refused.code, refused.status_code, refused.message) == (
        "not_assigned", 409, "This read is not open for reporting.")
    assert not Report.objects.exists()


def test_the_reader_who_takes_over_a_released_read_can_write_its_report(cast, ct_template):
    successor = make_radiologist()
    read_request = assigned_read(cast)
    reports.report_open(actor=_reader(cast), read_request=read_request)
    assignment_release(actor=_reader(cast), assignment=Assignment.objects.get(read_request=read_request),
                       reason="called away")
    offer_claim(actor=actor(successor.user), offer=Offer.objects.get(read_request=read_request,
                                                                     radiologist=successor))
    read_request.refresh_from_db()
    report = reports.report_open(actor=actor(successor.user), read_request=read_request)
    saved = reports.report_save(actor=actor(successor.user), report=report, version=report.version,
                                sections={"impression": "Normal."}, fields={})
    assert saved.radiologist == successor
    read_request.refresh_from_db()
    assert read_request.status == Status.IN_PROGRESS
    with pytest.raises(ApplicationError):  # the first reader's open tab can no longer save over it
        reports.report_save(actor=_reader(cast), report=report, version=report.version - 1,
                            sections={"impression": "Mine."}, fields={})


def test_a_read_without_a_usable_template_is_refused_and_stays_assigned(cast):
    ReportTemplate.objects.update(active=False)
    read_request = assigned_read(cast)
    refused = _refusal(reports.report_open, actor=_reader(cast), read_request=read_request)
    assert (refused.code, refused.message) == ("no_template", "No report template is available for this study.")
    read_request.refresh_from_db()
    assert read_request.status == Status.ASSIGNED
    assert not Report.objects.exists()


def test_a_new_draft_lists_every_field_of_its_template_empty(cast):
    make_template(name="Mammo", fields=[
        {"code": "birads", "label": "BI-RADS assessment", "kind": "choice", "required": True, "section": "impression",
         "choices": [[str(n), f"Category {n}"] for n in range(7)]}])
    report = reports.report_open(actor=_reader(cast), read_request=assigned_read(cast))
    assert report.fields == Report.objects.get(pk=report.pk).fields == {"birads": ""}


def test_a_study_left_with_no_imaging_modality_takes_the_template_of_the_requests_modalities(cast, ct_template):
    """Only a report object (SR) or a presentation state left in the study: the request still says CT."""
    read_request = assigned_read(cast)
    Study.objects.filter(pk=read_request.study_id).update(modalities_in_study="SR")
    read_request.study.refresh_from_db()
    report = reports.report_open(actor=_reader(cast), read_request=read_request)
    assert report.template == ct_template


def test_opening_is_audited_with_the_center_and_where_it_came_from(cast, ct_template):
    read_request = assigned_read(cast)
    report = reports.report_open(actor=_reader(cast), read_request=read_request, request=_request())
    audit = _audit("report.opened", report)
    assert (audit.actor, audit.organization_id, audit.ip_address) == (cast.radiologist, cast.center.pk, SIGNER_IP)


# --- switching the template ------------------------------------------------------------------------------

def test_switching_the_template_is_the_authors_and_only_to_a_template_of_this_read(cast, draft):
    theirs = make_template(name="Harbor CT", owner=cast.other_center)
    with pytest.raises(NotFound):
        reports.report_switch_template(actor=actor(cast.center_admin), report=draft, version=1, template=theirs)
    refused = _refusal(reports.report_switch_template, actor=_reader(cast), report=draft, version=1, template=theirs)
    assert refused.fields == {"template": ["That template is not available for this read."]}
    assert Report.objects.get(pk=draft.pk).template_id == draft.template_id


def test_a_new_templates_section_the_draft_lacks_starts_with_its_normal_text(cast, draft):
    _save(cast, draft, findings="Written by hand.")
    chest = ReportTemplate.objects.create(
        name="CT with comparison", modalities=["CT"], body_parts=[], fields=[],
        sections=[*CT_SECTIONS, {"code": "comparison", "title": "Comparison", "normal": "None available."},
                  {"code": "addenda_notes", "title": "Notes"}])  # a section without normal text starts empty
    switched = reports.report_switch_template(actor=_reader(cast), report=draft, version=draft.version,
                                              template=chest)
    stored = Report.objects.get(pk=draft.pk)
    assert stored.template == chest
    assert stored.sections["comparison"] == "None available."
    assert stored.sections["addenda_notes"] == ""
    assert stored.sections["findings"] == "Written by hand."
    assert switched.version == stored.version == 3


def test_switching_across_the_second_opinion_line_says_which_way_it_is_refused(cast):
    second_opinion = opened(cast, claimed_order(cast))
    general = ReportTemplate.objects.get(owner__isnull=True, name="General radiology")
    refused = _refusal(reports.report_switch_template, actor=_reader(cast), report=second_opinion,
                       version=second_opinion.version, template=general)
    assert refused.fields == {"template": ["A second opinion is written on a second-opinion template (with the "
                                           "patient's plain-language summary)."]}
    seed_platform_templates()
    primary = reports.report_open(actor=_reader(cast), read_request=assigned_read(cast))
    refused = _refusal(reports.report_switch_template, actor=_reader(cast), report=primary, version=primary.version,
                       template=ReportTemplate.objects.get(owner__isnull=True, name=SECOND_OPINION["name"]))
    assert refused.fields == {"template": ["A second-opinion template is for a patient's second opinion only."]}


# --- required content and critical results ---------------------------------------------------------

def test_signing_refusals_say_which_required_field_or_section_is_missing(cast):
    make_template(name="Mammo", fields=[
        {"code": "birads", "label": "BI-RADS assessment", "kind": "choice", "required": True, "section": "impression",
         "choices": [[str(n), f"Category {n}"] for n in range(7)]}])
    report = reports.report_open(actor=_reader(cast), read_request=assigned_read(cast))
    missing_field = _refusal(_sign, cast=cast, report=report)
    assert (missing_field.code, missing_field.message) == (
        "required", "Fill in the required fields before signing: BI-RADS assessment.")
    assert missing_field.fields == {"fields.birads": ["This field is required to sign."]}
    report = reports.report_save(actor=_reader(cast), report=report, version=report.version,
                                 sections=report.sections, fields={"birads": "2"})
    no_impression = _refusal(_sign, cast=cast, report=report)
    assert no_impression.code == "required"
    assert no_impression.fields == {"sections.impression": ["Write an impression before signing."]}


@pytest.mark.parametrize(("change", "field", "code", "message"), [
    ({"finding": "  "}, "critical.finding", "required", "Name the critical finding."),
    ({"contacted_name": ""}, "critical.contacted_name", "required", "Record who at the center was contacted."),
    ({"contacted_at": timezone.now().replace(tzinfo=None)}, "critical.contacted_at", "invalid",
     "Record when they were contacted (with the time zone)."),
    ({"contacted_at": "later"}, "critical.contacted_at", "invalid", None),
    ({"read_back": False}, "critical.read_back", "required",
     "A critical result is communicated only once it was read back."),
    ({"finding": "x" * 501}, "critical.finding", "too_long", "At most 500 characters (this has 501)."),
    ({"contacted_name": "x" * 201}, "critical.contacted_name", "too_long", "At most 200 characters (this has 201)."),
])
def test_a_critical_result_is_refused_naming_what_is_missing(cast, draft, change, field, code, message):
    if change.get("contacted_at") == "later":
        change = {"contacted_at": timezone.now() + timedelta(seconds=150)}  # past the 2 minutes of clock skew
        message = "The contact time is in the future."
    _save(cast, draft, impression="Subdural hematoma.")
    refused = _refusal(_sign, cast=cast, report=draft, critical=_critical(**change))
    assert (refused.code, refused.fields) == (code, {field: [message]})
    assert not CriticalResult.objects.exists()


def test_a_critical_result_allows_a_minute_of_clock_skew_and_a_finding_of_500_characters(cast, draft):
    _save(cast, draft, impression="Subdural hematoma.")
    contacted = timezone.now() + timedelta(seconds=60)
    signed = _sign(cast, draft, critical=_critical(finding="x" * 500, contacted_at=contacted))
    row = CriticalResult.objects.get(report=signed)
    assert (len(row.finding), row.contacted_at, row.read_request_id) == (500, contacted, signed.read_request_id)


# --- what a signature records ----------------------------------------------------------------------------

def _expected_content_hash(report: Report, critical: CriticalResult | None) -> str:
    """What an outside verifier computes from a signed report and its critical result (the signature's cover)."""
    payload = {
        "read_request": str(report.read_request.public_id), "template": report.template_snapshot["name"],
        "sections": report.sections, "fields": report.fields, "signer": report.signer_name,
        "credentials": report.signer_credentials, "signed_at": report.signed_at.isoformat(),
        "critical": None if critical is None else {
            "category": critical.category, "finding": critical.finding, "contacted_name": critical.contacted_name,
            "contacted_at": critical.contacted_at.isoformat(), "method": critical.method,
            "read_back": critical.read_back},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ":")).encode()).hexdigest()


def test_the_signature_records_signer_snapshot_hash_and_the_reads_reported_time(cast, draft, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    add_endpoint(cast, "http://127.0.0.1:9/ris")
    _save(cast, draft, impression="Subdural hematoma — é.")
    before = draft.version
    signed = _sign(cast, draft, critical=_critical(), request=_request())
    stored = Report.objects.select_related("read_request", "template").get(pk=signed.pk)
    critical = CriticalResult.objects.get(report=stored)
    assert stored.version == before + 1
    assert stored.template_snapshot == {"name": "Test CT head", "sections": CT_SECTIONS, "fields": []}
    assert (stored.signer_name, stored.signer_credentials) == (stored.radiologist.name, "MD, FACR")
    assert stored.content_hash == _expected_content_hash(stored, critical)
    assert stored.read_request.reported_at == stored.signed_at
    audit = _audit("report.signed", stored)
    assert (audit.actor, audit.organization_id, audit.ip_address) == (cast.radiologist, cast.center.pk, SIGNER_IP)
    assert audit.extra == {"content_hash": stored.content_hash, "critical": 1}
    description = stored.read_request.study.study_description
    notice = Notification.objects.get(user=cast.center_admin, title=f"Critical result: {description}")
    assert notice.body == f"Signed by {stored.signer_name}."
    assert notice.url == f"/reads/{stored.read_request.public_id}/"
    [hook] = WebhookDelivery.objects.filter(event_type="report.signed")
    assert (hook.payload["data"]["report"], hook.payload["data"]["critical"]) == (str(stored.public_id), True)


def test_a_report_signed_without_a_critical_result_says_report_signed(cast, draft, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    add_endpoint(cast, "http://127.0.0.1:9/ris")
    _save(cast, draft, impression="Normal.")
    signed = _sign(cast, draft)
    stored = Report.objects.select_related("read_request").get(pk=signed.pk)
    assert stored.content_hash == _expected_content_hash(stored, None)
    assert _audit("report.signed", stored).extra["critical"] is None
    assert Notification.objects.filter(
        user=cast.technologist, title=f"Report signed: {stored.read_request.study.study_description}").exists()
    [hook] = WebhookDelivery.objects.filter(event_type="report.signed")
    assert hook.payload["data"]["critical"] is False


def test_signing_a_stale_version_names_the_current_one(cast, draft):
    current = _save(cast, draft, impression="A.")
    refused = _refusal(reports.report_sign, actor=_reader(cast), report=current, version=1, second_factor_age=1)
    assert (refused.code, refused.fields) == ("stale_version", {"version": ["2"]})


# --- preliminary and addenda -----------------------------------------------------------------------------

def test_a_preliminary_release_is_signable_content_audited_announced_and_sent(cast, ct_template, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    add_endpoint(cast, "http://127.0.0.1:9/ris")
    stat = reports.report_open(actor=_reader(cast), read_request=assigned_read(cast, priority="stat"))
    empty = _refusal(reports.report_release_preliminary, actor=_reader(cast), report=stat, version=stat.version,
                     second_factor_age=1)
    assert "sections.impression" in empty.fields
    stat = _save(cast, stat, impression="No bleed.")
    released = reports.report_release_preliminary(actor=_reader(cast), report=stat, version=stat.version,
                                                  second_factor_age=1, request=_request())
    stored = Report.objects.get(pk=released.pk)
    assert stored.preliminary_at is not None
    assert stored.preliminary_fields == {}
    audit = _audit("report.preliminary", stored)
    assert (audit.actor, audit.organization_id, audit.ip_address, audit.extra) == (
        cast.radiologist, cast.center.pk, SIGNER_IP, {"version": stored.version})
    description = stored.read_request.study.study_description
    assert Notification.objects.filter(user=cast.center_admin, title=f"Preliminary report ready: {description}",
                                       body="A preliminary report is available; the final report follows.").exists()
    [hook] = WebhookDelivery.objects.filter(event_type="report.preliminary")
    assert hook.payload["data"]["report"] == str(stored.public_id)
    again = _save(cast, released, impression="No bleed. Scalp hematoma.")
    reports.report_release_preliminary(actor=_reader(cast), report=again, version=again.version, second_factor_age=1)
    assert Notification.objects.filter(user=cast.center_admin,
                                       title=f"Preliminary report updated: {description}").exists()


def test_a_routine_read_has_no_preliminary(cast, draft):
    refused = _refusal(reports.report_release_preliminary, actor=_reader(cast), report=draft, version=1,
                       second_factor_age=1)
    assert (refused.message, refused.fields) == ("Only a STAT read is released as a preliminary report.",
                                                 {"priority": ["routine"]})


def test_an_addendum_is_written_signed_verifiable_audited_announced_and_sent(cast, draft, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    add_endpoint(cast, "http://127.0.0.1:9/ris")
    _save(cast, draft, impression="A.")
    signed = _sign(cast, draft)
    blank = _refusal(reports.addendum_sign, actor=_reader(cast), report=signed, text="  ", second_factor_age=1)
    assert (blank.code, blank.fields) == ("required", {"text": ["Write the addendum."]})
    addendum = reports.addendum_sign(actor=_reader(cast), report=signed, text="  Compared with prior. ",
                                     second_factor_age=1, request=_request())
    profile = signed.radiologist
    assert (addendum.text, addendum.signed_by, addendum.signer_name, addendum.signer_credentials) == (
        "Compared with prior.", cast.radiologist, profile.name, "MD, FACR")
    stored = Report.objects.get(pk=signed.pk)
    expected = hashlib.sha256(json.dumps(
        {"report": stored.content_hash, "number": 1, "text": "Compared with prior.", "signer": profile.name,
         "signed_at": addendum.signed_at.isoformat()}, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert addendum.content_hash == expected
    audit = _audit("report.addendum", stored)
    assert (audit.actor, audit.organization_id, audit.ip_address, audit.extra) == (
        cast.radiologist, cast.center.pk, SIGNER_IP, {"number": 1, "content_hash": expected})
    description = signed.read_request.study.study_description
    assert Notification.objects.filter(user=cast.technologist, title=f"Addendum 1 to the report: {description}",
                                       body="Compared with prior.",
                                       url=f"/reads/{signed.read_request.public_id}/").exists()
    [hook] = WebhookDelivery.objects.filter(event_type="report.addendum")
    assert (hook.payload["data"]["report"], hook.payload["data"]["number"]) == (str(stored.public_id), 1)
