"""The reading workspace through the Django test client: opening, autosave with versions, the 1 MB body,
someone else's read, and escaping of what a report holds."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from marketplace.models import Assignment, Offer, Status
from marketplace.services.offers import offer_claim
from reporting.models import Macro, Report
from reporting.services import reports
from studies.templatetags.studies_viewer import viewer_url
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post
from tests.reporting.conftest import assigned_read
from tests.reporting.workspace_helpers import autosave, fielded_template, url

pytestmark = pytest.mark.django_db

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_the_worklist_open_button_leads_to_the_workspace(cast, ct_template, login):
    read_request = assigned_read(cast)
    assignment = Assignment.objects.get(read_request=read_request, status=Assignment.Status.ACTIVE)
    response = login(cast.radiologist).post(reverse("assignment_open", args=[assignment.public_id]))
    assert response.status_code == 302
    assert response["Location"] == url("report_workspace", read_request)
    read_request.refresh_from_db()
    assert read_request.status == Status.IN_PROGRESS


def test_opening_the_workspace_starts_the_read_and_shows_the_request_beside_the_viewer(cast, ct_template, login):
    earlier_study = ingest_study(cast.center, description="CT HEAD 2025")
    comparison = ingest_study(cast.center, description="CT HEAD PRIOR")
    read_request = assigned_read(cast, clinical_history="Fell from a ladder.", reason_for_exam="Head trauma",
                                 special_instructions="Call the ward with a bleed.", comparison_studies=[comparison])
    # The same patient's earlier signed report at this center is listed.
    earlier = assigned_read(cast, study=earlier_study)
    earlier_report = reports.report_open(actor=actor(cast.radiologist), read_request=earlier)
    earlier_report = reports.report_save(actor=actor(cast.radiologist), report=earlier_report, version=1,
                                         sections={**earlier_report.sections, "impression": "Old lacunar infarct."},
                                         fields={})
    reports.report_sign(actor=actor(cast.radiologist), report=earlier_report, version=2, second_factor_age=5)

    response = login(cast.radiologist).get(url("report_workspace", read_request))
    assert response.status_code == 200
    page = response.content.decode()
    read_request.refresh_from_db()
    assert read_request.status == Status.IN_PROGRESS
    report = Report.objects.get(read_request=read_request)
    assert report.status == Report.Status.DRAFT
    assert f'src="{viewer_url(read_request.study.study_instance_uid).replace("&", "&amp;")}"' in page
    for text in ("Fell from a ladder.", "Head trauma", "Call the ward with a bleed.", "CT HEAD PRIOR",
                 "Old lacunar infarct.", "No acute intracranial abnormality."):
        assert text in page, text
    assert f'href="{viewer_url(comparison.study_instance_uid)}"' in page
    assert 'data-autosave-url="' + url("report_autosave", read_request) + '"' in page
    assert f'data-version="{report.version}"' in page
    # Normal text per section, for the "Normal" buttons.
    assert 'data-normal-for="findings" data-normal="No acute intracranial abnormality."' in page


def test_the_viewer_may_be_framed_by_the_workspace_only_from_the_same_origin(cast, ct_template, login):
    from studies import viewer

    read_request = assigned_read(cast)
    client = login(cast.radiologist)
    client.get(url("report_workspace", read_request))
    response = client.get(viewer_url(read_request.study.study_instance_uid))
    if viewer.index_html() is None:  # the shell is not installed here: the 503 page is not framed
        assert response.status_code == 503
        return
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("who", ["center_admin", "other_radiologist", "unassigned_reader"])
def test_someone_elses_read_is_not_found_on_every_workspace_route(cast, ct_template, login, who):
    read_request = assigned_read(cast)
    if who == "other_radiologist":
        user = cast.other_admin
        make_radiologist(user=user)
    elif who == "unassigned_reader":
        user = make_radiologist(name="Dr Unassigned").user
    else:
        user = cast.center_admin
    client = login(user)
    assert client.get(url("report_workspace", read_request)).status_code == 404
    refused = autosave(client, read_request, version=1, sections={"findings": "mine now"})
    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    for name in ("report_sign", "report_release_preliminary", "report_template_switch", "report_addendum"):
        assert client.post(url(name, read_request), {"version": 1, "text": "x"}).status_code == 404, name
    assert not Report.objects.filter(read_request=read_request).exists()
    read_request.refresh_from_db()
    assert read_request.status == Status.ASSIGNED


def test_autosave_writes_the_draft_and_answers_the_new_version(cast, draft, login):
    response = autosave(login(cast.radiologist), draft.read_request, version=1,
                        sections={**draft.sections, "findings": "Small left frontal contusion."})
    assert response.status_code == 200
    data = response.json()
    assert data["version"] == 2
    assert data["saved_at"]
    draft.refresh_from_db()
    assert draft.version == 2
    assert draft.sections["findings"] == "Small left frontal contusion."


def test_an_autosave_reads_the_draft_in_one_query(cast, draft, login, django_assert_max_num_queries):
    """The hot path: session and user, the draft with its request, template and reader, the update."""
    client = login(cast.radiologist)
    autosave(client, draft.read_request, version=1, sections=draft.sections)  # the session is warm
    with django_assert_max_num_queries(8):
        assert autosave(client, draft.read_request, version=2, sections=draft.sections).status_code == 200


def test_a_stale_version_is_refused_with_409_and_nothing_is_overwritten(cast, draft, login):
    client = login(cast.radiologist)
    assert autosave(client, draft.read_request, version=1, sections={"findings": "From tab one."}).status_code == 200
    stale = autosave(client, draft.read_request, version=1, sections={"findings": "From tab two."})
    assert stale.status_code == 409
    data = stale.json()
    assert data["code"] == "stale_version"
    assert "saved elsewhere" in data["error"]
    assert "Reload" in data["error"]
    draft.refresh_from_db()
    assert draft.sections["findings"] == "From tab one."
    assert draft.version == 2


@pytest.mark.parametrize(("payload", "field"), [
    ({"version": 1, "sections": {}, "fields": {"birads": "9"}}, "fields.birads"),
    ({"version": 1, "sections": {}, "fields": {"lesion_size": "big"}}, "fields.lesion_size"),
    ({"version": 1, "sections": {}, "fields": {"implants": "maybe"}}, "fields.implants"),
    ({"version": 1, "sections": {"summary": "x"}, "fields": {}}, "sections.summary"),
    ({"version": "1", "sections": {}, "fields": {}}, "version"),
    ({"sections": {}, "fields": {}}, "version"),
    ({"version": 1, "sections": [], "fields": {}}, "sections"),
])
def test_autosave_refuses_bad_input_with_400_naming_the_field(cast, login, payload, field):
    fielded_template()
    read_request = assigned_read(cast)
    client = login(cast.radiologist)
    client.get(url("report_workspace", read_request))
    response = autosave(client, read_request, version=0, body=json.dumps(payload).encode())
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Report.objects.get(read_request=read_request).version == 1


def test_autosave_refuses_a_body_that_is_not_json(cast, draft, login):
    response = autosave(login(cast.radiologist), draft.read_request, version=1, body=b"findings=abc")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_a_one_megabyte_report_gets_a_clear_error_naming_the_section(cast, draft, login):
    body = json.dumps({"version": 1, "sections": {"findings": "a" * 1_000_000}, "fields": {}}).encode()
    assert len(body) > 1_000_000
    response = autosave(login(cast.radiologist), draft.read_request, version=1, body=body)
    assert response.status_code == 400
    data = response.json()
    assert "sections.findings" in data["fields"]
    assert "At most 20,000 characters" in data["error"]
    assert Report.objects.get(pk=draft.pk).version == 1


def test_a_body_past_the_upload_limit_is_refused_as_too_large_not_a_500(cast, draft, login, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 512 * 1024
    body = json.dumps({"version": 1, "sections": {"findings": "a" * 1_000_000}, "fields": {}}).encode()
    response = autosave(login(cast.radiologist), draft.read_request, version=1, body=body)
    assert response.status_code == 413
    data = response.json()
    assert data["code"] == "too_large"
    assert "512 kB" in data["error"]
    assert Report.objects.get(pk=draft.pk).version == 1


def test_autosave_needs_the_csrf_token(cast, draft):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.radiologist)
    response = autosave(client, draft.read_request, version=1, sections={"findings": "x"})
    assert response.status_code == 403
    page = client.get(url("report_workspace", draft.read_request))
    token = page.cookies["csrftoken"].value
    saved = client.post(url("report_autosave", draft.read_request),
                        json.dumps({"version": 1, "sections": {"findings": "x"}, "fields": {}}),
                        content_type="application/json", headers={"X-CSRFToken": token})
    assert saved.status_code == 200


def test_html_and_script_in_the_report_are_escaped_on_the_page(cast, draft, login):
    client = login(cast.radiologist)
    profile = draft.radiologist
    Macro.objects.create(radiologist=profile, name="xss", text="</script><script>alert(2)</script>")
    assert autosave(client, draft.read_request, version=1,
                    sections={**draft.sections, "findings": SCRIPT, "impression": SCRIPT}).status_code == 200
    page = client.get(url("report_workspace", draft.read_request)).content.decode()
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "\\u003C/script\\u003E\\u003Cscript\\u003Ealert(2)" in page  # the macros' JSON cannot close its tag
    signed = client.post(url("report_sign", draft.read_request), {"version": 2})
    assert signed.status_code == 302
    final = client.get(url("report_workspace", draft.read_request)).content.decode()
    assert "Final report" in final
    assert "<script>alert" not in final
    assert "&lt;img src=x onerror=alert(1)&gt;" in final


def test_macros_of_the_reader_are_on_the_page_for_the_editor(cast, draft, login):
    Macro.objects.create(radiologist=draft.radiologist, name="nad", text="No acute disease.")
    other = make_radiologist(name="Dr Else")
    Macro.objects.create(radiologist=other, name="theirs", text="Someone else's snippet.")
    page = login(cast.radiologist).get(url("report_workspace", draft.read_request)).content.decode()
    assert '{"nad": "No acute disease."}' in page
    assert "Someone else" not in page


def test_switching_the_template_keeps_the_text_by_section(cast, draft, login):
    other = fielded_template()
    client = login(cast.radiologist)
    autosave(client, draft.read_request, version=1, sections={**draft.sections, "findings": "Kept."})
    response = client.post(url("report_template_switch", draft.read_request),
                           {"version": 2, "template": str(other.public_id)}, follow=True)
    assert "Template switched to CT with fields" in response.content.decode()
    draft.refresh_from_db()
    assert draft.template == other
    assert draft.sections["findings"] == "Kept."
    assert draft.version == 3
    refused = client.post(url("report_template_switch", draft.read_request),
                          {"version": 3, "template": "00000000-0000-0000-0000-000000000000"}, follow=True)
    assert "Template: choose one of the listed templates." in refused.content.decode()


def test_a_closed_offer_is_not_a_workspace_for_the_reader_who_lost_it(cast, ct_template, login):
    """A reader offered the read who did not claim it has no workspace for it (404), even with the offer."""
    rival = make_radiologist(name="Dr Rival")
    read_request = post(cast.center_admin, ingest_study(cast.center))
    offer_claim(actor=actor(rival.user), offer=Offer.objects.get(read_request=read_request, radiologist=rival))
    make_radiologist(user=cast.radiologist)
    assert login(cast.radiologist).get(url("report_workspace", read_request)).status_code == 404
