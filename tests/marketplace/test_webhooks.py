"""Signed webhooks to centers: signature, retries with backoff, the relay, the address rule.

A real HTTP receiver listens on 127.0.0.1 (``Receiver``); the outbox rows come from real state changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from core.errors import ApplicationError, NotFound
from marketplace import webhooks
from marketplace.models import Offer, WebhookDelivery
from marketplace.services.offers import offer_claim
from marketplace.services.webhook_endpoints import webhook_endpoint_create
from tests.marketplace.helpers import actor, post


class Receiver:
    """A center's webhook receiver on loopback: records every request; answers ``statuses`` in order, then 200.
    With ``block_first`` the first request is held open until ``release`` is set (a send "in flight")."""

    def __init__(self, statuses=(), *, block_first: bool = False) -> None:
        self.requests: list[dict] = []
        self.statuses = list(statuses)
        self.block_first = block_first
        self.arrived, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    first = not receiver.requests
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "in_flight_when_blocked": first and receiver.block_first})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if first and receiver.block_first:
                    receiver.arrived.set()
                    receiver.release.wait(60)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[str]:
        return [r["headers"]["X-ReadRoom-Event"] for r in self.requests]


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.PRODUCTION = False
    return settings


def add_endpoint(cast, url: str):
    return webhook_endpoint_create(actor=actor(cast.center_admin), center=cast.center, url=url,
                                   description="RIS bridge")


def independent_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# --- signature ------------------------------------------------------------------------------------

def test_a_state_change_reaches_the_receiver_signed_and_each_signature_verifies(
        cast, ct_study, reader, receiver, allow_loopback, django_capture_on_commit_callbacks):
    endpoint = add_endpoint(cast, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        read_request = post(cast.technologist, ct_study)
    with django_capture_on_commit_callbacks(execute=True):
        offer_claim(actor=actor(cast.radiologist), offer=Offer.objects.get(read_request=read_request))

    assert receiver.events() == ["read_request.open", "read_request.assigned"]
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        timestamp = headers["X-ReadRoom-Timestamp"]
        expected = independent_signature(endpoint.secret, timestamp, body)
        assert headers["X-ReadRoom-Signature"] == f"t={timestamp},v1={expected}"
        assert webhooks.verify(endpoint.secret, headers["X-ReadRoom-Signature"], body)
        assert not webhooks.verify("whsec_someone-else", headers["X-ReadRoom-Signature"], body)
        assert not webhooks.verify(endpoint.secret, headers["X-ReadRoom-Signature"], body.replace(b"open", b"shut"))
        # A replay of the same request ten minutes later is refused (5-minute tolerance).
        assert not webhooks.verify(endpoint.secret, headers["X-ReadRoom-Signature"], body, now=int(timestamp) + 600)
        payload = json.loads(body)
        assert payload["data"]["read_request"]["id"] == str(read_request.public_id)
        assert headers["Content-Type"] == "application/json"
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert {d.status for d in deliveries} == {"delivered"}
    assert {str(d.event_id) for d in deliveries} == {r["headers"]["X-ReadRoom-Delivery"] for r in receiver.requests}


def test_verify_refuses_a_malformed_header():
    body = b"{}"
    assert not webhooks.verify("s", "", body)
    assert not webhooks.verify("s", "v1=abc", body)
    assert not webhooks.verify("s", "t=notanumber,v1=abc", body)
    assert webhooks.verify("s", webhooks.signature_header("s", 1_700_000_000, body), body, now=1_700_000_100)


# --- retries and giving up ------------------------------------------------------------------------

def pending_row(cast, ct_study, url) -> WebhookDelivery:
    """The outbox row of a posting whose send never happened (on_commit callbacks not run)."""
    endpoint = add_endpoint(cast, url)
    post(cast.technologist, ct_study)
    return WebhookDelivery.objects.get(endpoint=endpoint)


def test_backoff_doubles_from_one_minute_and_stops_at_six_hours():
    assert [webhooks.backoff(n) for n in range(1, 12)] == [
        *(timedelta(minutes=2 ** k) for k in range(9)), timedelta(hours=6), timedelta(hours=6)]


def test_failed_sends_are_retried_with_backoff_until_the_receiver_answers(cast, ct_study, allow_loopback):
    with Receiver(statuses=[500, 500]) as receiver:
        row = pending_row(cast, ct_study, receiver.url)
        t0 = timezone.now()
        assert webhooks.deliver(row.pk, now=t0) == "retry"
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("pending", 1, 500, "HTTP 500")
        assert row.next_attempt_at == t0 + timedelta(minutes=1)

        assert webhooks.relay_pending(now=t0 + timedelta(seconds=59)) == 0  # not due yet
        assert len(receiver.requests) == 1
        assert webhooks.relay_pending(now=t0 + timedelta(minutes=1)) == 0
        row.refresh_from_db()
        assert (row.attempts, row.next_attempt_at) == (2, t0 + timedelta(minutes=3))

        assert webhooks.relay_pending(now=t0 + timedelta(minutes=3)) == 1
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_status_code, row.delivered_at) == (
            "delivered", 3, 200, t0 + timedelta(minutes=3))
        assert {r["headers"]["X-ReadRoom-Delivery"] for r in receiver.requests} == {str(row.event_id)}
        assert webhooks.relay_pending(now=t0 + timedelta(hours=1)) == 0
        assert len(receiver.requests) == 3


def test_delivery_gives_up_after_the_maximum_number_of_attempts(cast, ct_study, allow_loopback):
    allow_loopback.WEBHOOK_MAX_ATTEMPTS = 3
    with Receiver(statuses=[503] * 10) as receiver:
        row = pending_row(cast, ct_study, receiver.url)
        at = timezone.now()
        outcomes = []
        for _ in range(3):
            outcomes.append(webhooks.deliver(row.pk, now=at))
            row.refresh_from_db()
            at = row.next_attempt_at
        assert outcomes == ["retry", "retry", "failed"]
        assert (row.status, row.attempts, row.last_status_code) == ("failed", 3, 503)
        assert webhooks.relay_pending(now=at + timedelta(days=1)) == 0
        assert webhooks.deliver(row.pk, now=at + timedelta(days=1)) == "skipped"
        assert len(receiver.requests) == 3


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(cast, ct_study, allow_loopback):
    with Receiver(statuses=[302]) as receiver:
        row = pending_row(cast, ct_study, receiver.url)
        assert webhooks.deliver(row.pk) == "retry"
        row.refresh_from_db()
        assert row.last_status_code == 302
        assert "not followed" in row.last_error
        assert len(receiver.requests) == 1


def test_two_workers_never_send_one_row_at_once(cast, ct_study, receiver, allow_loopback):
    """The claim moves the row out of reach for the length of a send: a second deliver skips it."""
    row = pending_row(cast, ct_study, receiver.url)
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(pk=row.pk, next_attempt_at__lte=now).update(
        next_attempt_at=now + webhooks.lease())  # what the first worker's claim does
    assert claimed == 1
    assert webhooks.deliver(row.pk, now=now) == "skipped"
    assert webhooks.relay_pending(now=now) == 0
    assert receiver.requests == []


# --- no event lost ----------------------------------------------------------------------------------

def test_an_event_whose_send_never_happened_is_delivered_by_the_relay(
        cast, ct_study, reader, receiver, allow_loopback, django_capture_on_commit_callbacks):
    endpoint = add_endpoint(cast, receiver.url)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        read_request = post(cast.technologist, ct_study)  # committed; the publish after the commit is lost
    assert callbacks, "the send is queued after the commit"
    row = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (row.status, row.event_type, receiver.requests) == ("pending", "read_request.open", [])

    assert webhooks.relay_pending() == 1

    row.refresh_from_db()
    assert row.status == "delivered"
    [request] = receiver.requests
    assert request["headers"]["X-ReadRoom-Delivery"] == str(row.event_id)
    assert json.loads(request["body"])["data"]["read_request"]["id"] == str(read_request.public_id)


# --- the address rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hooks", "https://localhost/hooks", "https://10.1.2.3/hooks", "https://192.168.0.9/hooks",
    "https://169.254.169.254/latest/meta-data/", "https://[::1]/hooks", "https://[::ffff:127.0.0.1]/hooks",
    "https://224.0.0.1/hooks", "https://0.0.0.0/hooks", "https://100.64.0.1/hooks", "https://240.0.0.1/hooks",
])
def test_a_private_or_reserved_address_is_refused_when_not_allowed(cast, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ApplicationError) as refused:
        add_endpoint(cast, url)
    assert refused.value.code == "private_address"
    assert "url" in refused.value.fields


def test_http_is_refused_in_production_even_when_private_addresses_are_allowed(cast, settings):
    settings.PRODUCTION, settings.WEBHOOK_ALLOW_PRIVATE = True, True
    with pytest.raises(ApplicationError) as refused:
        add_endpoint(cast, "http://93.184.215.14/hooks")
    assert refused.value.code == "https_required"
    assert "url" in refused.value.fields


def test_http_is_refused_whenever_private_addresses_are_refused(cast, settings):
    settings.PRODUCTION, settings.WEBHOOK_ALLOW_PRIVATE = False, False
    with pytest.raises(ApplicationError) as refused:
        add_endpoint(cast, "http://93.184.215.14/hooks")
    assert refused.value.code == "https_required"


def test_a_public_https_address_is_accepted_in_production(cast, settings):
    settings.PRODUCTION, settings.WEBHOOK_ALLOW_PRIVATE = True, False
    endpoint = add_endpoint(cast, "https://93.184.215.14/hooks")
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.center == cast.center


@pytest.mark.parametrize("url", ["", "not a url", "ftp://93.184.215.14/x", "https://user:pw@93.184.215.14/",
                                 "https://93.184.215.14:99999/", "https://no-such-host.invalid/hooks"])
def test_a_malformed_or_unresolvable_url_is_refused_naming_the_field(cast, allow_loopback, url):
    with pytest.raises(ApplicationError) as refused:
        add_endpoint(cast, url)
    assert list(refused.value.fields) == ["url"]


def test_only_the_centers_admins_add_endpoints(cast, allow_loopback):
    for user in (cast.technologist, cast.center_viewer, cast.other_admin, cast.radiologist, cast.platform_staff):
        with pytest.raises(NotFound):
            webhook_endpoint_create(actor=actor(user), center=cast.center, url="https://93.184.215.14/h")


def test_the_address_is_checked_again_at_send_time(cast, ct_study, receiver, allow_loopback):
    """A name that resolved to an allowed address at creation but now points at loopback (DNS rebinding,
    or the rule tightened) is not sent to."""
    port = receiver.server.server_address[1]
    row = pending_row(cast, ct_study, f"https://localhost:{port}/hooks")
    allow_loopback.WEBHOOK_ALLOW_PRIVATE = False
    assert webhooks.deliver(row.pk) == "retry"
    row.refresh_from_db()
    assert "private or reserved address" in row.last_error
    assert row.last_status_code is None
    assert receiver.requests == []


def test_an_endpoint_that_does_not_answer_is_a_failed_attempt_not_an_error(cast, ct_study, allow_loopback):
    row = pending_row(cast, ct_study, "http://127.0.0.1:1/hooks")  # nothing listens on port 1
    assert webhooks.deliver(row.pk) == "retry"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert "Connection" in row.last_error
