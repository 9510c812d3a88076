"""The marketplace's panel on the dashboard: what waits for each person, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketplace.models import Offer
from marketplace.services.clock import sla_tick
from marketplace.services.offers import offer_claim
from tests.marketplace.helpers import actor, ingest_study, post


def test_a_radiologist_sees_their_offers_and_reads(cast, login, ct_study, reader):
    post(cast.technologist, ct_study, priority="stat")
    claimed = post(cast.technologist, ingest_study(cast.center, patient=3))
    offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=claimed))
    html = login(cast.radiologist).get(reverse("dashboard")).content.decode()
    assert "Reads offered to you" in html
    assert '<div class="stat-value">1</div>' in html  # one open offer, one read
    assert "1 STAT" in html
    assert reverse("radiologist_worklist") in html


def test_a_center_sees_its_requests_by_state_and_at_risk(cast, login, ct_study, reader):
    waiting = post(cast.technologist, ct_study)
    sla_tick(at=waiting.deadline - timedelta(minutes=60))  # 24 h routine: past 80 % of its time
    html = login(cast.center_admin).get(reverse("dashboard")).content.decode()
    assert "Reads waiting for a reader" in html
    assert 'class="card stat warn"' in html  # at risk
    assert "Reads offered to you" not in html


def test_operations_see_the_watch_list_and_finance_sees_no_panel(cast, login, ct_study):
    post(cast.technologist, ct_study, priority="stat")  # nobody eligible on shift: flagged
    html = login(cast.platform_staff).get(reverse("dashboard")).content.decode()
    assert "STAT, nobody on shift" in html
    assert reverse("ops_reads") in html
    finance = login(cast.center_finance).get(reverse("dashboard")).content.decode()
    assert "Reads waiting for a reader" not in finance
    assert "Reads offered to you" not in finance


def test_the_panel_costs_the_same_queries_for_1_and_6_requests(cast, login, reader):
    client = login(cast.center_admin)
    post(cast.technologist, ingest_study(cast.center, patient=4))
    client.get(reverse("dashboard"))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("dashboard"))
    for n in range(5):
        post(cast.technologist, ingest_study(cast.center, patient=5 + n))
    with CaptureQueriesContext(connection) as six:
        client.get(reverse("dashboard"))
    assert len(six) == len(one)
