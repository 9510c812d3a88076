"""The fake Stripe's card payments (a mixin of ``FakeStripe``): Checkout Sessions (create, retrieve,
expire), the hosted payment page ``GET /pay/<session id>`` with its "Pay" button, payment intents,
charges and refunds, in Stripe's documented object shapes.

Clicking "Pay" completes the session (a succeeded payment intent and its charge), raises a signed
``checkout.session.completed`` and redirects to the session's ``success_url`` (``{CHECKOUT_SESSION_ID}``
filled in). Events go to ``webhook_url`` over HTTP when a test set one (a live server); otherwise they
queue in ``events`` for the test to deliver. Test controls: ``pay``, ``expire``, ``refund_status``
("pending" keeps new refunds pending until ``settle_refund``).
"""

from __future__ import annotations

import html
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

from billing.fake_stripe.protocol import StripeFailure, get_object, new_id, stripe_now

CHECKOUT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Pay · fake Stripe Checkout</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<h1>Fake Stripe Checkout</h1><p id="description">{description}</p><p id="amount">{amount} {currency}</p>{body}
</body></html>"""


class CheckoutFake:
    """State and routes of Checkout; ``FakeStripe`` supplies ``lock``, ``url``, ``events``, ``_event``, ``signed``."""

    def reset_checkout(self) -> None:
        self.sessions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}
        self.card_charges: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.webhook_url: str | None = None
        self.delivered: list[tuple[str, int]] = []  # (event type, HTTP status) posted to webhook_url
        self.refund_status = "succeeded"

    def route_checkout(self, method: str, parts: list[str], params: dict) -> dict | None:
        match method, parts:
            case "post", ["v1", "checkout", "sessions"]:
                return self._create_session(params)
            case "get", ["v1", "checkout", "sessions", cs]:
                return self._get_shown(self.sessions, cs, "checkout.session")
            case "post", ["v1", "checkout", "sessions", cs, "expire"]:
                session = self._get_shown(self.sessions, cs, "checkout.session")
                if session["status"] != "open":
                    raise StripeFailure(400, "invalid_request_error",
                                        f"Only Checkout Sessions with a status of `open` can be expired. This "
                                        f"Checkout Session has a status of `{session['status']}`.", None)
                return self._expire(cs)
            case "get", ["v1", "payment_intents", pi]:
                return self._get_shown(self.payment_intents, pi, "payment_intent")
            case "get", ["v1", "charges", ch]:
                return self._get_shown(self.card_charges, ch, "charge")
            case "post", ["v1", "refunds"]:
                return self._create_refund(params)
            case "get", ["v1", "refunds", re]:
                return self._get_shown(self.refunds, re, "refund")
        return None

    # --- objects -------------------------------------------------------------------------------------
    def _create_session(self, params: dict) -> dict:
        for field in ("mode", "success_url", "line_items"):
            if not params.get(field):
                raise StripeFailure(400, "invalid_request_error", f"Missing required param: {field}.", field)
        if params["mode"] != "payment":
            raise StripeFailure(400, "invalid_request_error", "This fake takes mode=payment only.", "mode")
        total, currency, names = 0, None, []
        for index, item in enumerate(params["line_items"]):
            price = item.get("price_data") or {}
            try:
                total += int(price["unit_amount"]) * int(item.get("quantity", 1))
            except (KeyError, ValueError):
                raise StripeFailure(400, "invalid_request_error", "Invalid integer: unit_amount",
                                    f"line_items[{index}][price_data][unit_amount]") from None
            currency = price.get("currency")
            names.append((price.get("product_data") or {}).get("name", ""))
        cs, created = f"cs_test_{new_id('x')[2:]}", stripe_now()
        self.sessions[cs] = {
            "id": cs, "object": "checkout.session", "mode": "payment", "status": "open", "payment_status": "unpaid",
            "amount_subtotal": total, "amount_total": total, "currency": currency, "created": created,
            "expires_at": created + 86_400, "livemode": False, "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"), "customer_details": None,
            "metadata": params.get("metadata", {}), "payment_intent": None, "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"), "url": f"{self.url}/pay/{cs}", "_names": names,
            "_intent_metadata": (params.get("payment_intent_data") or {}).get("metadata", {}),
        }
        return self._shown(self.sessions[cs])

    @staticmethod
    def _shown(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def _get_shown(self, store: dict, object_id: str, kind: str) -> dict:
        return self._shown(get_object(store, object_id, kind))

    def _complete(self, cs: str) -> list[dict]:
        """The payer paid: a succeeded payment intent (the declined attempts' one, if any) and its charge; the
        session complete. Raises ``checkout.session.completed`` and ``payment_intent.succeeded``, as Stripe does."""
        session = self.sessions[cs]
        pi, ch, created = session["payment_intent"] or new_id("pi"), new_id("ch"), stripe_now()
        amount, currency = session["amount_total"], session["currency"]
        self.card_charges[ch] = {
            "id": ch, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": 0,
            "captured": True, "paid": True, "refunded": False, "status": "succeeded", "currency": currency,
            "payment_intent": pi, "created": created, "livemode": False, "metadata": session["_intent_metadata"],
            "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{ch}/refunds"}}
        self.payment_intents[pi] = {
            "id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount, "currency": currency,
            "status": "succeeded", "latest_charge": ch, "last_payment_error": None,
            "created": self.payment_intents.get(pi, {}).get("created", created), "livemode": False,
            "metadata": session["_intent_metadata"]}
        session.update(status="complete", payment_status="paid", payment_intent=pi,
                       customer_details={"email": session["customer_email"]})
        return [self._event("checkout.session.completed", session),
                self._event("payment_intent.succeeded", self.payment_intents[pi])]

    def _decline(self, cs: str, message: str, decline_code: str) -> dict:
        """The payer's card was declined: the intent waits for another payment method with the error of the
        failed charge (``last_payment_error``); the session stays open (Stripe's Checkout lets them retry)."""
        session = self.sessions[cs]
        pi, ch, created = session["payment_intent"] or new_id("pi"), new_id("ch"), stripe_now()
        amount, currency = session["amount_total"], session["currency"]
        self.card_charges[ch] = {
            "id": ch, "object": "charge", "amount": amount, "amount_captured": 0, "amount_refunded": 0,
            "captured": False, "paid": False, "refunded": False, "status": "failed", "currency": currency,
            "payment_intent": pi, "created": created, "livemode": False, "metadata": session["_intent_metadata"],
            "failure_code": "card_declined", "failure_message": message,
            "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{ch}/refunds"}}
        self.payment_intents[pi] = {
            "id": pi, "object": "payment_intent", "amount": amount, "amount_received": 0, "currency": currency,
            "status": "requires_payment_method", "latest_charge": ch, "livemode": False,
            "created": self.payment_intents.get(pi, {}).get("created", created),
            "metadata": session["_intent_metadata"],
            "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": decline_code,
                                   "message": message, "charge": ch,
                                   "doc_url": "https://stripe.com/docs/error-codes/card-declined"}}
        session["payment_intent"] = pi
        return self._event("payment_intent.payment_failed", self.payment_intents[pi])

    def _expire(self, cs: str) -> dict:
        session = self.sessions[cs]
        session.update(status="expired", url=None)
        self._raise(self._event("checkout.session.expired", session), synchronous=False)
        return self._shown(session)

    def _create_refund(self, params: dict) -> dict:
        intent = self.payment_intents.get(params.get("payment_intent", ""))
        charge = self.card_charges.get(params.get("charge") or (intent or {}).get("latest_charge") or "")
        if charge is None:
            raise StripeFailure(400, "invalid_request_error", "No such payment_intent: "
                                f"'{params.get('payment_intent')}'", "payment_intent", "resource_missing")
        left = charge["amount"] - charge["amount_refunded"] - sum(
            r["amount"] for r in self.refunds.values() if r["charge"] == charge["id"] and r["status"] == "pending")
        if left <= 0:
            raise StripeFailure(400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.",
                                None, "charge_already_refunded")
        amount = int(params.get("amount", left))
        if amount > left:
            raise StripeFailure(400, "invalid_request_error", "Refund amount is greater than unrefunded amount.",
                                "amount", "amount_too_large")
        re = new_id("re")
        self.refunds[re] = {"id": re, "object": "refund", "amount": amount, "charge": charge["id"],
                            "payment_intent": charge["payment_intent"], "currency": charge["currency"],
                            "status": "pending", "reason": params.get("reason"), "created": stripe_now(),
                            "metadata": params.get("metadata", {})}
        if self.refund_status == "succeeded":
            self._refund_succeeds(re)
        return dict(self.refunds[re])

    def _refund_succeeds(self, re: str) -> None:
        refund = self.refunds[re]
        refund["status"] = "succeeded"
        charge = self.card_charges[refund["charge"]]
        charge["amount_refunded"] += refund["amount"]
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"].insert(0, dict(refund))
        self._raise(self._event("charge.refunded", charge), synchronous=False)

    # --- test controls -------------------------------------------------------------------------------
    def pay(self, cs: str) -> dict:
        """What clicking "Pay" does, without the page: the session completes and its events are raised
        (``checkout.session.completed``, returned, then ``payment_intent.succeeded``)."""
        with self.lock:
            events = self._complete(cs)
        for event in events:
            self._raise(event, synchronous=True)
        return events[0]

    def decline(self, cs: str, *, message: str = "Your card was declined.",
                decline_code: str = "generic_decline") -> dict:
        """What a declined card does on the hosted page: ``payment_intent.payment_failed``, the session open."""
        with self.lock:
            event = self._decline(cs, message, decline_code)
        self._raise(event, synchronous=True)
        return event

    def expire(self, cs: str) -> dict:
        """Stripe expires an open session (after 24 h, or by the API)."""
        with self.lock:
            return self._expire(cs)

    def settle_refund(self, re: str) -> None:
        with self.lock:
            self._refund_succeeds(re)

    # --- webhooks ------------------------------------------------------------------------------------
    def _raise(self, event: dict, *, synchronous: bool) -> None:
        """Queue the event, or post it signed to ``webhook_url`` (in the background when raised inside an
        API call: the caller may hold the rows the webhook wants, as with real Stripe's delays)."""
        if self.webhook_url is None:
            with self.lock:
                self.events.append(event)
            return
        if synchronous:
            self._post_event(event)
        else:
            threading.Thread(target=self._post_event, args=(event,), daemon=True).start()

    def _post_event(self, event: dict) -> None:
        payload, header = self.signed(event)
        request = urllib.request.Request(self.webhook_url, data=payload, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json", "Stripe-Signature": header})
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - a loopback test URL
            self.delivered.append((event["type"], answer.status))

    # --- the hosted page -----------------------------------------------------------------------------
    def hosted_page(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """``GET /pay/<cs>``: the session's amount and a "Pay" button; ``POST``: pay and go to success_url."""
        cs = handler.path.split("?")[0].strip("/").split("/")[-1]
        length = int(handler.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(handler.rfile.read(length).decode())) if length else {}
        session = self.sessions.get(cs)
        if session is None:
            return self._page(handler, 404, "", "", "", "<p>No such checkout session.</p>")
        if method == "post" and session["status"] == "open" and form.get("pay") == "1":
            self.pay(cs)
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", cs)
            handler.send_response(303)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        if method == "post" and session["status"] == "open" and form.get("pay") == "decline":
            self.decline(cs)  # Stripe's test card 4000 0000 0000 0002: the page stays, saying so
        if session["status"] == "open":
            body = (f'<form method="post" action="/pay/{cs}"><input type="hidden" name="pay" value="1">'
                    f'<button type="submit" id="pay">Pay</button> <button type="submit" name="pay" value="decline" '
                    f'id="decline">Pay with a card that is declined</button></form>'
                    f'<p><a href="{html.escape(session["cancel_url"] or "")}">Cancel</a></p>')
        else:
            body = f"<p id=\"status\">This checkout session is {session['status']}.</p>"
        amount = f"{session['amount_total'] // 100}.{session['amount_total'] % 100:02d}"
        return self._page(handler, 200, ", ".join(session["_names"]), amount, session["currency"].upper(), body)

    @staticmethod
    def _page(handler, status: int, description: str, amount: str, currency: str, body: str) -> None:
        data = CHECKOUT_PAGE.format(description=html.escape(description), amount=amount, currency=currency,
                                    body=body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

