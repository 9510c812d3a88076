"""The read-request API: posting (with the bad-input list of issue 13), the center's list, detail, cancel,
history and the explain view, through HTTP against the real services and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import AuditEvent
from marketplace.models import Offer, ReadRequest, Status
from marketplace.services.offers import assignment_start, offer_claim, read_request_mark_reported
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post

LIST = reverse("api_read_requests")


def detail_url(read_request, action: str = "") -> str:
    name = f"api_read_request_{action}" if action else "api_read_request_detail"
    return reverse(name, kwargs={"public_id": read_request.public_id})


def error_of(response) -> dict:
    return response.json()["error"]


@pytest.fixture
def tech_api(cast, login):
    return login(cast.technologist, api=True)


def claimed(cast, read_request, reader):
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    return offer_claim(actor=actor(cast.radiologist), offer=offer)


# --- posting ----------------------------------------------------------------------------------------

def test_technologist_posts_a_read_request_by_the_studys_public_id(cast, ct_study, reader, tech_api):
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "priority": "stat",
                                    "clinical_history": "Fall, headache", "reason_for_exam": "trauma"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    read_request = ReadRequest.objects.get(public_id=body["id"])
    assert read_request.center == cast.center
    assert read_request.posted_by == cast.technologist
    assert body["status"] == "open"
    assert body["priority"] == "stat"
    assert body["jurisdiction"] == "US-TX"
    assert body["study"] == {"id": str(ct_study.public_id), "study_instance_uid": ct_study.study_instance_uid,
                             "accession_number": ct_study.accession_number}
    assert body["modalities"] == ["CT"]
    assert body["quoted_cents"] > 0
    assert body["currency"] == "USD"
    assert body["deadline"].endswith("Z")
    assert 3500 <= body["remaining_seconds"] <= 3600
    assert body["flags"] == {"no_on_shift_reader": False, "at_risk": False, "late": False}
    assert body["clinical_history"] == "Fall, headache"
    assert body["links"]["candidates"] == detail_url(read_request, "candidates")
    assert Offer.objects.filter(read_request=read_request, radiologist=reader, status="open").exists()


def test_a_study_instance_uid_names_the_study_and_comparisons_are_the_same_patients(cast, ct_study, reader,
                                                                                    tech_api):
    earlier = ingest_study(cast.center, modality="CT", patient=1)
    response = tech_api.post(LIST, {"study_instance_uid": ct_study.study_instance_uid,
                                    "comparison_studies": [str(earlier.public_id)]}, format="json")
    assert response.status_code == 201, response.json()
    assert [s["id"] for s in response.json()["comparison_studies"]] == [str(earlier.public_id)]


def test_an_organization_key_with_the_technologist_role_posts(cast, ct_study, reader, login):
    key, secret = account_services.api_key_create(actor=actor(cast.center_admin), organization=cast.center,
                                                  name="RIS bridge")
    client = login(None, api=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post(LIST, {"study": ct_study.study_instance_uid}, format="json")
    assert response.status_code == 201, response.json()
    assert ReadRequest.objects.get(public_id=response.json()["id"]).posted_by is None


def test_a_direct_request_names_its_reader_and_an_unknown_group_is_not_found(cast, ct_study, reader, tech_api):
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "audience": "direct",
                                    "direct_radiologist": str(reader.public_id)}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["direct_radiologist"] == {"id": str(reader.public_id), "name": reader.name}
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "audience": "preferred",
                                    "preferred_groups": [str(cast.center.public_id)]}, format="json")
    assert response.status_code == 404
    assert "preferred_groups" in error_of(response)["fields"]  # a center is not a radiology group


def test_posting_for_another_centers_study_is_not_found(cast, reader, tech_api):
    theirs = ingest_study(cast.other_center, modality="CT")
    for body in ({"study": str(theirs.public_id)}, {"study_instance_uid": theirs.study_instance_uid}):
        response = tech_api.post(LIST, body, format="json")
        assert response.status_code == 404
    assert not ReadRequest.objects.exists()


def test_a_comparison_study_of_another_center_is_not_found(cast, ct_study, tech_api):
    theirs = ingest_study(cast.other_center, modality="CT")
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "comparison_studies": [str(theirs.public_id)]},
                             format="json")
    assert response.status_code == 404
    assert "comparison_studies" in error_of(response)["fields"]


def test_a_study_without_an_imaging_modality_is_refused_naming_the_study(cast, ct_study, tech_api):
    type(ct_study).objects.filter(pk=ct_study.pk).update(modalities_in_study="SR")
    response = tech_api.post(LIST, {"study": str(ct_study.public_id)}, format="json")
    assert response.status_code == 400
    assert "no imaging modality" in error_of(response)["fields"]["study"][0]


def test_a_study_without_a_jurisdiction_is_refused_naming_the_study(cast, ct_study, tech_api):
    type(ct_study).objects.filter(pk=ct_study.pk).update(jurisdiction_country="", jurisdiction_region="")
    response = tech_api.post(LIST, {"study": str(ct_study.public_id)}, format="json")
    assert response.status_code == 400
    assert "no jurisdiction" in error_of(response)["fields"]["study"][0]


def test_a_deadline_in_the_past_or_without_an_offset_is_refused(cast, ct_study, tech_api):
    past = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "deadline": past}, format="json")
    assert response.status_code == 400
    assert error_of(response)["fields"]["deadline"] == ["The deadline is in the past."]
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "deadline": "2030-01-01T08:00:00"},
                             format="json")
    assert response.status_code == 400
    assert "offset" in error_of(response)["fields"]["deadline"][0]


def test_neither_or_an_unknown_choice_is_refused_naming_the_field(cast, ct_study, tech_api):
    assert "study" in error_of(tech_api.post(LIST, {}, format="json"))["fields"]
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "priority": "asap"}, format="json")
    assert response.status_code == 400
    assert "priority" in error_of(response)["fields"]


def test_an_overread_of_a_report_that_is_not_signed_is_refused(cast, ct_study, reader, tech_api):
    original = post(cast.technologist, ct_study)
    claimed(cast, original, reader)
    response = tech_api.post(LIST, {"study": str(ct_study.public_id), "kind": "overread",
                                    "original_request": str(original.public_id)}, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "not_signed"
    assert "original_request" in error_of(response)["fields"]


def test_only_admins_and_technologists_of_a_center_post(cast, ct_study, login):
    for user in (cast.center_finance, cast.center_viewer, cast.radiologist, cast.patient):
        response = login(user, api=True).post(LIST, {"study": str(ct_study.public_id)}, format="json")
        assert response.status_code == 403, user
    assert not ReadRequest.objects.exists()


def test_a_replayed_idempotency_key_returns_the_first_request_and_another_body_is_422(cast, ct_study, reader,
                                                                                      tech_api):
    body = {"study": str(ct_study.public_id), "priority": "urgent"}
    first = tech_api.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="ris-4711")
    again = tech_api.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY="ris-4711")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert ReadRequest.objects.count() == 1
    other = tech_api.post(LIST, {**body, "priority": "stat"}, format="json", HTTP_IDEMPOTENCY_KEY="ris-4711")
    assert other.status_code == 422
    assert error_of(other)["code"] == "idempotency_key_reused"
    assert ReadRequest.objects.count() == 1


# --- the center's list ------------------------------------------------------------------------------

def test_the_list_shows_my_centers_requests_filtered_without_clinical_history(cast, ct_study, reader, login):
    stat = post(cast.technologist, ct_study, priority="stat", clinical_history="secret history")
    routine = post(cast.technologist, ingest_study(cast.center, modality="MR"), priority="routine")
    post(cast.other_admin, ingest_study(cast.other_center, modality="CT"))
    client = login(cast.center_viewer, api=True)
    body = client.get(LIST).json()
    assert body["count"] == 2
    assert [r["id"] for r in body["results"]] == [str(stat.public_id), str(routine.public_id)]
    assert "clinical_history" not in body["results"][0]
    assert "secret history" not in str(body)
    assert [r["id"] for r in client.get(LIST, {"priority": "routine"}).json()["results"]] == [str(routine.public_id)]
    assert [r["id"] for r in client.get(LIST, {"modality": "ct"}).json()["results"]] == [str(stat.public_id)]
    assert client.get(LIST, {"status": "assigned"}).json()["count"] == 0
    assert client.get(LIST, {"status": "active", "page_size": 1}).json()["next"]
    # finance and people of no center get an empty list, not the center's requests
    for user in (cast.center_finance, cast.radiologist, cast.other_admin):
        other = login(user, api=True).get(LIST).json()
        assert all(r["id"] not in (str(stat.public_id), str(routine.public_id)) for r in other["results"])


def test_the_list_costs_the_same_queries_for_3_and_12_requests(cast, ct_study, reader, login):
    """Every third request is assigned, so that the assignee column is filled too."""
    client = login(cast.center_admin, api=True)
    client.get(LIST)  # the session's first request does its own bookkeeping

    def queries_for(rows: int) -> int:
        while ReadRequest.objects.count() < rows:
            read_request = post(cast.technologist, ct_study)
            if ReadRequest.objects.count() % 3 == 0:
                claimed(cast, read_request, reader)
        with CaptureQueriesContext(connection) as seen:
            response = client.get(LIST)
        assert response.status_code == 200
        assert response.json()["count"] == rows
        return len(seen.captured_queries)

    reader.max_concurrent_cases = 20
    reader.save(update_fields=["max_concurrent_cases"])
    assert queries_for(3) == queries_for(12)


# --- detail, cancel, history ------------------------------------------------------------------------

def test_the_detail_carries_clinical_history_and_is_audited_as_a_phi_read(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study, clinical_history="Fall from ladder")
    response = login(cast.center_viewer, api=True).get(detail_url(read_request))
    assert response.status_code == 200
    assert response.json()["clinical_history"] == "Fall from ladder"
    event = AuditEvent.objects.filter(action="read_request.viewed").latest("id")
    assert event.object_id == str(read_request.public_id)
    assert event.actor == cast.center_viewer
    assert event.organization == cast.center
    assert event.extra["study"] == ct_study.study_instance_uid


def test_a_radiologist_never_offered_the_request_cannot_read_it_and_the_assignee_can(cast, ct_study, reader,
                                                                                     login):
    stranger = make_radiologist(regions=("FL",))
    read_request = post(cast.technologist, ct_study)
    assert login(stranger.user, api=True).get(detail_url(read_request)).status_code == 404
    radiologist = login(cast.radiologist, api=True)
    assert radiologist.get(detail_url(read_request)).status_code == 404  # offered, not yet assigned
    claimed(cast, read_request, reader)
    assert radiologist.get(detail_url(read_request)).status_code == 200
    assert login(cast.other_admin, api=True).get(detail_url(read_request)).status_code == 404


def test_cancel_with_a_reason_and_the_history_shows_each_move(cast, ct_study, reader, tech_api):
    read_request = post(cast.technologist, ct_study)
    assert tech_api.post(detail_url(read_request, "cancel"), {}, format="json").status_code == 400
    response = tech_api.post(detail_url(read_request, "cancel"), {"reason": "ordered twice"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Offer.objects.get(read_request=read_request).status == "withdrawn"
    history = tech_api.get(detail_url(read_request, "history")).json()["results"]
    assert [(h["from"], h["to"]) for h in history] == [("draft", "open"), ("open", "cancelled")]
    assert history[1]["actor"] == cast.technologist.email
    assert history[1]["reason"] == "ordered twice"
    assert history[1]["at"].endswith("Z")


def test_cancelling_after_the_read_was_reported_is_refused(cast, ct_study, reader, tech_api):
    read_request = post(cast.technologist, ct_study)
    assignment = claimed(cast, read_request, reader)
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist))
    response = tech_api.post(detail_url(read_request, "cancel"), {"reason": "not needed"}, format="json")
    assert response.status_code == 409
    assert error_of(response)["code"] == "invalid_transition"
    assert "reported" in error_of(response)["message"]
    read_request.refresh_from_db()
    assert read_request.status == Status.REPORTED


def test_a_viewer_may_not_cancel_and_another_center_gets_404(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    url = detail_url(read_request, "cancel")
    assert login(cast.center_viewer, api=True).post(url, {"reason": "x"}, format="json").status_code == 403
    assert login(cast.other_admin, api=True).post(url, {"reason": "x"}, format="json").status_code == 404
    assert login(cast.radiologist, api=True).post(url, {"reason": "x"}, format="json").status_code == 404
    read_request.refresh_from_db()
    assert read_request.status == Status.OPEN


# --- explain ----------------------------------------------------------------------------------------

def test_candidates_rank_the_eligible_and_give_reasons_for_the_rest(cast, ct_study, reader, login):
    full = make_radiologist(capacity=1, name="Dr Busy")
    read_request = post(cast.technologist, ct_study)
    claimed_elsewhere = post(cast.technologist, ingest_study(cast.center, modality="CT"))
    offer_claim(actor=actor(full.user), offer=Offer.objects.get(read_request=claimed_elsewhere, radiologist=full))
    body = login(cast.center_admin, api=True).get(detail_url(read_request, "candidates")).json()
    assert body["read_request"] == str(read_request.public_id)
    ranked = body["candidates"]
    assert ranked[0]["rank"] == 1
    assert ranked[0]["radiologist"]["id"] == str(reader.public_id)
    assert ranked[0]["group"] == "Night Hawk Readers"
    assert "on shift now" in ranked[0]["rank_reasons"]
    busy = next(c for c in body["excluded"] if c["radiologist"]["id"] == str(full.public_id))
    assert "at capacity (1 of 1)" in busy["reasons"]


def test_why_not_dr_x_answers_for_one_reader_without_a_license_here(cast, ct_study, reader, login):
    florida = make_radiologist(regions=("FL",), name="Dr Florida")
    read_request = post(cast.technologist, ct_study)
    client = login(cast.technologist, api=True)
    body = client.get(detail_url(read_request, "candidates"), {"radiologist": str(florida.public_id)}).json()
    assert body["candidates"] == []
    assert [c["radiologist"]["name"] for c in body["excluded"]] == ["Dr Florida"]
    assert any("US-TX" in reason for reason in body["excluded"][0]["reasons"])
    url = detail_url(read_request, "candidates")
    assert client.get(url, {"radiologist": "dr-x"}).status_code == 400
    assert client.get(url, {"radiologist": str(uuid.uuid4())}).status_code == 404


def test_only_the_center_and_operations_see_the_candidates(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    claimed(cast, read_request, reader)
    url = detail_url(read_request, "candidates")
    assert login(cast.platform_staff, api=True).get(url).status_code == 200
    for user in (cast.radiologist, cast.center_finance, cast.other_admin):
        assert login(user, api=True).get(url).status_code == 404, user
