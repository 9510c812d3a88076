"""Webhook endpoints through the API and the settings-page actions: secret shown once, delivery log,
test-send, removal, the address rule naming ``url``, and 404 for other people's endpoints."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEvent
from marketplace import webhooks
from marketplace.models import WebhookDelivery, WebhookEndpoint
from marketplace.services.webhook_endpoints import webhook_endpoint_test
from tests.marketplace.helpers import actor, post
from tests.marketplace.test_webhooks import Receiver, add_endpoint

LIST = reverse("api_webhook_endpoints")


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE, settings.PRODUCTION = True, False


def detail(endpoint) -> str:
    return reverse("api_webhook_endpoint_detail", args=[endpoint.public_id])


def test_the_secret_is_shown_once_on_create_then_masked(cast, login, receiver, allow_loopback):
    client = login(cast.center_admin, api=True)
    created = client.post(LIST, {"url": receiver.url, "description": "RIS"}, format="json")
    assert created.status_code == 201, created.json()
    endpoint = WebhookEndpoint.objects.get(public_id=created.json()["id"])
    assert created.json()["secret"] == endpoint.secret
    assert created["Cache-Control"] == "no-store"

    listed = client.get(LIST).json()["results"]
    assert [e["id"] for e in listed] == [str(endpoint.public_id)]
    assert endpoint.secret not in str(listed)
    assert endpoint.secret not in str(client.get(detail(endpoint)).json())
    assert AuditEvent.objects.filter(action="webhook_endpoint.created", object_id=str(endpoint.public_id)).exists()


def test_an_endpoint_on_a_private_address_is_refused_naming_the_url_field(cast, login, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = login(cast.center_admin, api=True).post(LIST, {"url": "https://127.0.0.1/hooks"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "private_address"
    assert list(error["fields"]) == ["url"]
    missing = login(cast.center_admin, api=True).post(LIST, {"description": "no url"}, format="json")
    assert missing.status_code == 400
    assert "url" in missing.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_http_in_production_is_refused_through_the_api(cast, login, settings):
    settings.PRODUCTION, settings.WEBHOOK_ALLOW_PRIVATE = True, True
    response = login(cast.center_admin, api=True).post(LIST, {"url": "http://93.184.215.14/hooks"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "https_required"
    assert list(response.json()["error"]["fields"]) == ["url"]


def test_test_send_delivers_a_signed_ping_and_the_detail_shows_it(cast, login, receiver, allow_loopback):
    endpoint = add_endpoint(cast, receiver.url)
    client = login(cast.center_admin, api=True)
    sent = client.post(reverse("api_webhook_endpoint_test", args=[endpoint.public_id]))
    assert sent.status_code == 200
    assert (sent.json()["event_type"], sent.json()["status"], sent.json()["last_status_code"]) == ("ping", "delivered",
                                                                                                    200)
    [request] = receiver.requests
    assert request["headers"]["X-ReadRoom-Event"] == "ping"
    assert request["headers"]["X-ReadRoom-Delivery"] == sent.json()["id"]
    assert webhooks.verify(endpoint.secret, request["headers"]["X-ReadRoom-Signature"], request["body"])
    shown = client.get(detail(endpoint)).json()
    assert [(d["id"], d["status"], d["attempts"]) for d in shown["recent_deliveries"]] == [
        (sent.json()["id"], "delivered", 1)]


def test_a_failed_test_send_is_reported_and_left_for_the_relay(cast, login, allow_loopback):
    with Receiver(statuses=[500]) as failing:
        endpoint = add_endpoint(cast, failing.url)
        sent = login(cast.center_admin, api=True).post(reverse("api_webhook_endpoint_test", args=[endpoint.public_id]))
    assert (sent.json()["status"], sent.json()["last_status_code"], sent.json()["attempts"]) == ("pending", 500, 1)


def test_removing_an_endpoint_stops_its_events_and_gives_up_what_it_had_not_received(
        cast, ct_study, login, receiver, allow_loopback):
    endpoint = add_endpoint(cast, receiver.url)
    post(cast.technologist, ct_study)  # an outbox row whose send has not happened yet
    client = login(cast.center_admin, api=True)
    assert client.delete(detail(endpoint)).status_code == 204
    assert client.get(detail(endpoint)).status_code == 404
    assert client.get(LIST).json()["results"] == []
    assert set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {"failed"}
    assert webhooks.relay_pending() == 0
    assert receiver.requests == []
    post(cast.technologist, ct_study, priority="urgent")
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1  # no new rows for a removed endpoint
    assert AuditEvent.objects.filter(action="webhook_endpoint.deleted", object_id=str(endpoint.public_id)).exists()


def test_another_centers_endpoint_is_404_through_the_api_and_the_pages(cast, login, receiver, allow_loopback):
    theirs = WebhookEndpoint.objects.create(center=cast.other_center, url=receiver.url)
    api, page = login(cast.center_admin, api=True), login(cast.center_admin)
    assert api.get(detail(theirs)).status_code == 404
    assert api.delete(detail(theirs)).status_code == 404
    assert api.post(reverse("api_webhook_endpoint_test", args=[theirs.public_id])).status_code == 404
    assert page.post(reverse("webhook_delete", args=[theirs.public_id])).status_code == 404
    assert page.post(reverse("webhook_test", args=[theirs.public_id])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active
    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("who", ["technologist", "center_viewer", "center_finance", "radiologist"])
def test_people_who_are_not_the_centers_admins_get_404(cast, login, who, receiver, allow_loopback):
    endpoint = add_endpoint(cast, receiver.url)
    api, page = login(cast.users[who], api=True), login(cast.users[who])
    assert api.get(LIST).status_code == 404
    assert api.post(LIST, {"url": receiver.url}, format="json").status_code == 404
    assert api.get(detail(endpoint)).status_code == 404
    assert page.post(reverse("webhook_create"), {"url": receiver.url}).status_code == 404
    assert page.post(reverse("webhook_test", args=[endpoint.public_id])).status_code == 404
    assert page.post(reverse("webhook_delete", args=[endpoint.public_id])).status_code == 404
    assert WebhookEndpoint.objects.filter(is_active=True).count() == 1
    assert receiver.requests == []


# --- pages -------------------------------------------------------------------------------------------

def test_the_create_page_action_shows_the_secret_once_and_returns_to_the_settings(cast, login, receiver,
                                                                                 allow_loopback):
    client = login(cast.center_admin)
    response = client.post(reverse("webhook_create"), {"url": receiver.url, "description": "RIS"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get(center=cast.center)
    assert endpoint.secret in response.content.decode()
    assert list(get_messages(response.wsgi_request)) == []  # never stored in a message (a cookie)
    assert reverse("center_marketplace_settings") in response.content.decode()
    assert endpoint.secret not in client.get(reverse("center_marketplace_settings")).content.decode()


def test_the_create_page_action_reports_a_refused_url(cast, login, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = login(cast.center_admin).post(reverse("webhook_create"), {"url": "https://10.0.0.5/hooks"})
    assert response.status_code == 302
    [message] = list(get_messages(response.wsgi_request))
    assert message.level_tag == "error"
    assert "private" in str(message)
    assert not WebhookEndpoint.objects.exists()


def test_the_test_send_and_remove_buttons(cast, login, receiver, allow_loopback):
    endpoint = add_endpoint(cast, receiver.url)
    page = login(cast.center_admin)
    sent = page.post(reverse("webhook_test", args=[endpoint.public_id]))
    assert sent.status_code == 302
    assert receiver.events() == ["ping"]
    assert "delivered" in str(list(get_messages(sent.wsgi_request))[0])
    removed = page.post(reverse("webhook_delete", args=[endpoint.public_id]))
    assert removed.status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.is_active


def test_the_settings_fragment_lists_endpoints_with_their_log_in_constant_queries(cast, receiver, allow_loopback):
    admin = actor(cast.center_admin)
    first = add_endpoint(cast, receiver.url)
    webhook_endpoint_test(actor=admin, endpoint=first)
    with CaptureQueriesContext(connection) as one:
        webhooks.webhooks_context(actor=admin, center=cast.center)
    for n in range(3):
        endpoint = add_endpoint(cast, f"{receiver.url}/{n}")
        for _ in range(2):
            webhook_endpoint_test(actor=admin, endpoint=endpoint)
    with CaptureQueriesContext(connection) as four:
        context = webhooks.webhooks_context(actor=admin, center=cast.center)
    assert len(four) == len(one) == 2
    html = render_to_string("marketplace/_webhooks.html", context)
    assert html.count("Send a test event") == 4
    assert html.count(">ping<") == 7
    assert reverse("webhook_test", args=[first.public_id]) in html
    assert first.secret not in html


def test_the_log_keeps_the_newest_twenty_deliveries_per_endpoint(cast, receiver, allow_loopback):
    endpoint = add_endpoint(cast, receiver.url)
    WebhookDelivery.objects.bulk_create([WebhookDelivery(endpoint=endpoint, event_type=f"e{n}", payload={},
                                                         status="delivered") for n in range(25)])
    [shown] = webhooks.webhooks_context(actor=actor(cast.center_admin), center=cast.center)["webhook_endpoints"]
    assert len(shown.recent_deliveries) == 20


def test_the_settings_page_shows_the_endpoints_their_log_and_the_buttons(cast, login, receiver, allow_loopback):
    endpoint = add_endpoint(cast, receiver.url)
    webhook_endpoint_test(actor=actor(cast.center_admin), endpoint=endpoint)
    page = login(cast.center_admin).get(reverse("center_marketplace_settings"))
    assert page.status_code == 200
    html = page.content.decode()
    assert receiver.url in html
    assert reverse("webhook_test", args=[endpoint.public_id]) in html
    assert reverse("webhook_delete", args=[endpoint.public_id]) in html
    assert reverse("webhook_create") in html
    assert ">ping<" in html
    assert endpoint.secret not in html
