"""Every read of reports, scoped to the actor. A report the actor may not see is NotFound, like a missing one.

- The assignee sees and writes the report of a request assigned to them (active assignment, or
  reported by them).
- The center's people by role see preliminary and final reports, never drafts.
- Platform operations see preliminary and final reports.
"""

from __future__ import annotations

from django.db.models import F, QuerySet

from accounts.models import Organization
from accounts.policy import Actor
from core.errors import NotFound
from marketplace.models import Kind, ReadRequest, Status
from marketplace.selectors import reviews_own_read
from marketplace.services.offers import profile_of
from reporting import policy
from reporting.models import Addendum, CriticalResult, Macro, Message, Report

WRITABLE_REQUEST_STATES = (Status.ASSIGNED, Status.IN_PROGRESS)
REPORT_RELATED = ("read_request__center", "read_request__study", "template", "radiologist__user")


def assigned_request(*, actor: Actor, public_id) -> ReadRequest:
    """A read request assigned to the actor that is still theirs to report (404 otherwise)."""
    profile = profile_of(actor)
    read_request = (ReadRequest.objects.select_related("center", "study", "assignee__user")
                    .filter(public_id=public_id).first())
    if (profile is None or read_request is None or read_request.assignee_id != profile.pk
            or read_request.status not in (*WRITABLE_REQUEST_STATES, Status.REPORTED, Status.CLOSED)):
        raise NotFound("Read request not found.")
    return read_request


def draft_of_assigned_request(*, actor: Actor, public_id) -> Report | None:
    """The report of a read request assigned to the actor, with what a save reads, in one query (autosave);
    None when there is none yet (the workspace opens it)."""
    if actor.user is None:
        return None
    return (Report.objects.select_related("read_request", "template", "radiologist")
            .filter(read_request__public_id=public_id, radiologist__user=actor.user,
                    read_request__assignee=F("radiologist")).first())


def report_for_author(*, actor: Actor, public_id) -> Report:
    """A report the actor wrote or is writing (by the report's public id)."""
    profile = profile_of(actor)
    report = Report.objects.select_related(*REPORT_RELATED).filter(public_id=public_id).first()
    if profile is None or report is None or report.radiologist_id != profile.pk:
        raise NotFound("Report not found.")
    return report


def visible_report(*, actor: Actor, read_request: ReadRequest) -> Report | None:
    """The report of a request the caller already fetched through a scoped selector, as this actor may
    see it: its author sees it in any state; the center and operations from preliminary on."""
    report = Report.objects.select_related(*REPORT_RELATED).filter(read_request=read_request).first()
    if report is None:
        return None
    profile = profile_of(actor)
    if profile is not None and report.radiologist_id == profile.pk:
        return report
    if report.status == Report.Status.DRAFT:
        return None
    if policy.center_reads_reports(actor, read_request.center_id) or policy.is_operations(actor):
        return report
    return None


def addenda_of(report: Report) -> QuerySet[Addendum]:
    return report.addenda.order_by("number")


def macros_of(actor: Actor) -> QuerySet[Macro]:
    profile = profile_of(actor)
    return Macro.objects.filter(radiologist=profile) if profile is not None else Macro.objects.none()


def messages_of(read_request: ReadRequest) -> QuerySet[Message]:
    """The thread of a request the caller already fetched through a scoped selector."""
    return read_request.messages.select_related("author").order_by("created_at", "id")


def earlier_reports(*, read_request: ReadRequest) -> QuerySet[Report]:
    """The same patient's earlier signed reports at this center (the workspace lists them)."""
    study = read_request.study
    if not study.patient_id:
        return Report.objects.none()
    return (Report.objects.filter(read_request__center_id=read_request.center_id,
                                  read_request__study__patient_id=study.patient_id,
                                  status=Report.Status.FINAL)
            .exclude(read_request=read_request).exclude(read_request_id=read_request.original_request_id)
            .exclude(read_request__kind=Kind.PEER_REVIEW)  # reviews are confidential; the reviewed one is shown apart
            .select_related("read_request__study").order_by("-signed_at")[:20])


# --- critical results (reporting.views.critical) ------------------------------------------------------

CRITICAL_RELATED = ("center", "read_request__study", "report__radiologist__user", "acknowledged_by")
RECENT_ACKNOWLEDGED = 100  # the center's list shows the latest acknowledged ones below the open ones


def critical_results_of_center(*, actor: Actor, center) -> dict[str, QuerySet[CriticalResult]]:
    """The center's critical results for its people by role: ``open`` (category 1 first, oldest first)
    and the latest ``acknowledged``; NotFound for anyone else."""
    if center is None or center.kind != Organization.Kind.IMAGING_CENTER \
            or not policy.center_reads_reports(actor, center.pk):
        raise NotFound()
    base = CriticalResult.objects.filter(center=center).select_related(*CRITICAL_RELATED)
    return {"open": base.filter(acknowledged_at__isnull=True).order_by("category", "created_at", "id"),
            "acknowledged": base.filter(acknowledged_at__isnull=False).order_by("-acknowledged_at", "-id")
            [:RECENT_ACKNOWLEDGED]}


def critical_result_get(*, actor: Actor, public_id) -> CriticalResult:
    """One critical result, for its center's people by role and operations (404 for anyone else)."""
    critical = CriticalResult.objects.select_related(*CRITICAL_RELATED).filter(public_id=public_id).first()
    if critical is None or not (policy.center_reads_reports(actor, critical.center_id)
                                or policy.is_operations(actor)):
        raise NotFound("Critical result not found.")
    return critical


def open_critical_results(*, actor: Actor) -> QuerySet[CriticalResult]:
    """Operations' dashboard: every unacknowledged critical result across centers, highest escalation,
    then category 1, then oldest first."""
    if not policy.is_operations(actor):
        raise NotFound()
    return (CriticalResult.objects.filter(acknowledged_at__isnull=True).select_related(*CRITICAL_RELATED)
            .order_by("-escalation_level", "category", "created_at", "id"))


# --- the request's message thread (reporting.views.messages) ---------------------------------------

THREAD_READER_STATES = (*WRITABLE_REQUEST_STATES, Status.REPORTED, Status.CLOSED)


def thread_side(actor: Actor, read_request: ReadRequest) -> str | None:
    """Which side of the thread the actor writes on: ``center`` (its admins, technologists, viewers),
    ``reader`` (the assignee while assigned, or after reporting), else None."""
    if reviews_own_read(actor, read_request):  # a blind review of the actor's own read is not theirs to read
        return None
    if policy.center_reads_reports(actor, read_request.center_id):
        return "center"
    profile = profile_of(actor)
    if (profile is not None and read_request.assignee_id == profile.pk
            and read_request.status in THREAD_READER_STATES):
        return "reader"
    return None


def message_thread_get(*, actor: Actor, public_id) -> ReadRequest:
    """The read request whose thread the actor may read: either side, or operations (read only); else 404."""
    read_request = (ReadRequest.objects.select_related("center", "study", "assignee__user")
                    .filter(public_id=public_id).first())
    if read_request is None or (thread_side(actor, read_request) is None and not policy.is_operations(actor)):
        raise NotFound("Read request not found.")
    return read_request
