"""GET /api/v1/read-requests/{id}/report/: the report in the form Accept asks for, versions by ?addenda=N,
406 naming the forms offered, 404 for anyone the report is not for, and an audit row per download."""

from __future__ import annotations

import io
import json
import uuid

import hl7
import pydicom
import pytest
from django.urls import reverse

from accounts import services as account_services
from accounts.models import AuditEvent
from marketplace.models import Priority
from reporting.api.report import MEDIA_TYPES
from reporting.models import Delivery
from reporting.services import reports
from tests.marketplace.helpers import actor
from tests.reporting.delivery_helpers import (
    add_addendum,
    delivery_template,
    open_report,
    signed_report,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _template(db):
    return delivery_template()


@pytest.fixture
def report(cast, django_capture_on_commit_callbacks):
    return signed_report(cast, django_capture_on_commit_callbacks)


def url(report_or_request) -> str:
    read_request = getattr(report_or_request, "read_request", report_or_request)
    return reverse("api_read_request_report", kwargs={"public_id": read_request.public_id})


def delivered(report, form, addenda_count=0) -> bytes:
    return bytes(Delivery.objects.get(report=report, form=form, addenda_count=addenda_count).payload)


def downloads():
    return AuditEvent.objects.filter(action="report.downloaded")


@pytest.mark.parametrize(("accept", "content_type", "form"), [
    ("application/pdf", "application/pdf", "pdf"),
    ("application/fhir+json", "application/fhir+json; charset=utf-8", "fhir"),
    ("application/json", "application/json; charset=utf-8", "fhir"),
    ("x-application/hl7-v2+er7", "x-application/hl7-v2+er7; charset=utf-8", "hl7"),
    ("application/hl7-v2", "application/hl7-v2; charset=utf-8", "hl7"),
    ("application/dicom", "application/dicom", "sr"),
    (None, "application/pdf", "pdf"),
    ("*/*", "application/pdf", "pdf"),
    ("text/html, application/fhir+json;q=0.9, */*;q=0.1", "application/fhir+json; charset=utf-8", "fhir"),
    ("application/pdf;q=0.5, x-application/hl7-v2+er7", "x-application/hl7-v2+er7; charset=utf-8", "hl7"),
])
def test_accept_chooses_the_form_and_the_bytes_are_the_delivered_ones(cast, login, report, accept, content_type,
                                                                      form):
    client = login(cast.center_admin, api=True)
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.get(url(report), **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == content_type
    assert response.content == delivered(report, form)
    assert response["X-Report-Status"] == "final"
    assert response["Content-Disposition"].startswith("attachment; filename=\"report-")


def test_each_form_reads_back(cast, login, report):
    client = login(cast.center_admin, api=True)
    resource = json.loads(client.get(url(report), HTTP_ACCEPT="application/fhir+json").content)
    assert resource["resourceType"] == "DiagnosticReport"
    assert resource["status"] == "final"
    message = hl7.parse(client.get(url(report), HTTP_ACCEPT="x-application/hl7-v2+er7").content.decode())
    assert str(message.segment("OBR")[3]) == report.read_request.study.accession_number
    ds = pydicom.dcmread(io.BytesIO(client.get(url(report), HTTP_ACCEPT="application/dicom").content))
    assert ds.StudyInstanceUID == report.read_request.study.study_instance_uid


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/plain", "application/pdf;q=0"])
def test_an_unsupported_accept_is_406_naming_the_forms_offered_and_nothing_is_audited(cast, login, report, accept):
    response = login(cast.center_admin, api=True).get(url(report), HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "not_acceptable"
    for media_type in MEDIA_TYPES:
        assert media_type in error["message"]
        assert media_type in error["fields"]["Accept"][0]
    assert not downloads().exists()


def test_the_download_is_audited_with_its_form_and_version(cast, login, report):
    response = login(cast.center_admin, api=True).get(url(report), HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200
    [event] = downloads()
    assert event.actor == cast.center_admin
    assert event.object_type == "reporting.report"
    assert event.object_id == str(report.public_id)
    assert event.organization == cast.center
    assert event.extra == {"form": "fhir", "addenda": 0, "preliminary": False, "via": "api"}


@pytest.mark.parametrize("who", ["other_admin", "center_finance", "patient"])
def test_someone_the_report_is_not_for_gets_404_in_json(cast, login, report, who):
    response = login(getattr(cast, who), api=True).get(url(report), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert not downloads().exists()


@pytest.mark.parametrize("who", ["center_admin", "technologist", "platform_staff", "radiologist"])
def test_the_center_operations_and_the_reader_get_it(cast, login, report, who):
    response = login(getattr(cast, who), api=True).get(url(report))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


def test_an_unknown_request_is_404(cast, login, report):
    missing = reverse("api_read_request_report", kwargs={"public_id": uuid.uuid4()})
    assert login(cast.center_admin, api=True).get(missing).status_code == 404


def test_a_draft_is_404_even_to_its_author(cast, login):
    draft = write(cast, open_report(cast), impression="Not yet.")
    for user in (cast.center_admin, cast.radiologist):
        response = login(user, api=True).get(url(draft))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_an_organization_key_of_the_center_downloads_and_is_named_in_the_audit(cast, login, report):
    key, secret = account_services.api_key_create(actor=actor(cast.center_admin), organization=cast.center,
                                                  name="RIS bridge")
    client = login(None, api=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get(url(report), HTTP_ACCEPT="x-application/hl7-v2+er7")
    assert response.status_code == 200
    assert response.content.startswith(b"MSH|")
    assert downloads().get().extra["api_key"] == key.prefix


def test_addenda_choose_the_version(cast, login, report, django_capture_on_commit_callbacks):
    add_addendum(cast, report, "Addendum one.", django_capture_on_commit_callbacks)
    client = login(cast.center_admin, api=True)
    latest = client.get(url(report), HTTP_ACCEPT="application/fhir+json")
    assert json.loads(latest.content)["status"] == "amended"
    assert latest["X-Report-Addenda"] == "1"
    assert latest["X-Report-Status"] == "amended"
    original = client.get(url(report), {"addenda": "0"}, HTTP_ACCEPT="application/fhir+json")
    assert json.loads(original.content)["status"] == "final"
    assert original.content == delivered(report, "fhir", 0)
    assert client.get(url(report), {"addenda": "2"}).status_code == 404
    for bad in ("x", "-1", "²"):
        refused = client.get(url(report), {"addenda": bad})
        assert refused.status_code == 400
        assert "addenda" in refused.json()["error"]["fields"]
    assert [event.extra["addenda"] for event in downloads().order_by("id")] == [1, 0]


def test_a_preliminary_report_is_served_marked_preliminary(cast, login):
    report = write(cast, open_report(cast, priority=Priority.STAT), impression="Preliminary: bleed.")
    reports.report_release_preliminary(actor=actor(cast.radiologist), report=report, version=report.version,
                                       second_factor_age=0)
    client = login(cast.center_admin, api=True)
    response = client.get(url(report), HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200
    assert response["X-Report-Status"] == "preliminary"
    resource = json.loads(response.content)
    assert resource["status"] == "preliminary"
    assert resource["conclusion"] == "Preliminary: bleed."
    assert downloads().get().extra["preliminary"] is True
    assert client.get(url(report), {"addenda": "1"}).status_code == 404
