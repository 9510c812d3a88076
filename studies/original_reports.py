"""The report a patient was given with their scan (a PDF or a photo of the paper), attached to a study of their
personal space so that the second reader can compare (issue 17). The kind is decided by the bytes, never by the
name or the browser's content type; the file is stored under the space's own prefix, named by the server."""

from __future__ import annotations

from typing import BinaryIO

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from studies import page_selectors, policy, selectors
from studies.models import OriginalReport, Study

MAX_ORIGINAL_REPORT_BYTES = 20 * 1024 * 1024
# magic bytes → (content type, extension)
_KINDS = (
    (b"%PDF-", ("application/pdf", "pdf")),
    (b"\xff\xd8\xff", ("image/jpeg", "jpg")),
    (b"\x89PNG\r\n\x1a\n", ("image/png", "png")),
)


def original_report_kind(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a PDF, JPEG or PNG by its first bytes, or None."""
    return next((kind for magic, kind in _KINDS if head.startswith(magic)), None)


def _own_space_study(actor: Actor, study: Study) -> None:
    """Only the patient whose space holds the study attaches a report to it; anyone else: 404."""
    if study.deleted_at is not None or not policy.owns_space(actor, study.organization_id) \
            or study.organization.kind != Organization.Kind.PATIENT:
        raise NotFound("Study not found.")


@transaction.atomic
def original_report_add(*, actor: Actor, study: Study, fileobj: BinaryIO, filename: str, size: int,
                        request: HttpRequest | None = None) -> OriginalReport:
    """Store a PDF, JPEG or PNG of at most 20 MB beside a study of the patient's own space (checked by its bytes)."""
    _own_space_study(actor, study)
    if size <= 0:
        raise ApplicationError.for_field("file", "The file is empty.")
    if size > MAX_ORIGINAL_REPORT_BYTES:
        raise ApplicationError.for_field("file", f"The file is {size / (1024 * 1024):,.1f} MB; the limit is 20 MB. "
                                                 "A photo at a lower resolution or a smaller PDF will do.")
    head = fileobj.read(16)
    fileobj.seek(0)
    kind = original_report_kind(head)
    if kind is None:
        raise ApplicationError.for_field("file", "Send the report as a PDF, a JPEG or a PNG photo (this file is "
                                                 "none of them).", code="unsupported_type")
    content_type, extension = kind
    report = OriginalReport(study=study, content_type=content_type, size=size, uploaded_by=actor.user,
                            original_name=(filename or "")[-200:])
    key = f"{study.organization.public_id}/original-reports/{report.public_id}.{extension}"
    report.file.name = default_storage.save(key, File(fileobj))
    try:
        report.save()
    except Exception:  # no file without its row
        default_storage.delete(report.file.name)
        raise
    audit_record(action="study.original_report_added", actor=actor.user, request=request,
                 organization=study.organization, object_type="studies.study", object_id=study.study_instance_uid,
                 extra={"report": str(report.public_id), "content_type": content_type, "size": size})
    return report


def original_reports_of(*, access: selectors.StudyAccess) -> list[OriginalReport]:
    """The original reports beside a study, for whoever sees the study in full (its patient, its reader)."""
    if not access.is_full:
        return []
    return list(OriginalReport.objects.filter(study=access.study))


def original_report_get(*, actor: Actor, public_id) -> tuple[OriginalReport, selectors.StudyAccess]:
    """An original report whose study the actor sees in full, or 404 (as for one that does not exist)."""
    report = OriginalReport.objects.filter(public_id=public_id).select_related("study").first()
    if report is None:
        raise NotFound("Report not found.")
    access = page_selectors.study_get_for_page(actor=actor, public_id=report.study.public_id)
    if not access.is_full:
        raise NotFound("Report not found.")
    return report, access


def original_report_access_record(*, actor: Actor, report: OriginalReport, request: HttpRequest | None = None):
    audit_record(action="study.original_report_read", actor=actor.user, request=request,
                 organization_id=report.study.organization_id, object_type="studies.study",
                 object_id=report.study.study_instance_uid, extra={"report": str(report.public_id)}, phi_read=True)
