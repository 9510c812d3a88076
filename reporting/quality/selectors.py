"""What the quality pages read: the report under review (blinded for a peer review), a read's chain of
overreads, a reader's received overreads and reviews, and the arbitration queue. Access is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from accounts.models import Organization
from accounts.policy import Actor
from core.errors import NotFound
from marketplace.models import Kind, ReadRequest
from marketplace.services.offers import profile_of
from reporting import policy, templates
from reporting.models import Report
from reporting.quality import overreads
from reporting.quality_models import OverreadReply, PeerReview, QualitySettings


@dataclass
class ReportView:
    """A signed report as a reviewer reads it: ``signer`` empty when blinded."""

    report: Report
    sections: list[dict]
    addenda: list[dict]
    signer: str = ""
    blinded: bool = False


def report_view(report: Report, *, blinded: bool) -> ReportView:
    """The signed report as its template printed it; a blinded view names nobody (nor do its addenda)."""
    snapshot = report.template_snapshot or {"sections": report.template.sections, "fields": report.template.fields}
    sections = []
    for section in snapshot["sections"]:
        code = section["code"]
        fields = [(spec["label"], templates.choice_label(spec, report.fields.get(spec["code"], "")))
                  for spec in snapshot["fields"] if spec.get("section", "findings") == code
                  and report.fields.get(spec["code"], "")]
        sections.append({"title": section["title"], "text": report.sections.get(code, ""), "fields": fields})
    addenda = [{"number": a.number, "text": a.text, "signer": "" if blinded else a.signer_name,
                "signed_at": a.signed_at} for a in report.addenda.order_by("number")]
    signer = "" if blinded else ", ".join(t for t in (report.signer_name, report.signer_credentials) if t)
    return ReportView(report, sections, addenda, signer, blinded)


def under_review(read_request: ReadRequest) -> ReportView | None:
    """The report an overread or a peer review reads (a peer review blinded), for its reader's workspace."""
    if read_request.kind not in (Kind.OVERREAD, Kind.PEER_REVIEW) or read_request.original_request_id is None:
        return None
    report = (Report.objects.select_related("template")
              .filter(read_request_id=read_request.original_request_id, status=Report.Status.FINAL).first())
    return report_view(report, blinded=read_request.kind == Kind.PEER_REVIEW) if report is not None else None


@dataclass
class ChainStep:
    read_request: ReadRequest
    level: int
    report: Report | None = None
    reply: OverreadReply | None = None
    later: list[ChainStep] = field(default_factory=list)


def chain_of(read_request: ReadRequest) -> list[ChainStep]:
    """The read and the overreads of it, first to last: level 1 the read, each overread one level up."""
    root = read_request
    while root.kind == Kind.OVERREAD and root.original_request_id is not None:
        root = ReadRequest.objects.select_related("assignee").get(pk=root.original_request_id)
    overreads_of = (ReadRequest.objects.filter(Q(original_request=root) | Q(original_request__original_request=root),
                                               kind=Kind.OVERREAD)
                    .select_related("assignee").order_by("pk"))
    requests = [root, *overreads_of]
    reports = {r.read_request_id: r for r in Report.objects.filter(read_request__in=requests)}
    replies = {r.read_request_id: r for r in OverreadReply.objects.filter(read_request__in=requests)}
    steps = {}
    for position, rr in enumerate(requests):
        steps[rr.pk] = ChainStep(rr, 1 if position == 0 else 2, reports.get(rr.pk), replies.get(rr.pk))
    for rr in requests[1:]:
        parent = steps.get(rr.original_request_id)
        if parent is not None:
            steps[rr.pk].level = parent.level + 1
    return sorted(steps.values(), key=lambda s: (s.level, s.read_request.pk))


def reply_get(*, actor: Actor, public_id) -> OverreadReply:
    """An overread reply for the original reader, the overreader, the center by role, or operations."""
    reply = (OverreadReply.objects.select_related("read_request__center", "report__radiologist__user",
                                                  "original_report__radiologist__user", "original_report__template",
                                                  "original_report__read_request__study")
             .filter(public_id=public_id).first())
    if reply is None:
        raise NotFound("Overread not found.")
    profile = profile_of(actor)
    mine = profile is not None and profile.pk in (reply.report.radiologist_id, reply.original_report.radiologist_id)
    if not (mine or policy.center_reads_reports(actor, reply.read_request.center_id) or policy.is_operations(actor)):
        raise NotFound("Overread not found.")
    return reply


def received_by(actor: Actor) -> dict:
    """A reader's overreads and final peer reviews of their own reports (never who reviewed them)."""
    profile = profile_of(actor)
    if profile is None:
        raise NotFound()
    replies = (OverreadReply.objects.filter(original_report__radiologist=profile)
               .select_related("original_report__read_request__study", "report").order_by("-created_at"))
    reviews = (PeerReview.objects.filter(reader=profile, status=PeerReview.Status.FINAL)
               .select_related("original_report__read_request__study").order_by("-final_at"))
    return {"replies": replies, "reviews": reviews,
            "addenda_due": [r for r in replies if r.addendum_requested_at and r.addendum_id is None]}


def arbitration_queue(actor: Actor) -> QuerySet[PeerReview]:
    """Reviews in arbitration this QA radiologist may decide: of the programmes that named them, and as a
    platform QA radiologist of programmes that named nobody; never on their own report or review."""
    profile = profile_of(actor)
    if profile is None:
        raise NotFound()  # for radiologists only
    named = QualitySettings.objects.filter(qa_radiologists=profile)
    mine = Q(programme_id__in=named.exclude(organization__kind=Organization.Kind.PLATFORM).values("organization_id"))
    if named.filter(organization__kind=Organization.Kind.PLATFORM).exists():
        mine |= ~Q(programme_id__in=QualitySettings.objects.filter(qa_radiologists__isnull=False)
                   .values("organization_id"))
    return (PeerReview.objects.filter(mine, status=PeerReview.Status.ARBITRATION)
            .exclude(reader=profile).exclude(read_request__assignee=profile)
            .select_related("read_request", "original_report__read_request__study", "original_report__template")
            .order_by("scored_at", "pk"))


def arbitration_get(*, actor: Actor, public_id) -> PeerReview:
    review = arbitration_queue(actor).filter(public_id=public_id).first()
    if review is None:
        raise NotFound("Review not found.")
    return review


def held(report: Report | None) -> bool:
    return report is not None and overreads.is_held(report)
