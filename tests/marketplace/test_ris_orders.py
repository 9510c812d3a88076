"""Orders from a center's RIS become read requests (issue 23, item 2): matching in both arrival orders with real
ingest, held mismatches, duplicates, cancel and change, and studies that wait for an order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.audit import AuditEvent
from accounts.models import Notification
from core.errors import ApplicationError
from marketplace.models import Assignment, Offer, ReadRequest, Status
from marketplace.ris import selectors, waiting
from marketplace.ris.orders import CANCEL, CHANGE, ris_order_release, waiting_orders_for
from marketplace.ris_models import RisOrder, RisOrderStatus
from marketplace.services.offers import assignment_start, offer_claim, read_request_mark_reported
from studies.models import Study
from tests.marketplace.helpers import actor
from tests.marketplace.ris_helpers import ingest_with_accession, interface_for, order

pytestmark = pytest.mark.django_db

PATIENT_1 = "MRN100201"  # synthetic.demo_patient(1)


def test_order_first_then_study_posts_the_read_when_the_images_arrive(cast, reader,
                                                                     django_capture_on_commit_callbacks):
    placed = order(cast.center, placer="ORD-1", accession="A100", patient_id=PATIENT_1, priority="urgent",
                   clinical_history="Headache since this morning.", procedure_text="CT HEAD WO")
    assert placed.status == RisOrderStatus.WAITING
    assert placed.read_request is None
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_with_accession(cast.center, accession="A100", patient=1)
    placed.refresh_from_db()
    assert placed.status == RisOrderStatus.POSTED
    assert placed.study == study
    read = placed.read_request
    assert (read.study, read.priority, read.status) == (study, "urgent", Status.OPEN)
    assert read.clinical_history == "Headache since this morning."
    assert read.reason_for_exam == "CT HEAD WO"
    assert Offer.objects.filter(read_request=read, radiologist=reader).exists()
    actions = list(AuditEvent.objects.filter(object_id=str(placed.public_id)).values_list("action", flat=True))
    assert "ris_order.received" in actions
    assert "ris_order.posted" in actions


def test_study_first_then_order_posts_the_read_at_once(cast, reader, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        study = ingest_with_accession(cast.center, accession="A200", patient=1)
    assert not ReadRequest.objects.filter(study=study).exists()  # a study without an order waits
    placed = order(cast.center, placer="ORD-2", accession="A200", patient_id=PATIENT_1)
    assert placed.status == RisOrderStatus.POSTED
    assert placed.read_request.study == study


@pytest.mark.parametrize("study_first", [True, False])
def test_same_accession_for_another_patient_is_held_with_the_reason(cast, study_first,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        if study_first:
            ingest_with_accession(cast.center, accession="A300", patient=2)
        placed = order(cast.center, placer="ORD-3", accession="A300", patient_id=PATIENT_1)
        if not study_first:
            ingest_with_accession(cast.center, accession="A300", patient=2)
    placed.refresh_from_db()
    assert placed.status == RisOrderStatus.HELD
    assert placed.held_reason == "accession A300 arrived for patient MRN100202, the order is for patient MRN100201"
    assert placed.read_request is None
    assert not ReadRequest.objects.filter(center=cast.center).exists()


def test_a_person_posts_a_held_order_and_a_viewer_may_not(cast):
    ingest_with_accession(cast.center, accession="A301", patient=2)
    placed = order(cast.center, placer="ORD-31", accession="A301", patient_id=PATIENT_1)
    from core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        ris_order_release(actor=actor(cast.center_viewer), order=placed)
    posted = ris_order_release(actor=actor(cast.technologist), order=placed)
    assert posted.status == RisOrderStatus.POSTED
    assert posted.read_request.posted_by == cast.technologist


@pytest.mark.parametrize("study_first", [True, False])
def test_another_centers_study_with_the_same_accession_is_never_matched(cast, study_first,
                                                                       django_capture_on_commit_callbacks):
    """Accession reuse across centers: the same number and patient at another center is another exam."""
    with django_capture_on_commit_callbacks(execute=True):
        if study_first:
            ingest_with_accession(cast.other_center, accession="A400", patient=1)
        placed = order(cast.center, placer="ORD-4", accession="A400", patient_id=PATIENT_1)
        if not study_first:
            ingest_with_accession(cast.other_center, accession="A400", patient=1)
    placed.refresh_from_db()
    assert (placed.status, placed.study, placed.held_reason) == (RisOrderStatus.WAITING, None, "")
    assert not ReadRequest.objects.exists()


def test_two_centers_orders_with_one_accession_each_match_their_own_study(cast, django_capture_on_commit_callbacks):
    mine = order(cast.center, placer="ORD-41", accession="A401", patient_id=PATIENT_1)
    theirs = order(cast.other_center, placer="ORD-41", accession="A401", patient_id=PATIENT_1)
    with django_capture_on_commit_callbacks(execute=True):
        their_study = ingest_with_accession(cast.other_center, accession="A401", patient=1)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (RisOrderStatus.WAITING, RisOrderStatus.POSTED)
    assert theirs.read_request.study == their_study
    assert theirs.read_request.center == cast.other_center
    with django_capture_on_commit_callbacks(execute=True):
        my_study = ingest_with_accession(cast.center, accession="A401", patient=1)
    mine.refresh_from_db()
    assert (mine.status, mine.read_request.study, mine.read_request.center) == (RisOrderStatus.POSTED, my_study,
                                                                                 cast.center)


def test_a_repeated_new_order_is_the_same_order_and_one_read(cast):
    ingest_with_accession(cast.center, accession="A500", patient=1)
    first = order(cast.center, placer="ORD-5", accession="A500", patient_id=PATIENT_1)
    again = order(cast.center, placer="ORD-5", accession="A500", patient_id=PATIENT_1)
    assert again.pk == first.pk
    assert RisOrder.objects.filter(center=cast.center).count() == 1
    assert ReadRequest.objects.filter(center=cast.center).count() == 1


def test_cancel_after_claim_cancels_the_read_and_the_readers_assignment(cast, reader):
    ingest_with_accession(cast.center, accession="A600", patient=1)
    placed = order(cast.center, placer="ORD-6", accession="A600", patient_id=PATIENT_1)
    offer = Offer.objects.get(read_request=placed.read_request, radiologist=reader)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer)
    cancelled = order(cast.center, control=CANCEL, placer="ORD-6", accession="A600", patient_id=PATIENT_1)
    assert cancelled.status == RisOrderStatus.CANCELLED
    placed.read_request.refresh_from_db()
    assert placed.read_request.status == Status.CANCELLED
    assert "ORD-6" in placed.read_request.cancel_reason
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.CANCELLED
    assert Notification.objects.filter(user=cast.radiologist, title__contains="cancelled").exists()


def test_cancel_after_signing_is_refused_naming_orc_1(cast, reader):
    ingest_with_accession(cast.center, accession="A700", patient=1)
    placed = order(cast.center, placer="ORD-7", accession="A700", patient_id=PATIENT_1)
    offer = Offer.objects.get(read_request=placed.read_request, radiologist=reader)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=offer)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request_mark_reported(read_request=placed.read_request, actor=actor(cast.radiologist))
    with pytest.raises(ApplicationError) as refused:
        order(cast.center, control=CANCEL, placer="ORD-7", accession="A700", patient_id=PATIENT_1)
    assert refused.value.code == "already_signed"
    assert list(refused.value.fields) == ["ORC-1"]
    placed.refresh_from_db()
    assert placed.status == RisOrderStatus.POSTED
    with pytest.raises(ApplicationError) as changed:
        order(cast.center, control=CHANGE, placer="ORD-7", accession="A700", patient_id=PATIENT_1, priority="stat")
    assert changed.value.code == "already_signed"


def test_cancel_of_a_waiting_order_and_of_an_unknown_one(cast):
    order(cast.center, placer="ORD-8", accession="A800", patient_id=PATIENT_1)
    cancelled = order(cast.center, control=CANCEL, placer="ORD-8", accession="A800", patient_id=PATIENT_1)
    assert cancelled.status == RisOrderStatus.CANCELLED
    again = order(cast.center, control=CANCEL, placer="ORD-8", accession="A800", patient_id=PATIENT_1)
    assert again.status == RisOrderStatus.CANCELLED  # a resend changes nothing
    with pytest.raises(ApplicationError) as unknown:
        order(cast.center, control=CANCEL, placer="NOPE", accession="A800", patient_id=PATIENT_1)
    assert unknown.value.code == "unknown_order"
    assert list(unknown.value.fields) == ["ORC-2"]


def test_change_amends_a_waiting_order_and_then_the_open_read(cast, reader):
    placed = order(cast.center, placer="ORD-9", accession="A900", patient_id=PATIENT_1)
    order(cast.center, control=CHANGE, placer="ORD-9", accession="A900", patient_id=PATIENT_1,
          clinical_history="Fall, on warfarin.")
    placed.refresh_from_db()
    assert (placed.status, placed.clinical_history) == (RisOrderStatus.WAITING, "Fall, on warfarin.")
    ingest_with_accession(cast.center, accession="A900", patient=1)
    # The study came without the hook here: a change looks for it again.
    order(cast.center, control=CHANGE, placer="ORD-9", accession="A900", patient_id=PATIENT_1,
          clinical_history="Fall, on warfarin.", priority="routine")
    placed.refresh_from_db()
    read = placed.read_request
    assert placed.status == RisOrderStatus.POSTED
    assert read.priority == "routine"
    routine_deadline = read.deadline
    order(cast.center, control=CHANGE, placer="ORD-9", accession="A900", patient_id=PATIENT_1,
          clinical_history="Fall, on warfarin. GCS 14.", priority="stat")
    read.refresh_from_db()
    assert read.clinical_history == "Fall, on warfarin. GCS 14."
    assert read.priority == "stat"
    assert read.deadline < routine_deadline
    assert AuditEvent.objects.filter(action="read_request.amended", object_id=str(read.public_id)).exists()
    with pytest.raises(ApplicationError) as moved:
        order(cast.center, control=CHANGE, placer="ORD-9", accession="B900", patient_id=PATIENT_1)
    assert moved.value.code == "order_posted"
    assert list(moved.value.fields) == ["OBR-18"]


@pytest.mark.parametrize(("field", "location", "code"), [
    ("accession_number", "OBR-18", "required"),
    ("patient_id", "PID-3", "required"),
    ("placer_order_number", "ORC-2", "required"),
])
def test_a_missing_key_is_refused_by_its_hl7_location(cast, field, location, code):
    values = {"placer": "ORD-10", "accession": "A1000", "patient_id": PATIENT_1}
    values[{"accession_number": "accession", "placer_order_number": "placer"}.get(field, field)] = ""
    with pytest.raises(ApplicationError) as refused:
        order(cast.center, **values)
    assert refused.value.code == code
    assert list(refused.value.fields) == [location]


def test_an_unknown_control_or_priority_is_refused(cast):
    with pytest.raises(ApplicationError) as control:
        order(cast.center, control="SC", placer="ORD-11", accession="A1100", patient_id=PATIENT_1)
    assert list(control.value.fields) == ["ORC-1"]
    with pytest.raises(ApplicationError) as priority:
        order(cast.center, placer="ORD-11", accession="A1100", patient_id=PATIENT_1, priority="whenever")
    assert list(priority.value.fields) == ["ORC-7"]


def test_the_hook_looks_with_one_query(cast, django_assert_num_queries):
    study = ingest_with_accession(cast.center, accession="A1200", patient=1)
    with django_assert_num_queries(1):
        assert waiting_orders_for(cast.center.pk, [study.pk]) == []
    placed = order(cast.center, placer="ORD-12", accession="A1300", patient_id=PATIENT_1)
    other = ingest_with_accession(cast.center, accession="A1300", patient=1)
    assert waiting_orders_for(cast.center.pk, [study.pk, other.pk]) == [(placed.pk, other.pk)]


def test_a_study_without_an_order_waits_then_is_listed_and_the_admins_told(cast, settings):
    settings.RIS_ORDER_WAIT_MINUTES = 60
    before = ingest_with_accession(cast.center, accession="A1400", patient=1)  # before the interface: not listed
    Study.objects.filter(pk=before.pk).update(received_at=timezone.now() - timedelta(days=1))
    interface = interface_for(cast.center)
    type(interface).objects.filter(pk=interface.pk).update(created_at=timezone.now() - timedelta(hours=3))
    late = ingest_with_accession(cast.center, accession="A1500", patient=1)
    fresh = ingest_with_accession(cast.center, accession="A1600", patient=1)
    ordered = ingest_with_accession(cast.center, accession="A1700", patient=2)
    order(cast.center, placer="ORD-17", accession="A1700", patient_id=PATIENT_1)  # held, but it has its order
    now = timezone.now()
    Study.objects.filter(pk__in=[late.pk, ordered.pk]).update(received_at=now - timedelta(minutes=62))
    Study.objects.filter(pk=fresh.pk).update(received_at=now - timedelta(minutes=10))
    assert list(selectors.studies_waiting_for_order(cast.center, now=now)) == [late]
    assert not ReadRequest.objects.filter(study=late).exists()  # never posted by itself
    assert waiting.notify_unordered_studies(now=now) == 1
    assert Notification.objects.filter(user=cast.center_admin, title="1 study waiting for an order").exists()
    assert waiting.notify_unordered_studies(now=now + timedelta(minutes=5)) == 0  # told once
    # A center without an interface: nothing waits.
    ingest_with_accession(cast.other_center, accession="A1800", patient=1)
    assert list(selectors.studies_waiting_for_order(cast.other_center, now=now + timedelta(hours=2))) == []


def test_the_demo_lakeside_orders_arrive_by_hl7_one_matched_one_waiting_one_cancelled(cast, reader):
    from marketplace.demo import MarketplaceReport
    from marketplace.demo_ris import load_demo_ris
    from marketplace.ris_models import Hl7Message

    assert cast.center.slug == "lakeside"
    for _ in range(2):  # a second run finds everything and does nothing twice
        report = MarketplaceReport()
        load_demo_ris({"lakeside": cast.center}, report=report, profile="small")
        assert report.problems == []
    states = dict(RisOrder.objects.filter(center=cast.center).values_list("placer_order_number", "status"))
    assert states == {"LKS-ORD-0001": "posted", "LKS-ORD-0002": "waiting", "LKS-ORD-0003": "cancelled"}
    matched = RisOrder.objects.get(placer_order_number="LKS-ORD-0001")
    assert matched.read_request.study.accession_number == "LKSRIS0001"
    assert ReadRequest.objects.filter(center=cast.center).count() == 1
    log = Hl7Message.objects.filter(interface__center=cast.center, direction="in")
    assert sorted(log.values_list("control_id", "ack_code")) == [
        ("DEMO-ORM-0001", "AA"), ("DEMO-ORM-0002", "AA"), ("DEMO-ORM-0003", "AA"), ("DEMO-ORM-0004", "AA")]
