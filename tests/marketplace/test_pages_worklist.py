"""The radiologist's worklist: de-identified offers, claim (and a lost race), decline, open in viewer, release;
and operations' reads-at-risk page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketplace.models import Assignment, Offer, ReadRequest, Status
from marketplace.services.offers import offer_claim
from studies.models import Study
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post

pytestmark = pytest.mark.django_db

CANARY = "Quuxberg^Zephyrine"


def _canary_study(cast):
    study = ingest_study(cast.center, modality="CT")
    Study.objects.filter(pk=study.pk).update(patient_name=CANARY, patient_id="CANARY-MRN-77")
    study.refresh_from_db()
    return study


def test_offers_show_quote_deadline_and_summary_without_patient_data(cast, reader, login, flat_prices):
    read_request = post(cast.technologist, _canary_study(cast), priority="stat",
                        clinical_history="Secret history canary")
    response = login(cast.radiologist).get(reverse("radiologist_worklist"))
    body = response.content.decode()
    assert response.status_code == 200
    offers = body.split('id="offers"')[1].split('id="my-reads"')[0]
    assert "$37.00" in offers
    assert "$31.45" in offers  # what the reader earns: the quote less the 15 % fee
    assert "STAT" in offers
    assert "US-TX" in offers
    assert cast.center.name in offers
    assert "data-deadline" in offers
    assert "left" in offers
    assert reverse("offer_claim", args=[Offer.objects.get(read_request=read_request).public_id]) in offers
    assert "Quuxberg" not in body
    assert "Zephyrine" not in body
    assert "CANARY-MRN" not in body
    assert "Secret history canary" not in body
    assert 'hx-trigger="every 15s"' in body


def test_claim_from_the_worklist_takes_the_read(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    client = login(cast.radiologist)
    response = client.post(reverse("offer_claim", args=[offer.public_id]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("radiologist_worklist")
    assert "The read is yours" in response.content.decode()
    read_request.refresh_from_db()
    assert read_request.status == Status.ASSIGNED
    assert read_request.assignee == reader
    my_reads = response.content.decode().split('id="my-reads"')[1]
    assignment = Assignment.objects.get(read_request=read_request)
    assert reverse("assignment_open", args=[assignment.public_id]) in my_reads


def test_a_claim_that_lost_the_race_says_so(cast, ct_study, reader, login):
    rival = make_radiologist(name="Dr Rival")
    read_request = post(cast.technologist, ct_study)
    offer_claim(actor=actor(rival.user), offer=Offer.objects.get(read_request=read_request, radiologist=rival))
    mine = Offer.objects.get(read_request=read_request, radiologist=reader)
    response = login(cast.radiologist).post(reverse("offer_claim", args=[mine.public_id]), follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "This read was already claimed by another radiologist." in body
    read_request.refresh_from_db()
    assert read_request.assignee == rival


def test_claiming_someone_elses_offer_is_404(cast, ct_study, reader, login):
    rival = make_radiologist(name="Dr Rival")
    read_request = post(cast.technologist, ct_study)
    theirs = Offer.objects.get(read_request=read_request, radiologist=rival)
    assert login(cast.radiologist).post(reverse("offer_claim", args=[theirs.public_id])).status_code == 404
    assert ReadRequest.objects.get(pk=read_request.pk).status == Status.OPEN


def test_decline_with_a_reason(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    offer = Offer.objects.get(read_request=read_request, radiologist=reader)
    response = login(cast.radiologist).post(reverse("offer_decline", args=[offer.public_id]),
                                            {"reason": "Not my area"}, follow=True)
    assert "Offer declined." in response.content.decode()
    offer.refresh_from_db()
    assert offer.status == "declined"
    assert offer.decline_reason == "Not my area"


def test_open_in_viewer_starts_the_read_and_goes_to_the_reading_workspace(cast, ct_study, reader, login):
    read_request = post(cast.technologist, ct_study)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request))
    response = login(cast.radiologist).post(reverse("assignment_open", args=[assignment.public_id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("report_workspace", args=[read_request.public_id])
    read_request.refresh_from_db()
    assert read_request.status == Status.IN_PROGRESS


def test_release_with_a_reason_reopens_the_read(cast, ct_study, reader, login):
    make_radiologist(name="Dr Other")
    read_request = post(cast.technologist, ct_study)
    assignment = offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request,
                                                                                    radiologist=reader))
    client = login(cast.radiologist)
    url = reverse("assignment_release", args=[assignment.public_id])
    assert "Say why you give this read back." in client.post(url, {"reason": ""}, follow=True).content.decode()
    response = client.post(url, {"reason": "Family emergency"}, follow=True)
    assert "Read released" in response.content.decode()
    read_request.refresh_from_db()
    assert read_request.status == Status.OPEN
    assert read_request.assignee is None


def _count(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def test_worklist_rows_cost_the_same_queries_for_3_and_12_rows(cast, reader, login):
    reader.max_concurrent_cases = 20
    reader.save()
    client = login(cast.radiologist)

    def add(n):
        for i in range(n):
            read_request = post(cast.technologist, ingest_study(cast.center, patient=i))
            if i % 2:
                offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request))

    add(3)
    few = _count(client, reverse("radiologist_worklist_rows"))
    add(9)
    assert _count(client, reverse("radiologist_worklist_rows")) == few


def test_operations_see_unclaimed_stats_one_click_from_explain(cast, ct_study, login):
    read_request = post(cast.technologist, ct_study, priority="stat")  # nobody eligible: flagged at posting
    client = login(cast.platform_staff)
    body = client.get(reverse("ops_reads")).content.decode()
    stat = body.split('id="ops-unclaimed_stat"')[1].split("</section>")[0]
    assert reverse("read_request_explain", args=[read_request.public_id]) in stat
    flagged = body.split('id="ops-no_reader_on_shift"')[1].split("</section>")[0]
    assert cast.center.name in flagged
    assert client.get(reverse("read_request_explain", args=[read_request.public_id])).status_code == 200
    few = _count(client, reverse("ops_reads_rows"))
    for n in range(4):
        post(cast.technologist, ingest_study(cast.center, patient=n), priority="stat")
    assert _count(client, reverse("ops_reads_rows")) == few
