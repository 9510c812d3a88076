"""Access-matrix rows of a patient's own images and of patients' share requests (route → (kwargs builder,
expected status per principal)), and the objects they are probed on, built through the real services.

A patient's pages answer the patient alone (everyone else: 404, as for a missing page); the share-request page
answers the admins of an imaging center (the other center's admin sees an empty list); POST-only routes answer
405 to a GET.
"""

from __future__ import annotations

import io
from datetime import date

from accounts.models import User
from accounts.patients import patient_details_save
from accounts.policy import actor_for_user
from studies import original_reports, shares
from tests.patients.conftest import study_in

PRINCIPALS = ["center_admin", "technologist", "center_finance", "center_viewer", "radiologist", "other_admin",
              "platform_operations", "platform_finance", "patient"]
PDF = b"%PDF-1.4\n%%EOF\n"


def _expect(ok: set[str]) -> dict:
    return {"anonymous": 302, **{p: 200 if p in ok else 404 for p in PRINCIPALS}}


def _post_only() -> dict:
    return {"anonymous": 302, **{p: 405 for p in PRINCIPALS}}


def STUDY(o):  # noqa: N802 - URL kwargs builders
    return {"public_id": o["own_space_study"].public_id}


def SHARE(o):  # noqa: N802
    return {"public_id": o["patient_share_request"].public_id}


ROWS = {
    "patient_details": (None, _expect({"patient"})),
    "patient_images": (None, _expect({"patient"})),
    "patient_upload": (None, _expect({"patient"})),
    "patient_upload_file": (None, _post_only()),
    "patient_share_request": (None, _expect({"patient"})),
    "patient_share_revoke": (SHARE, _post_only()),
    "patient_study": (STUDY, _expect({"patient"})),
    "patient_study_delete": (STUDY, _expect({"patient"})),
    "patient_original_report_upload": (STUDY, _post_only()),
    "original_report_file": (lambda o: {"public_id": o["original_report"].public_id}, _expect({"patient"})),
    "share_request_list": (None, _expect({"center_admin", "other_admin"})),
    "share_request_approve": (SHARE, _post_only()),
    "share_request_decline": (SHARE, _post_only()),
    "share_request_revoke": (SHARE, _post_only()),
}


def patient_objects(patient: User, center) -> dict:
    """The patient's details (if not given yet), a study in their space with its original report, and their
    request that ``center`` share a study."""
    if not hasattr(patient, "patient_profile"):
        patient_details_save(actor=actor_for_user(patient), date_of_birth=date(1975, 1, 9), country="US",
                             region="AZ")
        patient.refresh_from_db()
    actor = actor_for_user(patient)
    study = study_in(patient.patient_profile.space, seed=31 + patient.pk % 50, accession=f"PM{patient.pk:05d}")
    report = original_reports.original_report_add(actor=actor, study=study, fileobj=io.BytesIO(PDF),
                                                   filename="report.pdf", size=len(PDF))
    share = shares.share_request_create(actor=actor, center_public_id=center.public_id, accession_number="LK-1",
                                        study_date=None)
    return {"own_space_study": study, "original_report": report, "patient_share_request": share}
