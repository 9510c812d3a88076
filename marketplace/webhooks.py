"""STUB: webhook signing, delivery and relay (replaced by the webhooks work)."""


def deliver(delivery_id: int) -> str:
    return "stub"


def relay_pending() -> int:
    return 0
