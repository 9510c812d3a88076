"""Overreads and two-level reads.

An overread is a read request of kind ``overread`` naming a signed read (the marketplace keeps it from that
read's reader and groups; a center may direct it to a named senior reader). Its reader writes on the
"Overread" template — agree, minor or significant difference, with text — and signs; the reply is recorded
here, the original reader is told and may answer once, and a significant difference asks the original
reader for an addendum (the next addendum they sign answers it).

A two-level read (``ReadRequest.levels == 2``): when the first reader signs, the report is held — the
center hears of a level-1 report, receives no final forms — and an overread is posted as its second level
(the first overread of that read). When the second reader signs, the first report is released as final
together with the overread: the chain the request page shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Organization, Role
from accounts.policy import ANONYMOUS, Actor
from core.errors import ApplicationError, NotFound
from marketplace.models import Kind, Priority, ReadRequest
from marketplace.services import events
from marketplace.services.offers import profile_of
from marketplace.services.requests import PostData, read_request_create
from reporting.models import Addendum, Report
from reporting.quality_models import Agreement, OverreadReply, QualitySettings
from reporting.seed_templates import OVERREAD_AGREEMENT

MAX_ANSWER_CHARS = 4000
SECOND_LEVEL_AT_LEAST = timedelta(minutes=30)  # the second reader's time when the first signed near the deadline


def _conflict(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=409)


def verdict_text(report: Report) -> str:
    """What an overread or a review says besides its verdict: its findings and its comment."""
    parts = (report.sections.get("findings", ""), report.sections.get("impression", ""))
    return "\n\n".join(t.strip() for t in parts if t.strip())


def is_second_level(read_request: ReadRequest) -> bool:
    """The overread the platform posted as a two-level read's second level (its first overread)."""
    original = read_request.original_request
    if read_request.kind != Kind.OVERREAD or original is None or original.levels != 2:
        return False
    first = (ReadRequest.objects.filter(original_request=original, kind=Kind.OVERREAD)
             .order_by("pk").values_list("pk", flat=True).first())
    return first == read_request.pk


def is_held(report: Report) -> bool:
    """A two-level read's first report, signed, waiting for its second level."""
    read_request = report.read_request
    return (read_request.levels == 2 and report.status == Report.Status.FINAL
            and not OverreadReply.objects.filter(original_report=report, level=2).exists())


def post_second_level(read_request: ReadRequest, now: datetime) -> ReadRequest:
    """The first reader of a two-level read signed: ask for the second level, due by the read's deadline."""
    data = PostData.review_of(read_request, kind=Kind.OVERREAD, priority=read_request.priority,
                              special_instructions="Second level of a two-level read: the first report reaches the "
                                                   "center as final when you sign.",
                              deadline=max(read_request.deadline, now + SECOND_LEVEL_AT_LEAST))
    second, _ = read_request_create(actor=ANONYMOUS, center=read_request.center, data=data)
    return second


def on_overread_signed(report: Report, now: datetime) -> list[Report]:
    """Record the overreader's reply; returns the reports the center should now receive (the overread, and
    at a second level the first report it releases)."""
    read_request = report.read_request
    original_report = Report.objects.select_related("radiologist__user").get(
        read_request=read_request.original_request)
    level = 2 if is_second_level(read_request) else 1
    agreement = report.fields.get(OVERREAD_AGREEMENT, "")
    comment = verdict_text(report)
    significant = agreement == Agreement.SIGNIFICANT
    reply = OverreadReply.objects.create(read_request=read_request, report=report, original_report=original_report,
                                         level=level, agreement=agreement, comment=comment,
                                         addendum_requested_at=now if significant else None)
    title = f"Your report was overread: {Agreement(agreement).label.lower()}"
    if significant:
        title += " — an addendum is requested"
    events.notify([original_report.radiologist.user], title=title, body=comment[:300],
                  url=reverse("overread_reply", args=[reply.public_id]))
    return [report, original_report] if level == 2 else [report]


def _reply_for_original_reader(actor: Actor, reply: OverreadReply) -> OverreadReply:
    profile = profile_of(actor)
    if profile is None or reply.original_report.radiologist_id != profile.pk:
        raise NotFound("Overread not found.")
    return reply


