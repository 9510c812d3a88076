"""A radiologist's API: open offers (de-identified), the exactly-once claim and its 409s, decline, their
reads with the viewer link, start and release; through HTTP against the real services and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import License
from marketplace.models import Assignment, Offer, ReadRequest, Status
from marketplace.services.clock import sla_tick
from marketplace.services.requests import read_request_cancel
from tests.conftest import enroll_totp
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post

OFFERS, ASSIGNMENTS = reverse("api_offers"), reverse("api_assignments")


def offer_url(offer: Offer, action: str) -> str:
    return reverse(f"api_offer_{action}", kwargs={"public_id": offer.public_id})


def assignment_url(assignment_id, action: str) -> str:
    return reverse(f"api_assignment_{action}", kwargs={"public_id": assignment_id})


def error_of(response) -> dict:
    return response.json()["error"]


def rival_reader(cast):
    """Another eligible radiologist of the cast's group (enrolled in TOTP, as PHI roles must be)."""
    rival = make_radiologist(group=cast.group, name="Dr Rival")
    enroll_totp(rival.user)
    return rival


@pytest.fixture
def reader_api(cast, login, reader):
    return login(cast.radiologist, api=True)


@pytest.fixture
def offered(cast, ct_study, reader):
    """An open routine CT read offered to the cast's radiologist, with clinical history the offer must not show."""
    read_request = post(cast.technologist, ct_study, clinical_history="Known glioma, seizures")
    return Offer.objects.get(read_request=read_request, radiologist=reader)


# --- offers -----------------------------------------------------------------------------------------

def test_my_offers_show_the_deidentified_summary_with_quote_and_clock(cast, ct_study, offered, reader_api):
    body = reader_api.get(OFFERS).json()
    assert body["count"] == 1
    summary = body["results"][0]
    read_request = offered.read_request
    assert summary["id"] == str(offered.public_id)
    assert summary["read_request"] == str(read_request.public_id)
    assert summary["modalities"] == ["CT"]
    assert summary["priority"] == "routine"
    assert summary["kind"] == "primary"
    assert summary["jurisdiction"] == "US-TX"
    assert summary["center"] == "Lakeside Imaging"
    assert summary["quoted_cents"] == read_request.quoted_cents
    assert summary["currency"] == "USD"
    assert summary["number_of_images"] == ct_study.number_of_instances
    assert summary["remaining_seconds"] > 0
    assert summary["deadline"].endswith("Z")
    assert summary["links"]["claim"] == offer_url(offered, "claim")
    text = str(body)
    for phi in ("glioma", ct_study.patient_name, ct_study.patient_id, ct_study.study_instance_uid):
        assert phi not in text
    assert "clinical_history" not in summary
    assert "study" not in summary


def test_people_without_offers_get_an_empty_list(cast, offered, login):
    for user in (cast.center_admin, cast.platform_staff, cast.patient):
        assert login(user, api=True).get(OFFERS).json()["results"] == []


