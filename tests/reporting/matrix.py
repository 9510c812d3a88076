"""Access-matrix rows of the reporting pages and API, and the reporting objects they are probed on.

``report_read`` is a CT at the center, claimed by the cast's radiologist, its report signed with a
category 1 ``critical`` result; ``report_template`` is the center's own template; ``macro`` is the
cast radiologist's; ``signed_opinion`` is a patient's second opinion signed by that radiologist (the
cast's patient's beside the cast's center's objects), ``signed_opinion_read`` its read request. The
assignee writes; the center's admins, technologists and viewers (not finance) read reports and threads;
operations read them and watch critical results; template editing is for the active organization's
admins and, for the platform's own, operations; only the ordering patient reads their second opinion.
POST-only routes answer 405 to a GET (the foreign-object test probes them by POST).
"""

from __future__ import annotations

from django.utils import timezone

from accounts import policy
from accounts.models import Organization, User
from marketplace.models import Offer
from marketplace.services.offers import offer_claim
from reporting.models import Macro, ReportTemplate
from reporting.services import reports
from tests.factories import UserFactory
from tests.marketplace.helpers import ingest_study, make_radiologist, post
from tests.reporting.conftest import CT_SECTIONS
from tests.reporting.patient_helpers import opened_by, paid_order, written_by
from tests.reporting.templates_helpers import seed_platform_templates

PRINCIPALS = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
              "platform_operations", "platform_finance", "patient"]
CENTER_READERS = {"center_admin", "technologist", "center_viewer"}
REPORT_READERS = CENTER_READERS | {"radiologist", "platform_operations"}
TEMPLATE_EDITORS = {"center_admin", "other_admin", "platform_operations"}


def _expect(ok: set[str], *, anonymous: int = 302) -> dict:
    return {"anonymous": anonymous, **{p: 200 if p in ok else 404 for p in PRINCIPALS}}


def _post_only() -> dict:
    return {"anonymous": 302, **{p: 405 for p in PRINCIPALS}}


def READ(o):  # noqa: N802 - URL kwargs builders
    return {"public_id": o["report_read"].public_id}


def CRITICAL(o):  # noqa: N802
    return {"public_id": o["critical"].public_id}


def OPINION(o):  # noqa: N802
    return {"public_id": o["signed_opinion"].public_id}


def OPINION_READ(o):  # noqa: N802
    return {"public_id": o["signed_opinion_read"].public_id}


def REPLY(o):  # noqa: N802
    return {"public_id": o["overread_reply"].public_id}


def TEMPLATE(o):  # noqa: N802
    return {"public_id": o["report_template"].public_id}


def MACRO(o):  # noqa: N802
    return {"public_id": o["macro"].public_id}


ROWS: dict = {
    "report_workspace": (READ, _expect({"radiologist"})),
    "report_autosave": (READ, _post_only()),
    "report_template_switch": (READ, _post_only()),
    "report_release_preliminary": (READ, _post_only()),
    "report_sign": (READ, _post_only()),
    "report_addendum": (READ, _post_only()),
    "read_request_report": (READ, _expect(REPORT_READERS)),
    "read_request_report_download": (lambda o: {**READ(o), "form": "pdf"}, _expect(REPORT_READERS)),
    "critical_result_list": (None, _expect(CENTER_READERS | {"other_admin"})),
    "critical_result_acknowledge": (CRITICAL, _post_only()),
    "ops_critical_results": (None, _expect({"platform_operations"})),
    "read_request_messages": (READ, _expect(REPORT_READERS)),
    "report_template_list": (None, _expect(TEMPLATE_EDITORS)),
    "report_template_create": (None, _expect(TEMPLATE_EDITORS)),
    "report_template_edit": (TEMPLATE, _expect({"center_admin"})),
    "report_template_set_active": (TEMPLATE, _post_only()),
    "macro_list": (None, _expect({"radiologist"})),
    "macro_edit": (MACRO, _expect({"radiologist"})),
    "macro_delete": (MACRO, _post_only()),
    "api_read_request_report": (READ, _expect(REPORT_READERS, anonymous=401)),
    # a patient's signed second opinion: the ordering patient reads it and asks; its reader answers (POST)
    "patient_report": (OPINION, _expect({"patient"})),
    "patient_report_pdf": (OPINION, _expect({"patient"})),
    "patient_question_ask": (OPINION, _post_only()),
    "patient_question_answer": (OPINION_READ, _post_only()),
    "patient_questions_waiting": (None, _expect({"radiologist"})),
    # quality (issue 16): the chain and an overread of the signed read by a reader outside the cast; the
    # arbitration detail probed with the reply's id is nobody's review (404 for all)
    "read_request_quality": (READ, _expect(REPORT_READERS)),
    "overread_reply": (REPLY, _expect(REPORT_READERS)),
    "overread_addendum_request": (REPLY, _post_only()),
    "quality_reviews_received": (None, _expect({"radiologist"})),
    "quality_arbitration_queue": (None, _expect({"radiologist"})),
    "quality_arbitration": (REPLY, _expect(set())),
    "quality_settings": (None, _expect({"center_admin", "other_admin"})),
    "group_signed_reports": (None, _expect(set())),  # the cast has no group admin or group QA radiologist
    "quality_stats": (None, {**_expect(CENTER_READERS | {"other_admin"}), "platform_operations": 302}),  # → ops page
    "quality_stats_of": (lambda o: {"public_id": o["center"].public_id},
                         _expect(CENTER_READERS | {"platform_operations"})),
    "quality_mine": (None, _expect({"radiologist"})),
    "ops_quality": (None, _expect({"platform_operations"})),
}


