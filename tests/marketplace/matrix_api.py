"""Access-matrix rows of the marketplace API (tests/test_access_matrix.py probes each route with GET).

The cast's radiologist is the assignee of ``read_request`` and holds the open ``offer``. Lists answer
everyone signed in with their own rows only (an empty list for whoever has none); a request is visible
to its center's viewing roles, its assignee and operations; the candidate table to the center and
operations. The POST-only actions answer GET with 405 (the foreign-object test probes them by POST: 404).
"""

from __future__ import annotations

SIGNED_IN = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
             "platform_operations", "platform_finance", "patient"]
UNAUTHENTICATED = 401


def _row(ok: set[str] | str, *, ok_status: int = 200) -> dict:
    allowed = set(SIGNED_IN) if ok == "all" else ok
    return {"anonymous": UNAUTHENTICATED, **{p: ok_status if p in allowed else 404 for p in SIGNED_IN}}


def _post_only() -> dict:
    return _row("all", ok_status=405)


def _request(o):
    return {"public_id": o["read_request"].public_id}


def _offer(o):
    return {"public_id": o["offer"].public_id}


def _assignment(o):
    return {"public_id": o["assignment"].public_id}


REQUEST_READERS = {"center_admin", "technologist", "center_viewer", "radiologist", "platform_operations"}
EXPLAINERS = {"center_admin", "technologist", "center_viewer", "platform_operations"}

ROWS: dict = {
    "api_read_requests": (None, _row("all")),
    "api_read_request_detail": (_request, _row(REQUEST_READERS)),
    "api_read_request_cancel": (_request, _post_only()),
    "api_read_request_history": (_request, _row(REQUEST_READERS)),
    "api_read_request_candidates": (_request, _row(EXPLAINERS)),
    "api_offers": (None, _row("all")),
    "api_offer_claim": (_offer, _post_only()),
    "api_offer_decline": (_offer, _post_only()),
    "api_assignments": (None, _row("all")),
    "api_assignment_start": (_assignment, _post_only()),
    "api_assignment_release": (_assignment, _post_only()),
    "api_study_read_locally": (lambda o: {"public_id": o["study"].public_id}, _post_only()),  # issue 18
    "api_coverage": (None, _row({"center_admin", "center_viewer", "other_admin"})),  # issue 18: the active center's
}
