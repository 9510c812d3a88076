"""The patient's view of their second opinion (issue 17): nothing until it is final, the summary first, the
agreement in a sentence, the signed report with its addenda beside the original report, a PDF for their
doctor, a fresh code first when they turned MFA on, every read audited; anyone else 404."""

from __future__ import annotations

import io

import pypdf
import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from core.errors import NotFound
from reporting import patient
from reporting.services import reports
from studies.original_reports import original_report_add
from tests.conftest import enroll_totp
from tests.marketplace.helpers import actor
from tests.reporting.patient_helpers import SUMMARY, claimed_order, new_patient, signed_order

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _panel(client, order, **extra):
    return client.get(reverse("patient_report", args=[order.public_id]), **HTMX, **extra)


def test_nothing_is_shown_until_the_report_is_final(cast, login):
    order = claimed_order(cast)
    assert patient.patient_report(actor=actor(cast.patient), order=order) is None
    response = _panel(login(cast.patient), order)
    assert response.status_code == 200
    assert "has not signed the report yet" in response.content.decode()
    assert not AuditEvent.objects.filter(action="report.viewed_by_patient").exists()
    pdf = login(cast.patient).get(reverse("patient_report_pdf", args=[order.public_id]))
    assert pdf.status_code == 404


def test_the_patient_reads_the_summary_first_then_the_agreement_and_the_report(cast, login):
    order = signed_order(cast, agreement="disagrees")
    response = _panel(login(cast.patient), order)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page  # the order page's fragment
    summary_at = page.index('id="patient-summary"')
    assert summary_at < page.index('id="patient-agreement"') < page.index('id="patient-signed-report"')
    assert SUMMARY.replace("'", "&#x27;") in page
    assert "The specialist disagrees with your original report" in page
    assert "No intracranial hemorrhage." in page
    assert "No acute abnormality." in page
    assert "No original report was given." in page
    assert reverse("patient_report_pdf", args=[order.public_id]) in page
    assert "You may ask one follow-up question" in page


def test_each_reading_is_audited_as_a_read_of_patient_data(cast, login):
    order = signed_order(cast)
    _panel(login(cast.patient), order)
    event = AuditEvent.objects.get(action="report.viewed_by_patient")
    assert event.actor == cast.patient
    assert event.object_id == str(order.read_request.report.public_id)
    assert event.extra["order"] == str(order.public_id)
    assert event.organization_id == order.study.organization_id


def test_addenda_are_shown_to_the_patient(cast, login):
    order = signed_order(cast)
    reports.addendum_sign(actor=actor(cast.radiologist), report=order.read_request.report,
                          text="On review, a small old infarct in the left cerebellum.", second_factor_age=0)
    page = _panel(login(cast.patient), order).content.decode()
    assert 'id="patient-addendum-1"' in page
    assert "small old infarct in the left cerebellum" in page


def test_the_original_report_is_shown_beside_the_second_opinion(cast, login):
    order = signed_order(cast)
    photo = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    original = original_report_add(actor=actor(cast.patient), study=order.study, fileobj=io.BytesIO(photo),
                                   filename="report.png", size=len(photo))
    opinion = patient.patient_report(actor=actor(cast.patient), order=order)
    assert opinion.original == original
    page = _panel(login(cast.patient), order).content.decode()
    assert reverse("original_report_file", args=[original.public_id]) in page
    assert "No original report was given." not in page


@pytest.mark.parametrize("who", ["other_patient", "radiologist", "center_admin", "platform_staff"])
def test_anyone_but_the_ordering_patient_gets_404(cast, login, who):
    order = signed_order(cast)
    user = new_patient("someone-else@example.test") if who == "other_patient" else getattr(cast, who)
    with pytest.raises(NotFound):
        patient.patient_report(actor=actor(user), order=order)
    client = login(user)
    assert _panel(client, order).status_code == 404
    assert client.get(reverse("patient_report_pdf", args=[order.public_id])).status_code == 404
    assert not AuditEvent.objects.filter(action__in=["report.viewed_by_patient", "report.downloaded"]).exists()


def test_another_patients_own_order_stays_theirs(cast, login):
    mine, theirs = signed_order(cast), signed_order(cast, new_patient("second@example.test"))
    client = login(cast.patient)
    assert _panel(client, mine).status_code == 200
    assert _panel(client, theirs).status_code == 404


def test_the_pdf_for_the_doctor_holds_the_summary_and_the_agreement(cast, login):
    order = signed_order(cast, agreement="partly_agrees")
    response = login(cast.patient).get(reverse("patient_report_pdf", args=[order.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    pdf = b"".join(response.streaming_content)
    text = " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Plain-language summary for the patient" in text
    assert "shows no bleeding" in text
    assert "Partly agrees with the original report" in text
    event = AuditEvent.objects.get(action="report.downloaded")
    assert event.actor == cast.patient
    assert event.extra["via"] == "patient"


def test_a_patient_with_mfa_confirms_a_fresh_code_before_the_report_is_shown(cast, login):
    order = signed_order(cast)
    enroll_totp(cast.patient)
    stale = login(cast.patient, fresh_mfa=False)
    page = _panel(stale, order).content.decode()
    assert "confirm the code from your authenticator app" in page
    assert SUMMARY.replace("'", "&#x27;") not in page
    assert not AuditEvent.objects.filter(action="report.viewed_by_patient").exists()
    pdf = stale.get(reverse("patient_report_pdf", args=[order.public_id]))
    assert pdf.status_code == 302
    assert pdf["Location"].startswith(reverse("mfa_reauthenticate"))
    as_page = stale.get(reverse("patient_report", args=[order.public_id]))
    assert as_page.status_code == 302
    assert as_page["Location"].startswith(reverse("mfa_reauthenticate"))
    fresh = login(cast.patient)  # a code confirmed just now
    assert SUMMARY.replace("'", "&#x27;") in _panel(fresh, order).content.decode()
    assert fresh.get(reverse("patient_report_pdf", args=[order.public_id])).status_code == 200


def test_without_htmx_the_panel_comes_as_a_page(cast, login):
    order = signed_order(cast)
    response = login(cast.patient).get(reverse("patient_report", args=[order.public_id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page
    assert 'id="patient-summary"' in page
