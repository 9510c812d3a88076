"""A small Stripe that keeps state, on a loopback port, for what ReadRoom calls (issue 15, "Stripe without
the internet"): Connect accounts, account links, transfers, payouts and balance transactions; Checkout
sessions, their hosted "Pay" page, payment intents, charges and refunds (``checkout.py``).

It speaks what the official SDK sends (form-encoded bodies with ``a[b]=c`` nesting, ``Authorization:
Bearer``, ``Stripe-Account``, ``Idempotency-Key``) and answers Stripe's documented object shapes. An
idempotency key seen before is answered with the first response (``Idempotent-Replayed: true``), and a
key reused with other parameters is an ``idempotency_error``, as Stripe does. The events it raises are
signed with Stripe's scheme (``Stripe-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.payload">``) and handed to
the caller (a test posts them to the webhook endpoint; the demo drops them).

Controls (Python methods, for tests and the demo): ``fail_next`` (a 500, or a response delayed past the
client's timeout, before or after the work is done), ``set_account`` (finish onboarding), ``create_payout``,
``reverse`` and the reconciliation injections (``tamper``, ``duplicate``, ``unlink``, ``add_unknown``, ``move``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from billing.fake_stripe.checkout import CheckoutFake
from billing.fake_stripe.protocol import (
    API_KEY,
    API_VERSION,
    WEBHOOK_SECRET,
    StripeFailure,
    decode_form,
    get_object,
    new_id,
    stripe_now,
)


@dataclass
class Fault:
    path: str
    status: int = 500
    delay: float = 0.0
    after_processing: bool = False  # do the work, then fail or stall (the response is lost)


class FakeStripe(CheckoutFake):
    """The server's state; every change goes through ``self.lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.reset()

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body in one segment: no 40 ms delayed-ACK stall a page

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.startswith("/pay/"):  # the hosted checkout page: a browser, no API key
                    return fake.hosted_page(self, "get")
                return fake._handle(self, "get")

            def do_POST(self):  # noqa: N802
                if self.path.startswith("/pay/"):
                    return fake.hosted_page(self, "post")
                return fake._handle(self, "post")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.accounts: dict[str, dict] = {}
            self.transfers: dict[str, dict] = {}
            self.payouts: dict[str, dict] = {}
            self.charges: dict[str, dict] = {}  # the transfer as the connected account sees it (py_…)
            self.balance: dict[str, dict] = {}  # txn id → balance transaction (+ "_account", "_payout")
            self.idempotent: dict[str, tuple[str, int, dict]] = {}
            self.requests: list[tuple[str, str, str | None]] = []  # method, path, idempotency key
            self.faults: list[Fault] = []
            self.events: list[dict] = []
            self.reset_checkout()

    # --- HTTP ------------------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        params = decode_form(body if method == "post" else split.query)
        key = handler.headers.get("Idempotency-Key") if method == "post" else None
        account = handler.headers.get("Stripe-Account")
        with self.lock:
            self.requests.append((method.upper(), split.path, key))
            fault = next((f for f in self.faults if split.path.startswith(f.path)), None)
            if fault is not None:
                self.faults.remove(fault)
        status, payload, replayed = 200, {}, False
        if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
            status, payload = 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}
        elif fault is not None and not fault.after_processing:
            time.sleep(fault.delay)
            status, payload = fault.status, {"error": {"type": "api_error", "message": "Injected failure."}}
        else:
            status, payload, replayed = self._answer(method, split.path, params, key, account, body)
            if fault is not None:
                time.sleep(fault.delay)
                status, payload = fault.status, {"error": {"type": "api_error", "message": "Injected failure."}}
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("Request-Id", new_id("req"))
            if replayed:
                handler.send_header("Idempotent-Replayed", "true")
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left: its retry will be answered from the idempotency store

    def _answer(self, method, path, params, key, account, body) -> tuple[int, dict, bool]:
        with self.lock:
            fingerprint = f"{method} {path} {body}"
            if key is not None and key in self.idempotent:
                first, status, payload = self.idempotent[key]
                if first != fingerprint:
                    return 400, {"error": {"type": "idempotency_error", "message": (
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{key}' if you meant to execute a "
                        "different request.")}}, False
                return status, payload, True
            try:
                status, payload = 200, self._route(method, path, params, account)
            except StripeFailure as failure:
                status, payload = failure.status, failure.body
            if key is not None and status == 200:  # a request refused before it ran saves no result
                self.idempotent[key] = (fingerprint, status, payload)
            return status, payload, False

    def _route(self, method: str, path: str, params: dict, account: str | None) -> dict:
        parts = path.strip("/").split("/")
        match method, parts:
            case "post", ["v1", "accounts"]:
                return self._create_account(params)
            case "get", ["v1", "accounts", acct]:
                return self._account(acct)
            case "post", ["v1", "account_links"]:
                return self._create_account_link(params)
            case "post", ["v1", "transfers"]:
                return self._create_transfer(params)
            case "get", ["v1", "transfers", tr]:
                return get_object(self.transfers, tr, "transfer")
            case "get", ["v1", "payouts"]:
                return self._list_payouts(params, account)
            case "get", ["v1", "payouts", po]:
                payout = get_object(self.payouts, po, "payout")
                if payout["_account"] != account:
                    raise StripeFailure(404, "invalid_request_error", f"No such payout: '{po}'", "id",
                                        "resource_missing")
                return payout
            case "get", ["v1", "balance_transactions"]:
                return self._list_balance(params, account)
        found = self.route_checkout(method, parts, params)
        if found is not None:
            return found
        raise StripeFailure(404, "invalid_request_error", f"Unrecognized request URL ({method.upper()}: {path}).")

    def _account(self, acct: str) -> dict:
        return get_object(self.accounts, acct, "account")

    # --- objects ---------------------------------------------------------------------------------------
    def _create_account(self, params: dict) -> dict:
        if params.get("type") not in {"express", "standard", "custom"}:
            raise StripeFailure(400, "invalid_request_error", "Invalid type.", "type")
        acct = new_id("acct")
        self.accounts[acct] = {
            "id": acct, "object": "account", "type": params["type"], "country": params.get("country", "US"),
            "email": params.get("email"), "default_currency": "usd", "created": stripe_now(),
            "charges_enabled": False, "payouts_enabled": False, "details_submitted": False,
            "capabilities": {"transfers": "inactive"}, "metadata": params.get("metadata", {}),
            "requirements": {"currently_due": ["external_account", "individual.dob.day", "tos_acceptance.date"],
                             "eventually_due": [], "past_due": [], "disabled_reason": "requirements.past_due"},
        }
        return self.accounts[acct]

    def _create_account_link(self, params: dict) -> dict:
        acct = self._account(params.get("account", ""))["id"]
        for field in ("refresh_url", "return_url", "type"):
            if not params.get(field):
                raise StripeFailure(400, "invalid_request_error", f"Missing required param: {field}.", field)
        created = stripe_now()
        return {"object": "account_link", "created": created, "expires_at": created + 300,
                "url": f"{self.url}/express/onboarding/{acct}/{secrets.token_hex(6)}"}

    def _create_transfer(self, params: dict) -> dict:
        destination = self.accounts.get(params.get("destination", ""))
        if destination is None:
            raise StripeFailure(400, "invalid_request_error", f"No such destination: '{params.get('destination')}'",
                                "destination", "resource_missing")
        if destination["capabilities"]["transfers"] != "active":
            raise StripeFailure(400, "invalid_request_error", "Your destination account needs to have at least one "
                                "of the following capabilities enabled: transfers, crypto_transfers, legacy_payments",
                                "destination", "insufficient_capabilities_for_transfer")
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            raise StripeFailure(400, "invalid_request_error", "Invalid integer: amount", "amount") from None
        tr, py, txn = new_id("tr"), new_id("py"), new_id("txn")
        created = stripe_now()
        self.transfers[tr] = {
            "id": tr, "object": "transfer", "amount": amount, "amount_reversed": 0, "currency": params["currency"],
            "destination": destination["id"], "destination_payment": py, "transfer_group": params.get("transfer_group"),
            "metadata": params.get("metadata", {}), "reversed": False, "created": created, "livemode": False,
            "balance_transaction": new_id("txn"), "description": params.get("description"),
            "reversals": {"object": "list", "data": [], "has_more": False, "url": f"/v1/transfers/{tr}/reversals"},
        }
        self.charges[py] = {"id": py, "object": "charge", "amount": amount, "currency": params["currency"],
                            "source_transfer": tr, "balance_transaction": txn, "created": created, "paid": True}
        self._balance_entry(destination["id"], txn, amount, params["currency"], "payment", py, created)
        self.events.append(self._event("transfer.created", self.transfers[tr]))
        return self.transfers[tr]

    def _balance_entry(self, acct, txn, amount, currency, kind, source, created, payout=None) -> dict:
        self.balance[txn] = {"id": txn, "object": "balance_transaction", "amount": amount, "currency": currency,
                             "fee": 0, "fee_details": [], "net": amount, "type": kind, "source": source,
                             "status": "available", "available_on": created, "created": created,
                             "reporting_category": "charge" if kind == "payment" else kind,
                             "_account": acct, "_payout": payout}
        return self.balance[txn]

    def _list_balance(self, params: dict, account: str | None) -> dict:
        payout = params.get("payout")
        rows = [bt for bt in self.balance.values() if bt["_account"] == account
                and (payout is None or bt["_payout"] == payout)]
        rows.sort(key=lambda bt: (bt["created"], bt["id"]), reverse=True)  # newest first, as Stripe lists
        if params.get("starting_after"):
            ids = [bt["id"] for bt in rows]
            rows = rows[ids.index(params["starting_after"]) + 1:]
        limit = int(params.get("limit", 10))
        expand = set(params.get("expand", []))
        data = []
        for bt in rows[:limit]:
            shown = {k: v for k, v in bt.items() if not k.startswith("_")}
            if "data.source" in expand:
                shown["source"] = self.charges.get(bt["source"]) or self.payouts.get(bt["source"]) or bt["source"]
            data.append(shown)
        return {"object": "list", "data": data, "has_more": len(rows) > limit, "url": "/v1/balance_transactions"}

    def _list_payouts(self, params: dict, account: str | None) -> dict:
        before = int((params.get("created") or {}).get("lt", 2**62))
        rows = sorted((p for p in self.payouts.values() if p["_account"] == account and p["created"] < before),
                      key=lambda p: (p["created"], p["id"]), reverse=True)
        limit = int(params.get("limit", 10))
        data = [{k: v for k, v in p.items() if not k.startswith("_")} for p in rows[:limit]]
        return {"object": "list", "data": data, "has_more": len(rows) > limit, "url": "/v1/payouts"}

    def _event(self, kind: str, obj: dict, account: str | None = None) -> dict:
        return {"id": new_id("evt"), "object": "event", "api_version": API_VERSION, "created": stripe_now(),
                "type": kind, "account": account, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "data": {"object": {k: v for k, v in json.loads(json.dumps(obj)).items() if not k.startswith("_")}}}

    # --- test controls ------------------------------------------------------------------------------
    def fail_next(self, path: str, *, status: int = 500, delay: float = 0.0, after_processing: bool = False) -> None:
        with self.lock:
            self.faults.append(Fault(path, status, delay, after_processing))

    def set_account(self, acct: str, *, complete: bool = True) -> dict:
        """Onboarding finished (or payouts disabled again); raises ``account.updated``."""
        with self.lock:
            account = self.accounts[acct]
            account.update(charges_enabled=complete, payouts_enabled=complete, details_submitted=complete,
                           capabilities={"transfers": "active" if complete else "inactive"})
            account["requirements"] = ({"currently_due": [], "eventually_due": [], "past_due": [],
                                        "disabled_reason": None} if complete else
                                       {"currently_due": ["external_account"], "eventually_due": [],
                                        "past_due": ["external_account"], "disabled_reason": "requirements.past_due"})
            self.events.append(self._event("account.updated", account, account=acct))
            return account

    def create_payout(self, acct: str, *, status: str = "paid") -> dict:
        """Stripe's automatic payout: every available balance transaction of the account not yet paid out."""
        with self.lock:
            swept = [bt for bt in self.balance.values() if bt["_account"] == acct and bt["_payout"] is None]
            po, created = new_id("po"), stripe_now()
            self.payouts[po] = {"id": po, "object": "payout", "amount": 0, "currency": "usd", "created": created,
                                "arrival_date": created + 86_400, "status": status, "type": "bank_account",
                                "method": "standard", "automatic": True, "balance_transaction": None,
                                "failure_code": None if status == "paid" else "account_closed",
                                "failure_message": None if status == "paid" else "The bank account has been closed.",
                                "destination": "ba_fake", "_account": acct}
            for bt in swept:
                bt["_payout"] = po
            txn = new_id("txn")
            self._balance_entry(acct, txn, 0, "usd", "payout", po, created, payout=po)
            self.payouts[po]["balance_transaction"] = txn
            self._settle(po)
            self.events.append(self._event("payout.created", self.payouts[po], account=acct))
            self.events.append(self._event(f"payout.{status}", self.payouts[po], account=acct))
            return self.payouts[po]

    def _settle(self, po: str) -> None:
        """A payout's amount is what its balance transactions add up to (Stripe is consistent with itself)."""
        payout = self.payouts[po]
        total = sum(bt["amount"] for bt in self.balance.values() if bt["_payout"] == po and bt["type"] != "payout")
        payout["amount"] = total
        self.balance[payout["balance_transaction"]].update(amount=-total, net=-total)

    def reverse(self, tr: str) -> dict:
        with self.lock:
            transfer = self.transfers[tr]
            transfer.update(reversed=True, amount_reversed=transfer["amount"])
            self.events.append(self._event("transfer.reversed", transfer))
            return transfer

    def balance_of(self, tr: str) -> dict:
        """The connected account's balance transaction for a transfer."""
        return self.balance[self.charges[self.transfers[tr]["destination_payment"]]["balance_transaction"]]

    def tamper(self, tr: str, delta: int) -> None:
        with self.lock:
            bt = self.balance_of(tr)
            bt.update(amount=bt["amount"] + delta, net=bt["net"] + delta)
            self._settle(bt["_payout"])

    def duplicate(self, tr: str) -> None:
        with self.lock:
            bt = self.balance_of(tr)
            copy = self._balance_entry(bt["_account"], new_id("txn"), bt["amount"], bt["currency"], "payment",
                                       bt["source"], bt["created"], payout=bt["_payout"])
            self._settle(copy["_payout"])

    def unlink(self, tr: str) -> None:
        """Leave a transfer's money out of the payout it was in."""
        with self.lock:
            bt = self.balance_of(tr)
            po, bt["_payout"] = bt["_payout"], None
            self._settle(po)

    def move(self, tr: str, po: str) -> None:
        """Put a transfer's balance transaction into another payout (another account's, say)."""
        with self.lock:
            bt = self.balance_of(tr)
            old, bt["_payout"], bt["_account"] = bt["_payout"], po, self.payouts[po]["_account"]
            if old:
                self._settle(old)
            self._settle(po)

    def add_unknown(self, po: str, amount: int) -> None:
        """A balance transaction nobody at ReadRoom made (an adjustment by Stripe, a transfer from elsewhere)."""
        with self.lock:
            payout = self.payouts[po]
            self._balance_entry(payout["_account"], new_id("txn"), amount, "usd", "adjustment", new_id("adj"),
                                stripe_now(), payout=po)
            self._settle(po)

    def transfers_to(self, acct: str) -> list[dict]:
        return [t for t in self.transfers.values() if t["destination"] == acct]

    # --- webhooks -------------------------------------------------------------------------------------
    @staticmethod
    def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    def take_events(self, kind: str | None = None) -> list[dict]:
        """The events raised since the last call (of ``kind`` only, if given; the others stay queued)."""
        with self.lock:
            taken = [e for e in self.events if kind is None or e["type"] == kind]
            self.events = [e for e in self.events if e not in taken]
            return taken

    def signed(self, event: dict, **sign_options) -> tuple[bytes, str]:
        payload = json.dumps(event).encode()
        return payload, self.sign(payload, **sign_options)
