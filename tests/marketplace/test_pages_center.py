"""The center's read-request pages: posting from the form, the worklist, a request's page, cancel, explain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from marketplace.models import Kind, Offer, ReadRequest, Status
from marketplace.services.offers import assignment_start, offer_claim, read_request_mark_reported
from marketplace.services.requests import center_settings
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post, set_rate

pytestmark = pytest.mark.django_db


def _form(study_ids, **fields) -> dict:
    return {"study": [str(s) for s in study_ids], "kind": "primary", "priority": "routine", "subspecialty": "",
            "clinical_history": "Headache for 3 days.", "reason_for_exam": "Rule out bleed",
            "special_instructions": "", "audience": "marketplace", "widen_after": "", **fields}


def test_the_form_shows_the_quote_deadline_and_the_patients_other_studies(cast, ct_study, login, flat_prices):
    earlier = ingest_study(cast.center, modality="CR", patient=1, description="CHEST XRAY EARLIER")
    ingest_study(cast.center, modality="CT", patient=2, description="SOMEONE ELSE")
    response = login(cast.technologist).get(reverse("read_request_create"), {"study": ct_study.public_id})
    assert response.status_code == 200
    body = response.content.decode()
    assert "$35.00" in body
    assert "$37.00" in body
    assert "CHEST XRAY EARLIER" in body
    assert str(earlier.pk) in body
    assert "SOMEONE ELSE" not in body


def test_posting_one_study_from_the_form_opens_it_and_goes_to_its_page(cast, ct_study, reader, login):
    response = login(cast.technologist).post(reverse("read_request_create"),
                                             _form([ct_study.public_id], priority="stat"))
    read_request = ReadRequest.objects.get(study=ct_study)
    assert response.status_code == 302
    assert response["Location"] == reverse("read_request_detail", args=[read_request.public_id])
    assert read_request.status == Status.OPEN
    assert read_request.priority == "stat"
    assert read_request.clinical_history == "Headache for 3 days."
    assert Offer.objects.filter(read_request=read_request, radiologist=reader).exists()


def test_posting_several_studies_makes_one_request_each(cast, login):
    studies = [ingest_study(cast.center, modality="CT", patient=n) for n in (3, 4)]
    response = login(cast.center_admin).post(reverse("read_request_create"),
                                             _form([s.public_id for s in studies]))
    assert response.status_code == 302
    assert response["Location"] == reverse("read_request_list")
    assert ReadRequest.objects.filter(study__in=studies).count() == 2


def test_a_refused_post_names_the_field_and_posts_nothing(cast, ct_study, login):
    response = login(cast.technologist).post(reverse("read_request_create"),
                                             _form([ct_study.public_id], kind=Kind.OVERREAD))
    assert response.status_code == 400
    assert "An overread names the signed read it reviews." in response.content.decode()
    response = login(cast.technologist).post(reverse("read_request_create"),
                                             _form([ct_study.public_id], audience="preferred"))
    assert "Name at least one preferred radiologist or group." in response.content.decode()
    response = login(cast.technologist).post(reverse("read_request_create"),
                                             _form([ct_study.public_id], widen_after="soon"))
    assert 'Enter whole minutes or &quot;never&quot;.' in response.content.decode()
    assert not ReadRequest.objects.exists()


def test_posting_another_centers_study_is_404(cast, login):
    theirs = ingest_study(cast.other_center, modality="CT")
    client = login(cast.technologist)
    assert client.get(reverse("read_request_create"), {"study": theirs.public_id}).status_code == 404
    assert client.post(reverse("read_request_create"), _form([theirs.public_id])).status_code == 404
    assert client.get(reverse("read_request_create"), {"study": "not-a-uuid"}).status_code == 404
    assert not ReadRequest.objects.exists()


def test_the_list_filters_and_shows_state_assignee_quote_and_clock(cast, reader, login, flat_prices):
    stat = post(cast.technologist, ingest_study(cast.center, patient=1), priority="stat")
    routine = post(cast.technologist, ingest_study(cast.center, modality="MR", patient=2))
    offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=stat))
    client = login(cast.center_viewer)
    body = client.get(reverse("read_request_list")).content.decode()
    assert reader.name in body
    assert "$37.00" in body
    assert "left" in body
    assert 'hx-trigger="every 15s"' in body
    only_mr = client.get(reverse("read_request_rows"), {"modality": "MR"}).content.decode()
    assert str(routine.public_id) in only_mr
    assert str(stat.public_id) not in only_mr
    assigned = client.get(reverse("read_request_rows"), {"status": "assigned"}).content.decode()
    assert str(stat.public_id) in assigned
    assert str(routine.public_id) not in assigned


def test_a_late_request_shows_a_red_clock(cast, reader, login):
    read_request = post(cast.technologist, ingest_study(cast.center), priority="stat")
    ReadRequest.objects.filter(pk=read_request.pk).update(deadline=timezone.now() - timedelta(minutes=5))
    body = login(cast.technologist).get(reverse("read_request_rows")).content.decode()
    assert "sla-late" in body
    assert "5 min late" in body


def _queries(client, url) -> int:
    client.get(url)  # the first request of a session writes it; count a steady one
    with CaptureQueriesContext(connection) as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def test_the_rows_cost_the_same_queries_for_3_and_12_requests(cast, reader, login):
    client = login(cast.technologist)
    for n in range(3):
        post(cast.technologist, ingest_study(cast.center, patient=n))
    few = _queries(client, reverse("read_request_rows"))
    for n in range(9):
        post(cast.technologist, ingest_study(cast.center, patient=n + 3))
    assert ReadRequest.objects.count() == 12
    assert _queries(client, reverse("read_request_rows")) == few
    assert _queries(client, reverse("read_request_list")) == _queries(client, reverse("read_request_list"))


def test_the_request_page_shows_history_offers_and_is_audited_as_a_phi_read(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study, clinical_history="Fell off a ladder")
    Offer.objects.filter(read_request=read_request).update(status="declined", decline_reason="Too busy tonight")
    response = login(cast.center_admin).get(reverse("read_request_detail", args=[read_request.public_id]))
    body = response.content.decode()
    assert "Fell off a ladder" in body
    assert "Too busy tonight" in body
    assert reader.name in body
    assert "Draft → <strong>Open</strong>" in body
    event = AuditEvent.objects.filter(action="read_request.viewed").latest("id")
    assert event.object_id == str(read_request.public_id)
    assert event.actor == cast.center_admin


def test_the_assignee_sees_the_request_with_open_in_viewer_but_no_offers(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request))
    body = login(cast.radiologist).get(reverse("read_request_detail", args=[read_request.public_id])).content.decode()
    assert reverse("assignment_open", args=[assignment.public_id]) in body
    assert 'id="offers"' not in body
    assert "Cancel read request" not in body


def test_cancel_from_the_request_page(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    client = login(cast.technologist)
    url = reverse("read_request_cancel", args=[read_request.public_id])
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 400
    assert "Say why." in refused.content.decode()
    response = client.post(url, {"reason": "Patient left"})
    assert response.status_code == 302
    read_request.refresh_from_db()
    assert read_request.status == Status.CANCELLED
    assert read_request.cancel_reason == "Patient left"
    assert not Offer.objects.filter(read_request=read_request, status="open").exists()


def test_cancel_after_the_report_is_signed_is_refused_on_the_form(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request))
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request_mark_reported(read_request=read_request, actor=actor(cast.radiologist))
    response = login(cast.center_admin).post(reverse("read_request_cancel", args=[read_request.public_id]),
                                             {"reason": "Changed our mind"})
    assert response.status_code == 400
    assert "This read request is reported: it can no longer be cancelled." in response.content.decode()
    read_request.refresh_from_db()
    assert read_request.status == Status.REPORTED


def test_a_viewer_cannot_cancel(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    response = login(cast.center_viewer).post(reverse("read_request_cancel", args=[read_request.public_id]),
                                              {"reason": "no"})
    assert response.status_code == 403
    read_request.refresh_from_db()
    assert read_request.status == Status.OPEN


def test_explain_shows_the_ranked_candidates_and_every_kind_of_reason(cast, ct_study, reader, login, flat_prices):
    expired = make_radiologist(name="Dr Expired", license_expires=timezone.now().date() - timedelta(days=1))
    no_hours = make_radiologist(name="Dr Nohours", hours="none")
    pricey = make_radiologist(name="Dr Pricey")
    set_rate(pricey, "CT", "routine", 99_000)
    blocked = make_radiologist(name="Dr Blocked")
    center_settings(cast.center).blocked_radiologists.add(blocked)
    make_radiologist(name="Dr Florida", regions=("FL",))  # no license in TX: not considered
    read_request = post(cast.technologist, ct_study)
    response = login(cast.center_admin).get(reverse("read_request_explain", args=[read_request.public_id]))
    body = response.content.decode()
    assert response.status_code == 200
    assert reader.name in body
    assert "load 0 of 3" in body
    assert "expired" in body
    assert "no reading hours entered" in body
    assert "minimum rate 99000 cents above quote 3500" in body
    assert f"blocked by {cast.center.name}" in body
    assert "1 not considered" in body
    assert "Dr Florida" not in body.split("Left out")[1]
    why = login(cast.center_admin).get(reverse("read_request_explain", args=[read_request.public_id]),
                                       {"radiologist": no_hours.pk}).content.decode()
    assert 'id="why"' in why
    assert "no reading hours entered" in why.split('id="why"')[1].split("</div>")[0]
    assert expired.name in body


def test_explain_names_the_original_reader_of_an_overread(cast, ct_study, reader, login):
    make_radiologist(name="Dr Second")
    first = post(cast.technologist, ct_study)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=first,
                                                                                    radiologist=reader))
    assignment_start(actor=actor(cast.radiologist), assignment=assignment)
    read_request_mark_reported(read_request=first, actor=actor(cast.radiologist))
    response = login(cast.technologist).post(reverse("read_request_create"), _form(
        [ct_study.public_id], kind=Kind.OVERREAD, original_request=first.public_id))
    assert response.status_code == 302
    overread = ReadRequest.objects.get(kind=Kind.OVERREAD)
    body = login(cast.technologist).get(reverse("read_request_explain", args=[overread.public_id])).content.decode()
    assert "original reader of this study" in body
