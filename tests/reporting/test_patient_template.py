"""The second-opinion template (issue 17): chosen for every second opinion whatever the modality and for
nothing else; signing refuses a second opinion without the patient's summary or the agreement, naming the
field; the sign step shows the summary for review before the report is signed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.errors import ApplicationError
from reporting import templates
from reporting.models import Report, ReportTemplate
from reporting.seed_templates import SECOND_OPINION
from reporting.services import reports
from reporting.views.templates import TemplateForm
from tests.marketplace.helpers import actor, ingest_study
from tests.reporting.conftest import assigned_read
from tests.reporting.patient_helpers import SUMMARY, claimed_order, opened, written
from tests.reporting.templates_helpers import seed_platform_templates
from tests.reporting.workspace_helpers import url

pytestmark = pytest.mark.django_db


def _sign(cast, report):
    return reports.report_sign(actor=actor(cast.radiologist), report=report, version=report.version,
                               second_factor_age=0)


def test_a_second_opinion_gets_the_second_opinion_template_whatever_the_modality(cast):
    order = claimed_order(cast)
    report = opened(cast, order)
    assert report.template.name == SECOND_OPINION["name"]
    assert [s["code"] for s in report.template.sections] == ["clinical_information", "findings", "impression",
                                                             "patient_summary"]
    assert report.sections["patient_summary"] == ""  # written by the reader, never prefilled
    assert "Question: A second opinion on the whole study." in report.sections["clinical_information"]


@pytest.mark.parametrize("modality", ["CT", "CR", "US"])
def test_no_primary_read_gets_the_second_opinion_template(cast, modality):
    seed_platform_templates()
    read_request = assigned_read(cast, study=ingest_study(cast.center, modality=modality))
    report = reports.report_open(actor=actor(cast.radiologist), read_request=read_request)
    assert not templates.for_second_opinion(report.template)
    assert report.template.name != SECOND_OPINION["name"]


def test_choose_gives_a_second_opinion_on_an_mr_the_second_opinion_template_too(db):
    seed_platform_templates()
    usable = ReportTemplate.objects.filter(owner__isnull=True, active=True)
    chosen = templates.choose(usable, modalities=["MR"], body_part="KNEE", description="MR KNEE", center_id=0,
                              kind="second_opinion")
    assert chosen.name == SECOND_OPINION["name"]
    assert templates.choose(usable, modalities=["MR"], body_part="KNEE", description="MR KNEE",
                            center_id=0).name == "MR knee"


def test_signing_a_second_opinion_without_the_summary_is_refused_naming_it(cast):
    report = written(cast, opened(cast, claimed_order(cast)), summary="   ")
    with pytest.raises(ApplicationError) as refused:
        _sign(cast, report)
    assert "sections.patient_summary" in refused.value.fields
    assert "plain-language summary" in refused.value.message
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT


def test_signing_a_second_opinion_without_the_agreement_is_refused_naming_it(cast):
    report = written(cast, opened(cast, claimed_order(cast)), agreement="")
    with pytest.raises(ApplicationError) as refused:
        _sign(cast, report)
    assert "fields.agreement" in refused.value.fields
    assert "agree with the original report" in refused.value.message
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT


def test_an_agreement_outside_the_list_is_refused_when_saved(cast):
    report = opened(cast, claimed_order(cast))
    with pytest.raises(ApplicationError) as refused:
        written(cast, report, agreement="maybe")
    assert "fields.agreement" in refused.value.fields


def test_a_second_opinion_cannot_switch_to_a_template_without_the_summary(cast):
    report = opened(cast, claimed_order(cast))
    general = ReportTemplate.objects.get(owner__isnull=True, name="General radiology")
    with pytest.raises(ApplicationError) as refused:
        reports.report_switch_template(actor=actor(cast.radiologist), report=report, version=report.version,
                                       template=general)
    assert "template" in refused.value.fields
    report.refresh_from_db()
    assert report.template.name == SECOND_OPINION["name"]


def test_a_primary_read_cannot_switch_to_the_second_opinion_template(cast):
    seed_platform_templates()
    read_request = assigned_read(cast)
    report = reports.report_open(actor=actor(cast.radiologist), read_request=read_request)
    second = ReportTemplate.objects.get(owner__isnull=True, name=SECOND_OPINION["name"])
    with pytest.raises(ApplicationError) as refused:
        reports.report_switch_template(actor=actor(cast.radiologist), report=report, version=report.version,
                                       template=second)
    assert "template" in refused.value.fields


def test_a_new_template_in_the_editor_starts_without_the_patient_summary():
    rows = {row["code"]: row["on"] for row in TemplateForm.from_template(None).sections}
    assert rows["patient_summary"] is False
    assert rows["findings"] is True


# --- the sign step in the workspace ---------------------------------------------------------------

def test_the_sign_step_shows_the_summary_for_review_before_signing(cast, login):
    order = claimed_order(cast)
    report = written(cast, opened(cast, order), agreement="disagrees")
    client = login(cast.radiologist)
    workspace = client.get(url("report_workspace", order.read_request)).content.decode()
    assert "Review summary and sign" in workspace
    assert "without medical terms" in workspace  # the guidance, as the summary's placeholder
    response = client.post(url("report_sign", order.read_request), {"version": report.version})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="summary-review"' in page
    assert SUMMARY.replace("'", "&#x27;") in page
    assert "The specialist disagrees with your original report" in page
    assert f'name="summary_reviewed" value="{report.version}"' in page
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT  # reviewing is not signing
    signed = client.post(url("report_sign", order.read_request),
                         {"version": report.version, "summary_reviewed": report.version})
    assert signed.status_code == 302
    report.refresh_from_db()
    assert report.status == Report.Status.FINAL


def test_a_summary_changed_after_review_is_shown_again_not_signed(cast, login):
    order = claimed_order(cast)
    report = written(cast, opened(cast, order))
    reviewed = report.version
    report = written(cast, report, summary="A different summary, written after the review.")
    client = login(cast.radiologist)
    response = client.post(url("report_sign", order.read_request),
                           {"version": report.version, "summary_reviewed": reviewed})
    assert response.status_code == 200
    assert "A different summary, written after the review." in response.content.decode()
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT


def test_the_sign_step_without_a_summary_names_the_field_on_the_page(cast, login):
    order = claimed_order(cast)
    report = written(cast, opened(cast, order), summary="")
    client = login(cast.radiologist)
    response = client.post(url("report_sign", order.read_request), {"version": report.version})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Write the plain-language summary for the patient before signing." in page
    assert 'id="summary-review"' not in page


def test_a_reviewed_summary_waits_through_the_second_factor_and_is_shown_again(cast, login):
    order = claimed_order(cast)
    report = written(cast, opened(cast, order))
    client = login(cast.radiologist, fresh_mfa=False)
    response = client.post(url("report_sign", order.read_request),
                           {"version": report.version, "summary_reviewed": report.version})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    report.refresh_from_db()
    assert report.status == Report.Status.DRAFT
    back = client.get(url("report_workspace", order.read_request)).content.decode()
    assert 'id="summary-review"' in back
    assert f'name="summary_reviewed" value="{report.version}"' in back
