"""Access-matrix rows of the webhook routes, pages and API: the center's admins only (the list answers any
admin of an imaging center with their own center's endpoints). Page actions are POST-only: a GET is 405.

Same format as tests/test_access_matrix.py (which imports this module, so its helpers are not imported here).
"""

SIGNED_IN = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
             "platform_operations", "platform_finance", "patient"]
PAGE, API = 302, 401


def row(ok: set[str], *, anonymous: int, ok_status: int = 200, others: int = 404) -> dict:
    return {"anonymous": anonymous, **{p: ok_status if p in ok else others for p in SIGNED_IN}}


def WEBHOOK(o):  # noqa: N802 - URL kwargs builder of the center's webhook endpoint
    return {"public_id": o["webhook"].public_id}


POST_ONLY_PAGE = row(set(SIGNED_IN), ok_status=405, anonymous=PAGE)
POST_ONLY_API = row(set(SIGNED_IN), ok_status=405, anonymous=API)

ROWS: dict = {
    "webhook_create": (None, POST_ONLY_PAGE),
    "webhook_delete": (WEBHOOK, POST_ONLY_PAGE),
    "webhook_test": (WEBHOOK, POST_ONLY_PAGE),
    "api_webhook_endpoints": (None, row({"center_admin", "other_admin"}, anonymous=API)),
    "api_webhook_endpoint_detail": (WEBHOOK, row({"center_admin"}, anonymous=API)),
    "api_webhook_endpoint_test": (WEBHOOK, POST_ONLY_API),
}