@transaction.atomic
def overread_answer(*, actor: Actor, reply: OverreadReply, text: str,
                    request: HttpRequest | None = None) -> OverreadReply:
    """The original reader answers the overread, once."""
    reply = OverreadReply.objects.select_for_update().select_related(
        "original_report", "read_request__center", "report__radiologist__user").get(pk=reply.pk)
    _reply_for_original_reader(actor, reply)
    if reply.answered_at is not None:
        raise _conflict("You have answered this overread already.", "already_answered")
    text = (text or "").strip()
    if not text:
        raise ApplicationError.for_field("answer", "Write your answer.", code="required")
    if len(text) > MAX_ANSWER_CHARS:
        raise ApplicationError.for_field("answer", f"At most {MAX_ANSWER_CHARS} characters.", code="max_length")
    reply.answer, reply.answered_at, reply.answered_by = text, timezone.now(), actor.user
    reply.save(update_fields=["answer", "answered_at", "answered_by", "updated_at"])
    read_request = reply.read_request
    audit_record(action="overread.answered", actor=actor.user, request=request, organization_id=read_request.center_id,
                 object_type="reporting.overreadreply", object_id=str(reply.public_id))
    events.notify([reply.report.radiologist.user, *events.center_people(read_request.center)],
                  title="The original reader answered the overread", body=text[:300],
                  url=events.request_url(read_request))
    return reply


@transaction.atomic
def overread_request_addendum(*, actor: Actor, reply: OverreadReply,
                              request: HttpRequest | None = None) -> OverreadReply:
    """The center asks the original reader for an addendum after a minor difference (a significant one asks
    by itself)."""
    from reporting import policy

    reply = OverreadReply.objects.select_for_update().select_related(
        "read_request", "original_report__radiologist__user").get(pk=reply.pk)
    if not policy.can_acknowledge(actor, reply.read_request.center_id):
        raise NotFound("Overread not found.")
    if reply.agreement == Agreement.AGREE:
        raise _conflict("The overread agrees with the report: there is nothing to add.", "agrees")
    if reply.addendum_requested_at is not None:
        raise _conflict("An addendum was requested already.", "already_requested")
    reply.addendum_requested_at = timezone.now()
    reply.save(update_fields=["addendum_requested_at", "updated_at"])
    audit_record(action="overread.addendum_requested", actor=actor.user, request=request,
                 organization_id=reply.read_request.center_id, object_type="reporting.overreadreply",
                 object_id=str(reply.public_id))
    events.notify([reply.original_report.radiologist.user], title="An addendum to your report is requested",
                  body=reply.comment[:300], url=reverse("overread_reply", args=[reply.public_id]))
    return reply


def on_addendum_signed(report: Report, addendum: Addendum) -> None:
    """An addendum to an overread report answers the open addendum requests on it."""
    OverreadReply.objects.filter(original_report=report, addendum_requested_at__isnull=False,
                                 addendum__isnull=True).update(addendum=addendum, updated_at=timezone.now())


def group_reviewable(actor: Actor):
    """The groups whose members' reports this actor may send for overread: as the group's admin or as a QA
    radiologist it named."""
    admin_of = [org_id for org_id, m in actor.memberships.items()
                if m.organization.kind == Organization.Kind.RADIOLOGY_GROUP and Role.ADMIN in m.roles]
    profile = profile_of(actor)
    qa_of = list(QualitySettings.objects.filter(qa_radiologists=profile,
                                                organization__kind=Organization.Kind.RADIOLOGY_GROUP)
                 .values_list("organization_id", flat=True)) if profile is not None else []
    return sorted(set(admin_of) | set(qa_of))


def group_reports(actor: Actor, *, limit: int = 100):
    """The signed reports of the actor's groups' members, newest first (the group QA lead's list)."""
    groups = group_reviewable(actor)
    if not groups:
        raise NotFound()
    members = Membership.objects.filter(organization_id__in=groups, is_active=True).values("user_id")
    return (Report.objects.filter(status=Report.Status.FINAL, radiologist__user_id__in=members,
                                  read_request__kind__in=(Kind.PRIMARY, Kind.SPECIALIST_CONSULT))
            .select_related("read_request__study", "read_request__center", "radiologist__user")
            .order_by("-signed_at")[:limit])


@transaction.atomic
def overread_order_by_group(*, actor: Actor, report: Report, request: HttpRequest | None = None) -> ReadRequest:
    """A reading group's QA lead sends a member's signed report for overread; the group pays, and the
    marketplace keeps the overread away from the group itself."""
    groups = group_reviewable(actor)
    group_id = (Membership.objects.filter(organization_id__in=groups, user_id=report.radiologist.user_id,
                                          is_active=True).values_list("organization_id", flat=True).first())
    if group_id is None or report.status != Report.Status.FINAL:
        raise NotFound("Report not found.")
    original = report.read_request
    priority = Priority.URGENT if original.priority == Priority.STAT else original.priority  # QA is not STAT
    data = PostData.review_of(original, kind=Kind.OVERREAD, priority=priority,
                              special_instructions="Overread for the reading group's quality assurance.",
                              payer=Organization.objects.get(pk=group_id))
    overread, _ = read_request_create(actor=actor, center=original.center, data=data, request=request)
    return overread
