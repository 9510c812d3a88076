"""The demo world's reports (issue 14, item 7): a signed report with an addendum, a STAT preliminary, an open
category 1 critical result, a screening mammogram with BI-RADS, macros for every demo reader; all made through
the real services, and a second ``load_demo`` creates nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts import policy
from accounts.models import MqsaQualification, RadiologistProfile, User
from marketplace.demo import DEMO_DOMAIN
from marketplace.models import Assignment, ReadRequest, Status
from reporting import selectors
from reporting.demo import DEMO_REPORTS, MACROS
from reporting.models import Addendum, CriticalResult, Delivery, Macro, Report, ReportTemplate


@pytest.fixture
def demo_output(db, django_capture_on_commit_callbacks) -> str:
    """``load_demo`` with tiny studies (the autouse fixture stores them in this test's own folder); the
    work queued after commit (delivery forms) runs when the load ends, as it would outside a test."""
    with django_capture_on_commit_callbacks(execute=True):
        return load_demo()


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", studies="small", stdout=out)
    return out.getvalue()


def demo_report(key: str) -> Report:
    return Report.objects.select_related("read_request__center", "template", "radiologist__user").get(
        read_request__idempotency_key=f"demo:{key}")


def center_actor(email: str):
    return policy.actor_for_user(User.objects.get(email=email))


def test_a_signed_chest_xray_with_an_addendum(demo_output):
    report = demo_report("report-summit-dx-chest")

    assert report.status == Report.Status.FINAL
    assert (report.read_request.center.slug, report.template.name) == ("summit", "Chest radiograph")
    assert report.read_request.status == Status.REPORTED
    assert report.content_hash
    assert report.signer_name == report.radiologist.name
    assert report.sections["impression"].startswith("Right lower lobe pneumonia")
    assert report.fields["views"] == "pa_lateral"
    addenda = list(Addendum.objects.filter(report=report))
    assert [a.number for a in addenda] == [1]
    assert "received after signing" in addenda[0].text
    # The center sees it; its delivery forms were built for the original and for the addendum's version.
    assert selectors.visible_report(actor=center_actor("admin@summit.demo"), read_request=report.read_request) == report
    assert {0, 1} <= set(Delivery.objects.filter(report=report).values_list("addenda_count", flat=True))
    assert "chest X-ray signed, with an addendum" in demo_output


def test_a_stat_read_released_as_preliminary(demo_output):
    report = demo_report("report-lakeside-us-stat")
    read_request = report.read_request

    assert (read_request.priority, read_request.status) == ("stat", Status.IN_PROGRESS)
    assert report.status == Report.Status.PRELIMINARY
    assert report.template.name == "US abdomen"
    assert "acute calculous cholecystitis" in report.preliminary_sections["impression"]
    assert report.preliminary_at is not None
    assert not report.signed_at
    assert Assignment.objects.filter(read_request=read_request, status=Assignment.Status.ACTIVE,
                                     radiologist=report.radiologist).exists()
    seen = selectors.visible_report(actor=center_actor("tech@lakeside.demo"), read_request=read_request)
    assert seen == report
    assert "STAT ultrasound with a preliminary report" in demo_output


def test_a_category_1_critical_result_awaits_the_centers_acknowledgement(demo_output):
    report = demo_report("report-summit-ct-critical")
    critical = CriticalResult.objects.get(report=report)

    assert report.status == Report.Status.FINAL
    assert report.template.name == "CT chest, abdomen and pelvis with contrast"
    assert (critical.category, critical.center.slug, critical.read_back) == (1, "summit", True)
    assert critical.acknowledged_at is None
    assert critical.acknowledged_by is None
    assert critical.escalation_level == 0
    assert critical.contacted_at < report.signed_at
    assert "Pneumoperitoneum" in critical.finding
    assert "critical result category 1 awaiting acknowledgement" in demo_output


def test_a_screening_mammogram_signed_with_birads_and_density_by_an_mqsa_reader(demo_output):
    report = demo_report("report-lakeside-mg-screening")

    assert report.status == Report.Status.FINAL
    assert report.template.name == "Screening mammography"
    assert (report.fields["birads"], report.fields["breast_density"]) == ("1", "b")
    assert MqsaQualification.objects.filter(radiologist=report.radiologist, status="verified").exists()


def test_every_demo_reader_has_macros(demo_output):
    readers = RadiologistProfile.objects.filter(user__email__endswith=DEMO_DOMAIN)
    assert readers.count() == 12
    for reader in readers:
        names = set(Macro.objects.filter(radiologist=reader).values_list("name", flat=True))
        assert set(MACROS) <= names, reader.user.email
    haddad = readers.get(user__email=f"dr.haddad{DEMO_DOMAIN}")
    assert Macro.objects.filter(radiologist=haddad, name="br1").exists()  # her breast macro


def test_a_second_load_demo_creates_nothing(demo_output):
    def snapshot():
        return (sorted(Report.objects.values_list("pk", "status", "version")),
                sorted(Addendum.objects.values_list("pk", flat=True)),
                sorted(CriticalResult.objects.values_list("pk", "acknowledged_at")),
                sorted(Macro.objects.values_list("pk", "name", "text")),
                ReadRequest.objects.count())

    before = snapshot()
    demo_keys = [f"demo:{story.key}" for story in DEMO_REPORTS]
    assert Report.objects.filter(read_request__idempotency_key__in=demo_keys).count() == len(DEMO_REPORTS)

    output = load_demo()

    assert snapshot() == before
    assert "Demo world ready: 0 created, 0 updated" in output


def test_a_platform_template_missing_from_the_database_comes_back_with_the_demo(db):
    ReportTemplate.objects.filter(owner__isnull=True, name="US abdomen").delete()

    load_demo()

    assert ReportTemplate.objects.filter(owner__isnull=True, name="US abdomen", active=True).exists()
    assert demo_report("report-lakeside-us-stat").template.name == "US abdomen"
