"""Builders for the workspace tests: URLs of a read's workspace routes, JSON autosave, a template with fields."""

from __future__ import annotations

import json

from django.urls import reverse

from tests.reporting.conftest import CT_SECTIONS, make_template

MAMMO_FIELDS = [
    {"code": "birads", "label": "BI-RADS assessment", "kind": "choice", "required": True, "section": "impression",
     "choices": [[n, f"BI-RADS {n}"] for n in range(7)]},
    {"code": "lesion_size", "label": "Lesion size", "kind": "number", "unit": "mm", "section": "findings"},
    {"code": "implants", "label": "Implants", "kind": "yesno", "section": "findings"},
]


def url(name: str, read_request) -> str:
    return reverse(name, args=[read_request.public_id])


def autosave(client, read_request, *, version: int, sections: dict | None = None, fields: dict | None = None,
             body: bytes | None = None):
    """POST the editor's JSON as the page's script does (CSRF is checked by the test client only when asked)."""
    payload = body if body is not None else json.dumps(
        {"version": version, "sections": sections or {}, "fields": fields or {}}).encode()
    return client.post(url("report_autosave", read_request), payload, content_type="application/json")


def fielded_template():
    """A CT template whose impression carries a required pick list (like BI-RADS), a number and a yes/no."""
    return make_template(name="CT with fields", fields=MAMMO_FIELDS)


__all__ = ["CT_SECTIONS", "MAMMO_FIELDS", "autosave", "fielded_template", "url"]
