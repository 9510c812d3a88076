"""The center's view of a report: the panel the request page loads with htmx (preliminary marked, final
with signer, time and hash, addenda, critical-result state, downloads), the page downloads (audited),
escaping of report text, and a query count that does not grow with the addenda."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEvent
from marketplace.models import Priority
from reporting.models import CriticalResult, Delivery
from reporting.services import reports
from tests.marketplace.helpers import actor, post
from tests.reporting.delivery_helpers import (
    HOSTILE,
    READER_NAME,
    add_addendum,
    delivery_template,
    open_report,
    signed_report,
    unicode_study,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _template(db):
    return delivery_template()


def panel_url(read_request) -> str:
    return reverse("read_request_report", kwargs={"public_id": read_request.public_id})


def download_url(read_request, form: str, addenda=None) -> str:
    base = reverse("read_request_report_download", kwargs={"public_id": read_request.public_id, "form": form})
    return base if addenda is None else f"{base}?addenda={addenda}"


def test_final_report_panel_shows_signer_time_hash_and_the_forms(cast, login, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    response = login(cast.center_admin).get(panel_url(report.read_request))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="report-status">Final<' in html
    assert "Preliminary" not in html
    assert f"Electronically signed by <strong>{READER_NAME}</strong>, MD, FACR" in html
    assert report.content_hash in html
    assert "Small left frontal contusion." in html
    assert "<dd>Moderate</dd>" in html  # a pick list by its label
    assert "<dd>3 mm</dd>" in html  # a number with its unit
    for form in ("pdf", "hl7", "fhir", "sr"):
        assert download_url(report.read_request, form, 0).replace("&", "&amp;") in html
    assert f"StudyInstanceUIDs={report.read_request.study.study_instance_uid}" in html
    viewed = AuditEvent.objects.get(action="report.viewed")
    assert viewed.object_id == str(report.public_id)
    assert viewed.actor == cast.center_admin


def test_report_text_is_escaped(cast, login, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    html = login(cast.center_admin).get(panel_url(report.read_request)).content.decode()
    assert "<script>alert" not in html
    assert "<b>not bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_preliminary_report_is_marked_and_unsigned(cast, login):
    report = write(cast, open_report(cast, priority=Priority.STAT), impression=f"Bleed {HOSTILE}")
    reports.report_release_preliminary(actor=actor(cast.radiologist), report=report, version=report.version,
                                       second_factor_age=0)
    html = login(cast.center_admin).get(panel_url(report.read_request)).content.decode()
    assert 'id="report-preliminary"' in html
    assert "Preliminary — not signed." in html
    assert "Electronically signed" not in html
    assert "&lt;script&gt;" in html
    assert "<script>alert" not in html
    assert download_url(report.read_request, "pdf") + '"' in html  # no version: a preliminary has one


def test_a_draft_shows_nothing_and_is_not_audited(cast, login):
    report = write(cast, open_report(cast), impression="Private draft text.")
    response = login(cast.center_admin).get(panel_url(report.read_request))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No report has been released yet." in html
    assert "Private draft text." not in html
    assert not AuditEvent.objects.filter(action="report.viewed").exists()
    assert login(cast.center_admin).get(download_url(report.read_request, "pdf")).status_code == 404


def test_addenda_and_their_versions_are_listed(cast, login, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    add_addendum(cast, report, "Addendum <one>.", django_capture_on_commit_callbacks)
    html = login(cast.center_admin).get(panel_url(report.read_request)).content.decode()
    assert "Final report, amended" in html
    assert 'id="report-addendum-1"' in html
    assert "Addendum &lt;one&gt;." in html
    assert download_url(report.read_request, "pdf", 1) in html
    assert download_url(report.read_request, "pdf", 0) in html


def test_critical_result_state_is_shown_before_and_after_acknowledgement(cast, login,
                                                                         django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks, critical=True)
    client = login(cast.center_admin)
    html = client.get(panel_url(report.read_request)).content.decode()
    assert "Critical result" in html
    assert "Nurse Chloé Dubois" in html
    assert 'id="critical-unacknowledged"' in html
    # A viewer sees the state but has no button; a technologist acknowledges from the panel.
    as_viewer = login(cast.center_viewer).get(panel_url(report.read_request))
    assert as_viewer.status_code == 200
    assert 'id="critical-unacknowledged"' in as_viewer.content.decode()
    assert 'id="critical-acknowledge"' not in as_viewer.content.decode()
    tech = login(cast.technologist)
    assert 'id="critical-acknowledge"' in tech.get(panel_url(report.read_request)).content.decode()
    critical = CriticalResult.objects.get(report=report)
    detail = reverse("read_request_detail", kwargs={"public_id": report.read_request.public_id})
    response = tech.post(reverse("critical_result_acknowledge", kwargs={"public_id": critical.public_id}),
                         {"next": detail})
    assert response.status_code == 302
    assert response["Location"] == detail
    html = client.get(panel_url(report.read_request)).content.decode()
    assert 'id="critical-acknowledged"' in html
    assert cast.technologist.display_name in html
    assert 'id="critical-acknowledge"' not in html


@pytest.mark.parametrize(("form", "content_type"), [
    ("pdf", "application/pdf"),
    ("hl7", "x-application/hl7-v2+er7; charset=utf-8"),
    ("fhir", "application/fhir+json; charset=utf-8"),
    ("sr", "application/dicom"),
])
def test_page_downloads_are_the_delivered_bytes_and_audited(cast, login, django_capture_on_commit_callbacks, form,
                                                           content_type):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    response = login(cast.technologist).get(download_url(report.read_request, form, 0))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.content == bytes(Delivery.objects.get(report=report, form=form, addenda_count=0).payload)
    event = AuditEvent.objects.get(action="report.downloaded")
    assert event.extra == {"form": form, "addenda": 0, "preliminary": False, "via": "page"}
    assert event.actor == cast.technologist


def test_foreign_unknown_and_malformed_downloads_are_404(cast, login, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    rr = report.read_request
    assert login(cast.other_admin).get(panel_url(rr)).status_code == 404
    assert login(cast.other_admin).get(download_url(rr, "pdf")).status_code == 404
    assert login(cast.center_finance).get(download_url(rr, "pdf")).status_code == 404
    admin = login(cast.center_admin)
    assert admin.get(download_url(rr, "docx")).status_code == 404
    assert admin.get(download_url(rr, "pdf", "x")).status_code == 404
    assert admin.get(download_url(rr, "pdf", 3)).status_code == 404
    assert not AuditEvent.objects.filter(action="report.downloaded").exists()


def test_request_page_loads_the_panel_once_the_read_is_under_way(cast, login, django_capture_on_commit_callbacks):
    report = signed_report(cast, django_capture_on_commit_callbacks)
    client = login(cast.center_admin)
    page = client.get(reverse("read_request_detail", kwargs={"public_id": report.read_request.public_id}))
    assert f'hx-get="{panel_url(report.read_request)}" hx-trigger="load"' in page.content.decode()
    waiting = post(cast.center_admin, unicode_study(cast.center))
    page = client.get(reverse("read_request_detail", kwargs={"public_id": waiting.public_id}))
    assert page.status_code == 200
    assert "hx-get=\"" + panel_url(waiting) not in page.content.decode()


def _panel_queries(client, read_request) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(panel_url(read_request)).status_code == 200
    return len(queries)


def test_panel_query_count_does_not_grow_with_addenda(cast, login, django_capture_on_commit_callbacks,
                                                      django_assert_max_num_queries):
    report = signed_report(cast, django_capture_on_commit_callbacks, critical=True)
    client = login(cast.center_admin)
    _panel_queries(client, report.read_request)  # warm the session and caches
    with_none = _panel_queries(client, report.read_request)
    for n in range(3):
        add_addendum(cast, report, f"Addendum {n}.", django_capture_on_commit_callbacks)
    assert _panel_queries(client, report.read_request) == with_none
    with django_assert_max_num_queries(with_none):
        client.get(panel_url(report.read_request))
    assert with_none <= 20