def test_claim_makes_me_the_assignee_with_a_viewer_link(cast, ct_study, offered, reader_api):
    response = reader_api.post(offer_url(offered, "claim"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assignment = Assignment.objects.get(public_id=body["id"])
    assert assignment.status == "active"
    assert assignment.grant.level == "full"
    assert body["read_request"]["status"] == "assigned"
    assert body["read_request"]["study"]["study_instance_uid"] \
        == ct_study.study_instance_uid
    assert body["links"]["viewer"] == f"/viewer/viewer?StudyInstanceUIDs={ct_study.study_instance_uid}"
    assert reader_api.get(OFFERS).json()["results"] == []


def test_the_second_claimant_gets_409_naming_the_state(cast, ct_study, reader, login, reader_api):
    rival = rival_reader(cast)
    read_request = post(cast.technologist, ct_study)
    rival_offer = Offer.objects.get(read_request=read_request, radiologist=rival)
    assert login(rival.user, api=True).post(offer_url(rival_offer, "claim")).status_code == 201
    response = reader_api.post(offer_url(Offer.objects.get(read_request=read_request, radiologist=reader), "claim"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "taken"
    assert error_of(response)["fields"]["status"] == ["assigned"]
    assert Assignment.objects.filter(read_request=read_request).count() == 1


def test_claiming_an_offer_withdrawn_by_cancellation_is_409(cast, offered, reader_api):
    read_request_cancel(actor=actor(cast.technologist), read_request=offered.read_request, reason="duplicate")
    offered.refresh_from_db()
    assert offered.status == Offer.Status.WITHDRAWN
    response = reader_api.post(offer_url(offered, "claim"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "not_open"
    assert "cancelled" in error_of(response)["message"]


def test_claiming_an_offer_that_expired_with_its_request_is_409(cast, offered, reader_api):
    sla_tick(at=offered.read_request.deadline + timedelta(minutes=1))
    offered.refresh_from_db()
    assert offered.status == Offer.Status.EXPIRED
    response = reader_api.post(offer_url(offered, "claim"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "not_open"
    assert error_of(response)["fields"]["status"] == ["expired"]


def test_claiming_an_offer_i_declined_is_409(cast, offered, reader_api):
    assert reader_api.post(offer_url(offered, "decline"), {"reason": "not my field"}, format="json").status_code == 200
    response = reader_api.post(offer_url(offered, "claim"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "offer_declined"


def test_claiming_when_no_longer_eligible_is_409_with_the_reason(cast, offered, reader, reader_api):
    License.objects.filter(radiologist=reader).update(expires_on=timezone.now().date() - timedelta(days=1))
    response = reader_api.post(offer_url(offered, "claim"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "no_longer_eligible"
    assert any("US-TX" in reason for reason in error_of(response)["fields"]["eligibility"])
    assert ReadRequest.objects.get(pk=offered.read_request_id).status == Status.OPEN


def test_another_radiologists_offer_is_not_found(cast, offered, login):
    rival = rival_reader(cast)
    client = login(rival.user, api=True)
    assert client.post(offer_url(offered, "claim")).status_code == 404
    assert client.post(offer_url(offered, "decline"), {}, format="json").status_code == 404
    assert login(cast.center_admin, api=True).post(offer_url(offered, "claim")).status_code == 404
    offered.refresh_from_db()
    assert offered.status == Offer.Status.OPEN


def test_decline_ends_the_offer_and_its_preview(cast, offered, reader_api):
    response = reader_api.post(offer_url(offered, "decline"), {"reason": "outside my hours"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "declined"
    offered.refresh_from_db()
    assert offered.decline_reason == "outside my hours"
    assert offered.grant.revoked_at is not None
    assert reader_api.get(OFFERS).json()["count"] == 0


# --- assignments ------------------------------------------------------------------------------------

def test_my_reads_start_and_release(cast, ct_study, offered, reader_api):
    assignment_id = reader_api.post(offer_url(offered, "claim")).json()["id"]
    listed = reader_api.get(ASSIGNMENTS).json()["results"]
    assert [a["id"] for a in listed] == [assignment_id]
    assert listed[0]["links"]["viewer"].endswith(ct_study.study_instance_uid)
    started = reader_api.post(assignment_url(assignment_id, "start"))
    assert started.status_code == 200
    assert started.json()["read_request"]["status"] == "in_progress"
    assert started.json()["started_at"]
    assert reader_api.post(assignment_url(assignment_id, "release"), {}, format="json").status_code == 400
    released = reader_api.post(assignment_url(assignment_id, "release"), {"reason": "sick"}, format="json")
    assert released.status_code == 200
    assert released.json()["status"] == "released"
    assert released.json()["read_request"]["status"] == "open"
    assert released.json()["release_reason"] == "sick"
    assert reader_api.get(ASSIGNMENTS).json()["results"] == []
    again = reader_api.post(assignment_url(assignment_id, "release"), {"reason": "twice"}, format="json")
    assert again.status_code == 409
    assert error_of(again)["code"] == "not_active"


def test_someone_elses_assignment_is_not_found(cast, offered, reader_api, login):
    assignment_id = reader_api.post(offer_url(offered, "claim")).json()["id"]
    rival = rival_reader(cast)
    for user in (rival.user, cast.center_admin):
        client = login(user, api=True)
        assert client.post(assignment_url(assignment_id, "start")).status_code == 404
        assert client.post(assignment_url(assignment_id, "release"), {"reason": "x"}, format="json").status_code \
            == 404
        assert client.get(ASSIGNMENTS).json()["results"] == []


# --- query counts -----------------------------------------------------------------------------------

def test_offers_and_reads_cost_the_same_queries_for_3_and_12_rows(cast, login):
    """Offers and assignments each come from one page query (plus its count), whatever the number of rows."""
    reader = make_radiologist(user=cast.radiologist, capacity=30)
    client = login(cast.radiologist, api=True)
    client.get(OFFERS)  # the session's first request does its own bookkeeping
    study = ingest_study(cast.center, modality="CT")

    def queries_for(rows: int) -> tuple[int, int]:
        while Offer.objects.filter(radiologist=reader).count() < 2 * rows:
            post(cast.technologist, study)
        for offer in Offer.objects.filter(radiologist=reader, status="open")[:rows - Assignment.objects.count()]:
            client.post(offer_url(offer, "claim"))
        counts = []
        for url in (OFFERS, ASSIGNMENTS):
            with CaptureQueriesContext(connection) as seen:
                body = client.get(url).json()
            assert body["count"] == rows, url
            counts.append(len(seen.captured_queries))
        return tuple(counts)

    assert queries_for(3) == queries_for(12)
