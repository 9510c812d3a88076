"""Access-matrix rows of the marketplace pages (route → (kwargs builder, expected status per principal)).

Center people by role see the active center's requests (finance does not: they carry clinical history);
the other center's admin sees their own (empty) list; the assignee sees the request; operations see
it and its candidates; radiologists alone have a worklist and reading hours. POST-only routes are 405
to a GET (tests/test_access_matrix.py probes foreign objects by POST).
"""

from __future__ import annotations


def _expect(ok: set[str]) -> dict:
    principals = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
                  "platform_operations", "platform_finance", "patient"]
    return {"anonymous": 302, **{p: 200 if p in ok else 404 for p in principals}}


def _post_only() -> dict:
    return {**{p: 405 for p in _expect(set())}, "anonymous": 302}


def READ_REQUEST(o):  # noqa: N802 - URL kwargs builders
    return {"public_id": o["read_request"].public_id}


def OFFER(o):  # noqa: N802
    return {"public_id": o["offer"].public_id}


def ASSIGNMENT(o):  # noqa: N802
    return {"public_id": o["assignment"].public_id}


CENTER_VIEWERS = {"center_admin", "technologist", "center_viewer"}
POSTERS_OF_THEIR_CENTER = {"center_admin", "technologist", "other_admin"}

ROWS: dict = {
    "read_request_list": (None, _expect(CENTER_VIEWERS | {"other_admin"})),
    "read_request_rows": (None, _expect(CENTER_VIEWERS | {"other_admin"})),
    "read_request_create": (None, _expect(POSTERS_OF_THEIR_CENTER)),
    "read_request_detail": (READ_REQUEST, _expect(CENTER_VIEWERS | {"radiologist", "platform_operations"})),
    "read_request_cancel": (READ_REQUEST, _post_only()),
    "read_request_explain": (READ_REQUEST, _expect(CENTER_VIEWERS | {"platform_operations"})),
    "radiologist_worklist": (None, _expect({"radiologist"})),
    "radiologist_worklist_rows": (None, _expect({"radiologist"})),
    "offer_claim": (OFFER, _post_only()),
    "offer_decline": (OFFER, _post_only()),
    "assignment_open": (ASSIGNMENT, _post_only()),
    "assignment_release": (ASSIGNMENT, _post_only()),
    "reading_hours": (None, _expect({"radiologist"})),
    "ops_reads": (None, _expect({"platform_operations"})),
    "ops_reads_rows": (None, _expect({"platform_operations"})),
    "center_marketplace_settings": (None, _expect({"center_admin", "other_admin"})),
}
