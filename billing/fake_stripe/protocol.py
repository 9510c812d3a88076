"""What the fake Stripe's parts share: its keys, its clock, its ids, Stripe's form encoding and error shape."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import parse_qsl

API_KEY = "sk_test_readroom_fake"
WEBHOOK_SECRET = "whsec_readroom_fake"  # noqa: S105 - the fake's own secret, known to tests and the demo only
API_VERSION = "2025-01-27.acacia"


_last_second = [0]
_clock_lock = threading.Lock()


def stripe_now() -> int:
    """Stripe's clock in whole seconds, one tick per object so that order is never ambiguous (it may run
    ahead of the wall clock by as many objects as are made in a second)."""
    with _clock_lock:
        _last_second[0] = max(int(time.time()), _last_second[0] + 1)
        return _last_second[0]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def decode_form(body: str) -> dict:
    """``a[b][0]=x&c=y`` → ``{"a": {"b": ["x"]}, "c": "y"}`` (numeric keys become lists)."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(node):
        if isinstance(node, dict):
            if node and all(k.isdigit() for k in node):
                return [listify(node[k]) for k in sorted(node, key=int)]
            return {k: listify(v) for k, v in node.items()}
        return node

    return listify(root)


class StripeFailure(Exception):
    """An error answer in Stripe's shape (``{"error": {"type", "message", "param", "code"}}``)."""

    def __init__(self, status: int, kind: str, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.body = status, {"error": {"type": kind, "message": message, "param": param, "code": code}}


def get_object(store: dict, object_id: str, kind: str) -> dict:
    """``store[object_id]``, or Stripe's ``resource_missing`` answer."""
    if object_id not in store:
        raise StripeFailure(404, "invalid_request_error", f"No such {kind}: '{object_id}'", "id", "resource_missing")
    return store[object_id]
