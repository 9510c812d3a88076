"""Access-matrix rows of the doctor-share routes (issue 17, item 5), for tests/test_access_matrix.py.

To wire them in: ``**SHARE_ROWS`` into ``MATRIX`` and ``**share_objects(cast)`` into the ``objects`` fixture
(and the foreign-object test's ``foreign``). ``share_order`` is a signed second opinion of the cast's patient:
only that patient reaches its share list (everyone else 404). The doctor's routes are probed with a token
nobody holds, so every principal gets 404, which fits ``Access.TOKEN`` (the cast holds no share link of its
own; tests/reporting/test_share_pages.py covers a real link).
"""

from __future__ import annotations

import uuid

from tests.reporting.patient_helpers import signed_order

PRINCIPALS = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
              "platform_operations", "platform_finance", "patient"]
NOBODYS_TOKEN = "n0b0dy-h0lds-this-l1nk-" + "x" * 20  # 43 characters, like a real token


def _expect(ok: set[str], *, anonymous: int = 302, others: int = 404) -> dict:
    return {"anonymous": anonymous, **{p: 200 if p in ok else others for p in PRINCIPALS}}


def ORDER(o):  # noqa: N802 - URL kwargs builders
    return {"public_id": o["share_order"].public_id}


SHARE_ROWS: dict = {
    "doctor_share_list": (ORDER, _expect({"patient"})),
    "doctor_share_revoke": (lambda o: {**ORDER(o), "share_id": uuid.uuid4()},
                            {"anonymous": 302, **{p: 405 for p in PRINCIPALS}}),
    "shared_report": (lambda o: {"token": NOBODYS_TOKEN}, _expect(set(), anonymous=404)),
    "shared_image": (lambda o: {"token": NOBODYS_TOKEN, "sop_uid": "1.2.3"}, _expect(set(), anonymous=404)),
}


def share_objects(cast, patient=None) -> dict:
    return {"share_order": signed_order(cast, patient)}
