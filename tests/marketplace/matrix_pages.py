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


def OVERFLOW_RULE(o):  # noqa: N802 - one unpaused rule of the objects' center, made on first use
    from accounts.models import Organization
    from marketplace.coverage_models import OverflowRule

    if not isinstance(o["center"], Organization):  # the "missing object" probe: a rule id nobody has
        return {"public_id": o["center"].public_id}
    rule = OverflowRule.objects.filter(center=o["center"]).first() or OverflowRule.objects.create(
        center=o["center"], trigger="unread", minutes=30)
    return {"public_id": rule.public_id}


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
    # overflow rules (issue 18): the center's admins (another center's admin sees their own empty list; the
    # probed rule is the cast center's: 404 to them); the "read locally" mark is POST-only
    "overflow_rules": (None, _expect({"center_admin", "other_admin"})),
    "overflow_rule_edit": (lambda o: OVERFLOW_RULE(o), _expect({"center_admin"})),
    "overflow_rule_pause": (lambda o: OVERFLOW_RULE(o), _post_only()),
    "overflow_rule_delete": (lambda o: OVERFLOW_RULE(o), _post_only()),
    "study_read_locally": (lambda o: {"public_id": o["study"].public_id}, _post_only()),
    # schedules and coverage (issue 18): a center's map for its admins and viewers (another center's admin sees
    # their own center's); a group's calendar for its admins (the cast has no group admin)
    "coverage_map": (None, _expect({"center_admin", "center_viewer", "other_admin"})),
    "group_calendar": (None, _expect(set())),
}
