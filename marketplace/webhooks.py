"""Signed webhooks to centers: signing, the address rule, sending one outbox row, and the relay.

An outbox row (``WebhookDelivery``) is written in the transaction of the change it reports
(``services.events.webhook_enqueue``). ``deliver`` sends one row: it first *claims* it with a conditional
UPDATE that moves ``next_attempt_at`` to the end of a lease, so two workers never send one row at the
same time, and no transaction stays open during the HTTP call. A worker that dies mid-send leaves the row
pending; once the lease runs out ``relay_pending`` (Celery beat, every minute) sends it again. Delivery
is therefore at least once: receivers dedupe on ``X-ReadRoom-Delivery``.

Signature (Stripe's scheme): ``X-ReadRoom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Prefetch
from django.utils import timezone

from accounts.models import Organization
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from marketplace import policy
from marketplace.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ReadRoom-Signature"
MAX_BACKOFF = timedelta(hours=6)
RECENT_DELIVERIES = 20
USER_AGENT = "ReadRoom-Webhooks/1"


# --- settings -------------------------------------------------------------------------------------

def timeout_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10))


def max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 10))


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE", not settings.PRODUCTION))


def lease() -> timedelta:
    """How long a claimed row is left alone: longer than any send can take (connect + read timeouts)."""
    return timedelta(seconds=3 * timeout_seconds() + 30)


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed send: 1, 2, 4, 8 … minutes, at most 6 hours."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF) if attempts < 20 else MAX_BACKOFF


# --- signing --------------------------------------------------------------------------------------

def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` with the endpoint's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300, *, now: float | None = None) -> bool:
    """What a receiver does: the header's timestamp is within ``tolerance`` seconds (no replays of old
    events) and one of its ``v1`` signatures matches the raw body (compared in constant time)."""
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not timestamp.isdigit() or not candidates:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- the address rule (at creation and again at send time: DNS may have changed) ---------------------

@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP address the connection goes to


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global)


def check_url(url: str) -> Target:
    """Parse and check a webhook URL; resolve its host and refuse private, loopback, link-local, multicast
    and reserved addresses (unless ``WEBHOOK_ALLOW_PRIVATE``). https is required in production and whenever
    private addresses are refused. Errors name the field ``url``."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError as exc:
        raise ApplicationError.for_field("url", f"This is not a valid URL ({exc}).") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError.for_field("url", "Enter a full https:// URL.")
    if parts.username or parts.password:
        raise ApplicationError.for_field("url", "A webhook URL may not carry a user name or password.")
    private_ok = allow_private()
    if parts.scheme != "https" and (settings.PRODUCTION or not private_ok):
        raise ApplicationError.for_field("url", "The webhook URL must use https.", code="https_required")
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ApplicationError.for_field("url", f"The host {host} does not resolve.", code="unresolvable") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not private_ok:
        bad = [a for a in addresses if _refused(a)]
        if bad:
            raise ApplicationError.for_field(
                "url", f"The host {host} points at a private or reserved address ({bad[0]}): not allowed.",
                code="private_address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=str(addresses[0]))


# --- sending ----------------------------------------------------------------------------------------

class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address we checked, not to whatever the name resolves to a moment later."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # certificate of the name


def _post(target: Target, body: bytes, headers: dict[str, str]) -> int:
    """One POST; redirects are never followed (a 3xx is a failed attempt). Returns the status code."""
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target, timeout_seconds())
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(4096)
        return response.status
    finally:
        connection.close()


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def deliver(delivery_id: int, *, now: datetime | None = None) -> str:
    """Send one outbox row if it is pending and due. Returns ``delivered``, ``retry``, ``failed`` or ``skipped``.

    2xx → delivered. Anything else counts an attempt and schedules the next one after ``backoff``; after
    ``WEBHOOK_MAX_ATTEMPTS`` the row is ``failed`` (visible in the center's delivery log)."""
    now = now or timezone.now()
    lease_until = now + lease()
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING,
                                             next_attempt_at__lte=now).update(next_attempt_at=lease_until)
    if not claimed:
        return "skipped"  # sent, given up, or another worker holds it
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    status_code, error = None, ""
    if not endpoint.is_active:
        return _finish(delivery, lease_until, now=now, ok=False, status_code=None,
                       error="The endpoint was removed.", give_up=True)
    body = encode(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-ReadRoom-Event": delivery.event_type,
        "X-ReadRoom-Delivery": str(delivery.event_id),
        "X-ReadRoom-Timestamp": str(timestamp),
        SIGNATURE_HEADER: signature_header(endpoint.secret, timestamp, body),
    }
    try:
        status_code = _post(check_url(endpoint.url), body, headers)
    except ApplicationError as exc:
        error = exc.message
    except Exception as exc:  # network, TLS, protocol, or a URL http.client cannot encode: a failed attempt,
        # never an exception that would leave the row claimed and uncounted (retried forever)
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ok = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not ok:
        error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
    return _finish(delivery, lease_until, now=now, ok=ok, status_code=status_code, error=error)


