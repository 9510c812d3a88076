"""The report's life through its one service module: open, autosave with versions, preliminary, sign, addenda."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import ApplicationError, NotFound, PermissionDenied
from marketplace.models import Assignment, Status
from reporting.models import Addendum, CriticalResult, Report
from reporting.services import reports
from tests.marketplace.helpers import actor
from tests.reporting.conftest import assigned_read, make_template

pytestmark = pytest.mark.django_db


def _save(cast, report, **sections):
    return reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                               sections={**report.sections, **sections}, fields=report.fields)


def _sign(cast, report, **kwargs):
    kwargs.setdefault("second_factor_age", 10)
    return reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version, **kwargs)


def test_opening_starts_the_read_and_fills_the_draft_from_the_template(cast, ct_template):
    read_request = assigned_read(cast, clinical_history="Fell from a ladder.", reason_for_exam="Head trauma")
    report = reports.report_open(actor=actor(cast.radiologist), read_request=read_request)
    read_request.refresh_from_db()
    assert read_request.status == Status.IN_PROGRESS
    assert report.status == Report.Status.DRAFT
    assert report.version == 1
    assert report.template == ct_template
    assert report.sections["findings"] == "No acute intracranial abnormality."
    assert report.sections["clinical_information"] == "Head trauma\nFell from a ladder."
    # Opening again returns the same draft.
    assert reports.report_open(actor=actor(cast.radiologist), read_request=read_request).pk == report.pk


def test_only_the_assignee_opens_or_writes(cast, draft):
    with pytest.raises(NotFound):
        reports.report_open(actor=actor(cast.center_admin), read_request=draft.read_request)
    with pytest.raises(NotFound):
        reports.report_save(actor=actor(cast.center_admin), report=draft, version=1, sections={}, fields={})


def test_each_save_moves_the_version_and_a_stale_version_is_refused(cast, draft):
    first = _save(cast, draft, findings="Small left frontal contusion.")
    assert first.version == 2
    other_tab = Report.objects.select_related("read_request", "template").get(pk=draft.pk)
    other_tab.version = 1
    with pytest.raises(ApplicationError) as refused:
        reports.report_save(actor=actor(cast.radiologist), report=other_tab, version=1,
                            sections={"findings": "Overwrite"}, fields={})
    assert refused.value.code == "stale_version"
    assert refused.value.status_code == 409
    assert Report.objects.get(pk=draft.pk).sections["findings"] == "Small left frontal contusion."


@pytest.mark.parametrize(("sections", "field"), [
    ({"nonsense": "x"}, "sections.nonsense"),
    ({"findings": "a" * 20_001}, "sections.findings"),
    ({"findings": "nul\x00byte"}, "sections.findings"),
    ({"findings": 12}, "sections.findings"),
])
def test_bad_content_is_refused_naming_the_field(cast, draft, sections, field):
    with pytest.raises(ApplicationError) as refused:
        reports.report_save(actor=actor(cast.radiologist), report=draft, version=1, sections=sections, fields={})
    assert field in refused.value.fields
    assert Report.objects.get(pk=draft.pk).version == 1


def test_signing_needs_a_fresh_second_factor(cast, draft):
    _save(cast, draft, impression="Contusion.")
    for age in (None, 301):
        with pytest.raises(PermissionDenied) as refused:
            _sign(cast, draft, second_factor_age=age)
        assert refused.value.code == "mfa_reauthentication_required"
    assert Report.objects.get(pk=draft.pk).status == Report.Status.DRAFT


def test_signing_needs_an_impression_and_the_required_fields(cast):
    make_template(name="Mammo", modalities=("CT",), fields=[
        {"code": "birads", "label": "BI-RADS assessment", "kind": "choice", "required": True, "section": "impression",
         "choices": [[str(n), f"Category {n}"] for n in range(7)]}])
    read_request = assigned_read(cast)
    report = reports.report_open(actor=actor(cast.radiologist), read_request=read_request)
    with pytest.raises(ApplicationError) as refused:
        _sign(cast, report)
    assert "fields.birads" in refused.value.fields
    with pytest.raises(ApplicationError) as refused:
        reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                            sections=report.sections, fields={"birads": "7"})
    assert "fields.birads" in refused.value.fields
    reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                        sections=report.sections, fields={"birads": "2"})
    with pytest.raises(ApplicationError) as refused:
        _sign(cast, report)
    assert "sections.impression" in refused.value.fields


def test_signing_freezes_the_report_and_reports_the_read(cast, draft, django_capture_on_commit_callbacks):
    _save(cast, draft, impression="Left frontal contusion.")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signed = _sign(cast, draft)
    assert len(callbacks) >= 1  # the delivery task is queued after commit
    signed.refresh_from_db()
    assert signed.status == Report.Status.FINAL
    assert signed.signed_by == cast.radiologist
    assert len(signed.content_hash) == 64
    assert signed.signed_at is not None
    read_request = signed.read_request
    read_request.refresh_from_db()
    assert read_request.status == Status.REPORTED
    assert Assignment.objects.get(read_request=read_request).status == Assignment.Status.COMPLETED
    with pytest.raises(ApplicationError) as refused:
        reports.report_save(actor=actor(cast.radiologist), report=signed, version=signed.version,
                            sections=signed.sections, fields={})
    assert refused.value.code == "report_final"


def test_the_content_hash_covers_text_signer_and_time(cast, draft):
    _save(cast, draft, impression="A.")
    signed = _sign(cast, draft)
    again = reports.content_hash(signed, None)
    assert again == signed.content_hash
    signed.sections = {**signed.sections, "impression": "B."}
    assert reports.content_hash(signed, None) != again


def test_a_critical_result_is_recorded_with_its_contact(cast, draft):
    _save(cast, draft, impression="Subdural hematoma.")
    critical = reports.CriticalInput(category=1, finding="Acute subdural hematoma", contacted_name="Dr Rivera",
                                     contacted_at=timezone.now() - timedelta(minutes=3), method="phone",
                                     read_back=True)
    signed = _sign(cast, draft, critical=critical)
    row = CriticalResult.objects.get(report=signed)
    assert (row.category, row.contacted_name, row.center_id) == (1, "Dr Rivera", cast.center.pk)
    assert row.acknowledged_at is None


@pytest.mark.parametrize(("change", "field"), [
    ({"read_back": False}, "critical.read_back"),
    ({"contacted_name": " "}, "critical.contacted_name"),
    ({"category": 4}, "critical.category"),
    ({"method": "pigeon"}, "critical.method"),
    ({"contacted_at": timezone.now() + timedelta(hours=1)}, "critical.contacted_at"),
])
def test_an_incomplete_critical_result_refuses_the_signature(cast, draft, change, field):
    _save(cast, draft, impression="Subdural hematoma.")
    values = {"category": 1, "finding": "SDH", "contacted_name": "Dr Rivera", "contacted_at": timezone.now(),
              "method": "phone", "read_back": True, **change}
    with pytest.raises(ApplicationError) as refused:
        _sign(cast, draft, critical=reports.CriticalInput(**values))
    assert field in refused.value.fields
    assert Report.objects.get(pk=draft.pk).status == Report.Status.DRAFT


def test_addenda_are_numbered_and_only_extend_a_final_report(cast, draft):
    with pytest.raises(ApplicationError) as refused:
        reports.addendum_sign(actor=actor(cast.radiologist), report=draft, text="Late note", second_factor_age=1)
    assert refused.value.code == "report_not_final"
    _save(cast, draft, impression="A.")
    signed = _sign(cast, draft)
    first = reports.addendum_sign(actor=actor(cast.radiologist), report=signed, text="Compared with prior.",
                                  second_factor_age=1)
    second = reports.addendum_sign(actor=actor(cast.radiologist), report=signed, text="Discussed with Dr Lee.",
                                   second_factor_age=1)
    assert (first.number, second.number) == (1, 2)
    with pytest.raises(PermissionDenied):
        reports.addendum_sign(actor=actor(cast.radiologist), report=signed, text="x", second_factor_age=None)
    assert Addendum.objects.filter(report=signed).count() == 2


def test_a_preliminary_is_for_stat_reads_only(cast, ct_template):
    routine = reports.report_open(actor=actor(cast.radiologist), read_request=assigned_read(cast))
    with pytest.raises(ApplicationError) as refused:
        reports.report_release_preliminary(actor=actor(cast.radiologist), report=routine, version=1,
                                           second_factor_age=1)
    assert refused.value.code == "not_stat"
    stat = reports.report_open(actor=actor(cast.radiologist), read_request=assigned_read(cast, priority="stat"))
    stat = _save(cast, stat, impression="No bleed.")
    released = reports.report_release_preliminary(actor=actor(cast.radiologist), report=stat, version=stat.version,
                                                  second_factor_age=1)
    assert released.status == Report.Status.PRELIMINARY
    assert released.preliminary_sections["impression"] == "No bleed."
    # Writing goes on after the release; the center keeps seeing the released text until the final.
    edited = _save(cast, released, impression="No bleed. Small scalp hematoma.")
    assert Report.objects.get(pk=edited.pk).preliminary_sections["impression"] == "No bleed."


def test_postgresql_refuses_changes_to_signed_content(postgres_only, cast, draft):
    from django.db import DatabaseError, transaction

    _save(cast, draft, impression="A.")
    signed = _sign(cast, draft)
    reports.addendum_sign(actor=actor(cast.radiologist), report=signed, text="B.", second_factor_age=1)
    for sql in ("UPDATE reporting_report SET sections = '{}' WHERE id = %s",
                "DELETE FROM reporting_report WHERE id = %s",
                "UPDATE reporting_addendum SET text = 'changed' WHERE report_id = %s",
                "DELETE FROM reporting_addendum WHERE report_id = %s"):
        with pytest.raises(DatabaseError, match="signed and cannot change"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(sql, [signed.pk])
