"""Quality pages: a read's chain of overreads (a panel of the request's page), an overread's reply and the
original reader's answer, a reader's received overreads and reviews, and the arbitration queue.

Access is decided in ``reporting.quality.selectors`` (404 for anyone else); changes go through
``reporting.quality.overreads`` and ``reporting.quality.peer_review``. Showing a report is a read of patient
data: audited first.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit import audit_record
from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace import selectors as marketplace_selectors
from marketplace.models import Kind, ReadRequest
from reporting import policy
from reporting.quality import overreads, peer_review
from reporting.quality import selectors as quality
from reporting.quality_models import Score


def _audit_read(request, actor, *, action: str, center_id: int, object_type: str, object_id) -> None:
    audit_record(action=action, actor=actor.user, request=request, organization_id=center_id,
                 object_type=object_type, object_id=str(object_id), phi_read=True)


@login_required
@require_http_methods(["GET"])
@page_errors
def read_request_quality(request, public_id):
    """The chain of a read and its overreads (an htmx fragment of the request's page)."""
    actor = actor_of(request)
    read_request = marketplace_selectors.read_request_get(actor=actor, public_id=public_id)
    steps = [] if read_request.kind == Kind.PEER_REVIEW else quality.chain_of(read_request)
    can_order = (policy.can_acknowledge(actor, read_request.center_id) and read_request.kind != Kind.PEER_REVIEW
                 and read_request.status in ("reported", "closed"))
    return render(request, "reporting/quality/_chain.html",
                  {"rr": read_request, "steps": steps if len(steps) > 1 or read_request.levels == 2 else [],
                   "can_order": can_order})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def overread_reply(request, public_id):
    """An overread's verdict beside the report it reviews; the original reader answers here, once."""
    actor = actor_of(request)
    reply = quality.reply_get(actor=actor, public_id=public_id)
    if request.method == "POST":
        with rule_refusals(lambda exc: messages.error(request, exc.message)) as call:
            overreads.overread_answer(actor=actor, reply=reply, text=request.POST.get("answer", ""), request=request)
        if call.ok:
            messages.success(request, "Your answer was sent to the overreader and the center.")
        return redirect("overread_reply", public_id=reply.public_id)
    _audit_read(request, actor, action="overread.viewed", center_id=reply.read_request.center_id,
                object_type="reporting.overreadreply", object_id=reply.public_id)
    is_original_reader = reply.original_report.radiologist.user_id == actor.user.pk
    return render(request, "reporting/quality/overread_reply.html", {
        "reply": reply, "original": quality.report_view(reply.original_report, blinded=False),
        "can_answer": is_original_reader and reply.answered_at is None,
        "can_request_addendum": policy.can_acknowledge(actor, reply.read_request.center_id)
        and reply.agreement != "agree" and reply.addendum_requested_at is None,
    })


@login_required
@require_POST
@page_errors
def overread_addendum_request(request, public_id):
    actor = actor_of(request)
    reply = quality.reply_get(actor=actor, public_id=public_id)
    with rule_refusals(lambda exc: messages.error(request, exc.message)) as call:
        overreads.overread_request_addendum(actor=actor, reply=reply, request=request)
    if call.ok:
        messages.success(request, "The original reader was asked for an addendum.")
    return redirect("overread_reply", public_id=reply.public_id)


@login_required
@require_http_methods(["GET"])
@page_errors
def quality_reviews_received(request):
    """A reader's overreads and final peer reviews of their own reports (who reviewed: never)."""
    actor = actor_of(request)
    return render(request, "reporting/quality/received.html", quality.received_by(actor))


@login_required
@require_http_methods(["GET"])
@page_errors
def quality_arbitration_queue(request):
    actor = actor_of(request)
    return render(request, "reporting/quality/arbitration_list.html",
                  {"reviews": list(quality.arbitration_queue(actor))})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def quality_arbitration(request, public_id):
    """One review in arbitration: the report (blinded), the reviewer's score and comment (unnamed), the images."""
    actor = actor_of(request)
    review = quality.arbitration_get(actor=actor, public_id=public_id)
    if request.method == "POST":
        with rule_refusals(lambda exc: messages.error(request, exc.message)) as call:
            peer_review.peer_review_arbitrate(actor=actor, review=review, score=request.POST.get("score", ""),
                                              comment=request.POST.get("comment", ""), request=request)
        if call.ok:
            messages.success(request, f"The score is final: RADPEER {review.final_score}.")
            return redirect("quality_arbitration_queue")
        return redirect("quality_arbitration", public_id=review.public_id)
    _audit_read(request, actor, action="peer_review.viewed", center_id=review.center_id,
                object_type="reporting.peerreview", object_id=review.public_id)
    return render(request, "reporting/quality/arbitration_detail.html", {
        "review": review, "original": quality.report_view(review.original_report, blinded=True),
        "study": review.original_report.read_request.study, "scores": Score.choices,
    })


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def group_signed_reports(request):
    """A reading group's QA lead (its admin, or a QA radiologist it named): members' signed reports, each
    sendable for overread (the group pays)."""
    actor = actor_of(request)
    listed = list(overreads.group_reports(actor))
    if request.method == "POST":
        report = next((r for r in listed if str(r.public_id) == request.POST.get("report", "")), None)
        if report is None:
            raise NotFound("Report not found.")
        with rule_refusals(lambda exc: messages.error(request, exc.message)) as call:
            overread = overreads.overread_order_by_group(actor=actor, report=report, request=request)
        if call.ok:
            messages.success(request, f"Overread requested ({overread.get_priority_display().lower()}), offered "
                                      "outside your group.")
        return redirect("group_signed_reports")
    ordered = set(ReadRequest.objects.filter(kind=Kind.OVERREAD, original_request__in=[r.read_request for r in listed])
                  .values_list("original_request_id", flat=True))
    return render(request, "reporting/quality/group_reports.html",
                  {"reports": [(r, r.read_request_id in ordered) for r in listed]})


urlpatterns = [
    path("reads/<uuid:public_id>/quality/", read_request_quality, name="read_request_quality"),
    path("quality/overreads/<uuid:public_id>/", overread_reply, name="overread_reply"),
    path("quality/overreads/<uuid:public_id>/addendum/", overread_addendum_request, name="overread_addendum_request"),
    path("quality/received/", quality_reviews_received, name="quality_reviews_received"),
    path("quality/arbitration/", quality_arbitration_queue, name="quality_arbitration_queue"),
    path("quality/arbitration/<uuid:public_id>/", quality_arbitration, name="quality_arbitration"),
    path("quality/group-reports/", group_signed_reports, name="group_signed_reports"),
]