def _finish(delivery: WebhookDelivery, lease_until: datetime, *, now: datetime, ok: bool, status_code: int | None,
            error: str, give_up: bool = False) -> str:
    """Record the outcome, only if this worker still holds the claim (its lease value is unchanged)."""
    attempts = delivery.attempts + 1
    fields: dict = {"attempts": attempts, "last_status_code": status_code, "last_error": error[:500]}
    if ok:
        outcome = "delivered"
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=now, next_attempt_at=now)
    elif give_up or attempts >= max_attempts():
        outcome = "failed"
        fields.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=now)
    else:
        outcome = "retry"
        fields.update(next_attempt_at=now + backoff(attempts))
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING,
                                             next_attempt_at=lease_until).update(**fields)
    if not updated:
        logger.warning("webhook delivery %s: the claim ran out before the send ended", delivery.pk)
        return "skipped"
    if not ok:
        logger.info("webhook delivery %s to %s: %s (%s)", delivery.pk, delivery.endpoint.url, outcome, error)
    return outcome


def relay_pending(limit: int = 100, *, now: datetime | None = None) -> int:
    """Send every pending row that is due, oldest first (what a dead worker left, and the retries).
    Returns the number delivered."""
    now = now or timezone.now()
    ids = list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
               .order_by("created_at", "id").values_list("pk", flat=True)[:limit])
    delivered = 0
    for pk in ids:
        try:
            delivered += deliver(pk, now=now) == "delivered"
        except Exception:  # one bad row must not stop the others
            logger.exception("webhook delivery %s could not be sent", pk)
    return delivered


# --- reads for the center's settings page ---------------------------------------------------------

def endpoint_list(*, actor: Actor, center: Organization):
    """The center's active endpoints (its admins only; anyone else: 404)."""
    if center is None or not policy.can_manage_webhooks(actor, center):
        raise NotFound()
    return WebhookEndpoint.objects.filter(center=center, is_active=True).select_related("created_by")


def endpoint_get(*, actor: Actor, center: Organization, public_id) -> WebhookEndpoint:
    endpoint = endpoint_list(actor=actor, center=center).filter(public_id=public_id).first()
    if endpoint is None:
        raise NotFound()
    return endpoint


def with_recent_deliveries(queryset):
    """Each endpoint with ``recent_deliveries`` (newest 20): two queries whatever the number of endpoints."""
    recent = WebhookDelivery.objects.order_by("-created_at", "-id")[:RECENT_DELIVERIES]
    return queryset.prefetch_related(Prefetch("deliveries", queryset=recent, to_attr="recent_deliveries"))


def webhooks_context(*, actor: Actor, center: Organization) -> dict:
    """What ``templates/marketplace/_webhooks.html`` needs: the endpoints with their delivery log."""
    endpoints = list(with_recent_deliveries(endpoint_list(actor=actor, center=center)))
    return {"webhook_endpoints": endpoints, "webhook_center": center}
