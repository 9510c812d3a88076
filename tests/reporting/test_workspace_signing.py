"""Signing, preliminary and addenda from the workspace: the fresh second factor, required fields, stale versions,
critical results entered in the reader's time, and signed content that neither the application nor
PostgreSQL lets change."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from core.errors import ApplicationError
from marketplace.models import Status
from reporting.models import Addendum, CriticalResult, Report
from reporting.services import reports
from tests.marketplace.helpers import actor
from tests.reporting.conftest import assigned_read
from tests.reporting.workspace_helpers import autosave, fielded_template, url

pytestmark = pytest.mark.django_db


def _written(client, report, **sections) -> int:
    """Autosave an impression (what signing needs) and return the new version."""
    response = autosave(client, report.read_request, version=report.version,
                        sections={**report.sections, "impression": "No acute abnormality.", **sections},
                        fields=report.fields)
    assert response.status_code == 200, response.content
    return response.json()["version"]


def _signed(cast, draft, login):
    client = login(cast.radiologist)
    version = _written(client, draft)
    assert client.post(url("report_sign", draft.read_request), {"version": version}).status_code == 302
    draft.refresh_from_db()
    assert draft.status == Report.Status.FINAL
    return client, draft


def test_signing_makes_the_report_final_and_the_page_read_only_with_add_addendum(cast, draft, login):
    client = login(cast.radiologist)
    version = _written(client, draft)
    response = client.post(url("report_sign", draft.read_request), {"version": version}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Signed: the report is final" in page
    assert "Final report" in page
    assert "Add addendum" in page
    assert 'id="report-editor"' not in page  # no editor any more
    assert "No acute abnormality." in page
    draft.refresh_from_db()
    assert draft.status == Report.Status.FINAL
    assert draft.signed_by == cast.radiologist
    assert draft.content_hash in page
    draft.read_request.refresh_from_db()
    assert draft.read_request.status == Status.REPORTED


def test_signing_without_a_fresh_second_factor_goes_to_confirm_a_code_and_comes_back(cast, draft, login, totp_code):
    client = login(cast.radiologist, fresh_mfa=False)
    version = _written(client, draft)
    workspace = url("report_workspace", draft.read_request)
    local = timezone.now().astimezone(ZoneInfo(cast.radiologist.time_zone)) - timedelta(minutes=5)
    critical = {"category": "2", "finding": "Subdural hematoma", "contacted_name": "Dr Ward",
                "contacted_at": local.strftime("%Y-%m-%dT%H:%M"), "method": "phone", "read_back": "on"}
    response = client.post(url("report_sign", draft.read_request), {"version": version, **critical})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('mfa_reauthenticate')}?{urlencode({'next': workspace})}"
    draft.refresh_from_db()
    assert draft.status == Report.Status.DRAFT
    assert not CriticalResult.objects.exists()
    # The code confirmed, the reader is back on the workspace with what they had entered in the sign form.
    done = client.post(response["Location"], {"code": totp_code(cast.totp_secrets["radiologist"]), "next": workspace})
    assert done.status_code == 302
    assert done["Location"] == workspace
    back = client.get(workspace).content.decode()
    assert "Signing needs a fresh second factor" in back
    assert 'value="Subdural hematoma"' in back
    assert 'value="Dr Ward"' in back
    assert client.post(url("report_sign", draft.read_request), {"version": version, **critical}).status_code == 302
    draft.refresh_from_db()
    assert draft.status == Report.Status.FINAL


def test_signing_with_a_required_field_missing_is_refused_naming_the_field(cast, login):
    fielded_template()
    read_request = assigned_read(cast)
    client = login(cast.radiologist)
    client.get(url("report_workspace", read_request))
    report = Report.objects.get(read_request=read_request)
    version = _written(client, report)
    response = client.post(url("report_sign", read_request), {"version": version})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Fill in the required fields before signing: BI-RADS assessment." in page
    assert "This field is required to sign." in page  # on the field itself
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT
    # With the field filled it signs.
    filled = autosave(client, read_request, version=version, sections=report.sections,
                      fields={**report.fields, "birads": "2"})
    assert filled.status_code == 200
    assert client.post(url("report_sign", read_request), {"version": filled.json()["version"]}).status_code == 302
    report.refresh_from_db()
    assert report.status == Report.Status.FINAL
    assert report.fields["birads"] == "2"


def test_signing_a_stale_version_is_refused(cast, draft, login):
    client = login(cast.radiologist)
    version = _written(client, draft)
    _written(client, Report.objects.get(pk=draft.pk), findings="Changed in another tab.")
    response = client.post(url("report_sign", draft.read_request), {"version": version})
    assert response.status_code == 409
    assert "saved elsewhere as version" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Report.Status.DRAFT


def test_a_critical_result_is_recorded_with_the_contact_time_converted_from_the_readers_zone(cast, draft, login):
    client = login(cast.radiologist)
    version = _written(client, draft)
    zone = ZoneInfo(cast.radiologist.time_zone)
    local = (timezone.now().astimezone(zone) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    response = client.post(url("report_sign", draft.read_request), {
        "version": version, "category": "1", "finding": "Large subdural hematoma", "contacted_name": "Dr Ward",
        "contacted_at": local.strftime("%Y-%m-%dT%H:%M"), "method": "phone", "read_back": "on"})
    assert response.status_code == 302
    critical = CriticalResult.objects.get(report=draft)
    assert critical.category == 1
    assert critical.contacted_at == local.astimezone(ZoneInfo("UTC"))
    assert critical.read_back is True
    page = client.get(url("report_workspace", draft.read_request)).content.decode()
    assert "Large subdural hematoma" in page


@pytest.mark.parametrize(("missing", "message"), [
    ("finding", "Critical finding: required for a critical result."),
    ("contacted_at", "When (your local time): required for a critical result."),
    ("read_back", "A critical result is communicated only once it was read back."),
])
def test_an_incomplete_critical_result_is_refused_naming_what_is_missing(cast, draft, login, missing, message):
    client = login(cast.radiologist)
    version = _written(client, draft)
    local = timezone.now().astimezone(ZoneInfo(cast.radiologist.time_zone)) - timedelta(minutes=3)
    data = {"version": version, "category": "1", "finding": "Bleed", "contacted_name": "Dr Ward",
            "contacted_at": local.strftime("%Y-%m-%dT%H:%M"), "method": "phone", "read_back": "on"}
    del data[missing]
    response = client.post(url("report_sign", draft.read_request), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Report.Status.DRAFT
    assert not CriticalResult.objects.exists()


def test_an_addendum_to_a_draft_is_refused(cast, draft, login):
    response = login(cast.radiologist).post(url("report_addendum", draft.read_request), {"text": "Also: sinusitis."})
    assert response.status_code == 409
    assert "this one is not signed yet" in response.content.decode()
    assert not Addendum.objects.exists()


def test_an_addendum_needs_a_fresh_second_factor_and_is_numbered(cast, draft, login):
    _, report = _signed(cast, draft, login)
    stale = login(cast.radiologist, fresh_mfa=False)
    response = stale.post(url("report_addendum", draft.read_request), {"text": "Also: sinusitis."})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert not Addendum.objects.exists()
    fresh = login(cast.radiologist)
    added = fresh.post(url("report_addendum", draft.read_request), {"text": "Also: sinusitis."}, follow=True)
    assert "Addendum 1 signed" in added.content.decode()
    assert "Also: sinusitis." in added.content.decode()
    assert Addendum.objects.get(report=report).number == 1


def test_a_signed_report_cannot_be_edited_through_the_page_or_the_service(cast, draft, login):
    client, report = _signed(cast, draft, login)
    refused = autosave(client, draft.read_request, version=report.version, sections={"impression": "Changed."})
    assert refused.status_code == 409
    assert refused.json()["code"] == "report_final"
    with pytest.raises(ApplicationError) as service:
        reports.report_save(actor=actor(cast.radiologist), report=report, version=report.version,
                            sections={"impression": "Changed."}, fields={})
    assert service.value.code == "report_final"
    report.refresh_from_db()
    assert report.sections["impression"] == "No acute abnormality."


def test_preliminary_is_for_stat_reads_only(cast, draft, login):
    client = login(cast.radiologist)
    version = _written(client, draft)
    response = client.post(url("report_release_preliminary", draft.read_request), {"version": version}, follow=True)
    assert "Only a STAT read is released as a preliminary report." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Report.Status.DRAFT


def test_a_stat_read_is_released_as_preliminary_with_a_fresh_second_factor(cast, ct_template, login):
    read_request = assigned_read(cast, priority="stat")
    stale = login(cast.radiologist, fresh_mfa=False)
    assert 'id="preliminary-form"' in stale.get(url("report_workspace", read_request)).content.decode()
    report = Report.objects.get(read_request=read_request)
    version = _written(stale, report)
    redirected = stale.post(url("report_release_preliminary", read_request), {"version": version})
    assert redirected["Location"].startswith(reverse("mfa_reauthenticate"))
    response = login(cast.radiologist).post(url("report_release_preliminary", read_request), {"version": version},
                                            follow=True)
    assert "Preliminary report released" in response.content.decode()
    report.refresh_from_db()
    assert report.status == Report.Status.PRELIMINARY
    assert report.preliminary_sections["impression"] == "No acute abnormality."


@pytest.mark.postgres
@pytest.mark.parametrize("statement", [
    "UPDATE reporting_report SET sections = '{}' WHERE id = %s",
    "DELETE FROM reporting_report WHERE id = %s",
    "UPDATE reporting_addendum SET text = 'changed' WHERE report_id = %s",
    "DELETE FROM reporting_addendum WHERE report_id = %s",
])
def test_postgresql_refuses_a_raw_update_or_delete_of_a_signed_report_or_addendum(
        postgres_only, cast, draft, login, statement):
    _, report = _signed(cast, draft, login)
    reports.addendum_sign(actor=actor(cast.radiologist), report=report, text="Later note.", second_factor_age=1)
    with pytest.raises(DatabaseError, match="signed and cannot change"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(statement, [report.pk])
    report.refresh_from_db()
    assert report.sections["impression"] == "No acute abnormality."
    assert Addendum.objects.get(report=report).text == "Later note."


def test_a_draft_row_stays_writable_in_the_database(cast, draft):
    """The trigger freezes only final rows: the draft's own autosave UPDATE goes through (both databases)."""
    Report.objects.filter(pk=draft.pk).update(sections={"findings": "raw"})
    assert Report.objects.get(pk=draft.pk).sections == {"findings": "raw"}