def reporting_objects(center: Organization, poster: User) -> dict:
    """Call after ``marketplace_objects`` (which makes the cast's radiologist eligible at ``center``)."""
    reader = User.objects.get(email="radiologist@example.test")
    template = ReportTemplate.objects.create(name=f"{center.name} CT", owner=center, modalities=["CT"],
                                             body_parts=[], sections=CT_SECTIONS, fields=[])
    read_request = post(poster, ingest_study(center, modality="CT", patient=23))
    offer = Offer.objects.get(read_request=read_request, radiologist__user=reader)
    actor = policy.actor_for_user(reader)
    offer_claim(actor=actor, offer=offer)
    read_request.refresh_from_db()
    report = reports.report_open(actor=actor, read_request=read_request)
    report = reports.report_save(actor=actor, report=report, version=report.version,
                                 sections={**report.sections, "impression": "Acute subdural hematoma."},
                                 fields=report.fields)
    critical = reports.CriticalInput(category=1, finding="Acute subdural hematoma", contacted_name="Dr Rivera",
                                     contacted_at=timezone.now(), method="phone", read_back=True)
    report = reports.report_sign(actor=actor, report=report, version=report.version, second_factor_age=0,
                                 critical=critical)
    macro, _ = Macro.objects.get_or_create(radiologist=report.radiologist, name="nml",
                                           defaults={"text": "No acute abnormality."})
    # The cast's patient owns the second opinion of the cast's center's objects; another patient the other's.
    patient = User.objects.get(email="patient@example.test") if center.slug == "lakeside" else \
        UserFactory(email=f"patient-of-{center.slug}@example.test", kind=User.Kind.PATIENT)
    return {"report_read": read_request, "critical": report.critical_result, "report_template": template,
            "overread_reply": _overread_reply(center, poster, report),
            "macro": macro, "signed_opinion": (opinion := _signed_opinion(reader, patient)),
            "signed_opinion_read": opinion.read_request}


def _overread_reply(center: Organization, poster: User, report):
    """An overread of ``report`` signed by a reader outside the cast (minor difference)."""
    from reporting.quality_models import OverreadReply
    from tests.reporting.quality_helpers import claim, write_and_sign

    senior = make_radiologist(regions=(center.region,), name=f"Overreader at {center.slug}")
    overread = claim(senior.user, post(poster, report.read_request.study, kind="overread",
                                       original_request=report.read_request))
    signed = write_and_sign(senior.user, overread, fields={"overread_agreement": "minor"})
    return OverreadReply.objects.get(report=signed)


def _signed_opinion(reader: User, patient: User):
    seed_platform_templates()
    order = paid_order(patient)
    actor = policy.actor_for_user(reader)
    offer_claim(actor=actor, offer=Offer.objects.get(read_request=order.read_request, radiologist__user=reader))
    order.read_request.refresh_from_db()
    report = written_by(reader, opened_by(reader, order))
    reports.report_sign(actor=actor, report=report, version=report.version, second_factor_age=0)
    return order
