"""Blinded RADPEER peer review: the review read, its score, arbitration, and what the reader is told.

A sampled report becomes a read request of kind ``peer_review`` through the marketplace (so the review is
an offer like any other, paid at the review rate, and never offered to the original reader or their groups).
The reviewer scores it on the "Peer review (RADPEER)" template and signs; 1 and 2a are final at once, 2b, 3a
and 3b wait for a QA radiologist of the programme (else the platform's) to confirm or change them. The
original reader is told the final score, never who reviewed; the reviewer never learns who read. The one
function that moves a review is ``peer_review_transition`` (table ``PEER_REVIEW_TRANSITIONS``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Organization, RadiologistProfile
from accounts.policy import ANONYMOUS, Actor
from core.errors import ApplicationError, NotFound
from marketplace.models import Kind, Priority, ReaderQuality, Status
from marketplace.services import events
from marketplace.services.offers import profile_of
from marketplace.services.requests import PostData, read_request_create
from reporting.models import Report
from reporting.quality.overreads import verdict_text
from reporting.quality_models import ARBITRATED_SCORES, PEER_REVIEW_TRANSITIONS, PeerReview, QualitySettings, Score
from reporting.seed_templates import RADPEER_SCORE
from studies.services import study_access_grant_create

logger = logging.getLogger(__name__)
REVIEW_DAYS = 7  # a routine review's deadline
ARBITRATION_DAYS = 14  # how long arbiters keep (blinded) access to the images


def _refused(message: str, code: str, **fields) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=409, fields={k: [str(v)] for k, v in fields.items()})


def peer_review_request(*, report: Report, programme_id: int, group_pays: bool, modality: str) -> PeerReview | None:
    """Post the blind review of a sampled report (None when its study is gone: nothing to review)."""
    original = report.read_request
    data = PostData.review_of(original, kind=Kind.PEER_REVIEW, priority=Priority.ROUTINE,
                              deadline=timezone.now() + timedelta(days=REVIEW_DAYS),
                              payer=Organization.objects.get(pk=programme_id) if group_pays else None)
    try:
        with transaction.atomic():
            review_request, _ = read_request_create(actor=ANONYMOUS, center=original.center, data=data)
            return PeerReview.objects.create(original_report=report, read_request=review_request,
                                             programme_id=programme_id, reader=report.radiologist,
                                             center_id=original.center_id, modality=modality)
    except ApplicationError as error:
        logger.warning("report %s was sampled but cannot be reviewed: %s", report.public_id, error)
        return None


@transaction.atomic
def peer_review_transition(*, review: PeerReview, to: str, actor_user=None, fields: dict | None = None,
                           request: HttpRequest | None = None) -> PeerReview:
    """The one way a review changes state; a refused move is a 409 naming the current state."""
    locked = PeerReview.objects.select_for_update().get(pk=review.pk)
    if to not in PEER_REVIEW_TRANSITIONS[locked.status]:
        raise _refused(f"This review is {locked.get_status_display().lower()}: it cannot become "
                       f"{PeerReview.Status(to).label.lower()}.", "invalid_transition",
                       status=f"{locked.status} → {to}")
    from_status, locked.status = locked.status, to
    for name, value in (fields or {}).items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", "updated_at", *(fields or {})])
    # No names in the record: the reader and the reviewer each may read entries about their own work.
    audit_record(action=f"peer_review.{to}", actor=actor_user, request=request, organization_id=locked.center_id,
                 object_type="reporting.peerreview", object_id=str(locked.public_id),
                 extra={"from": from_status, "to": to, "final_score": locked.final_score})
    review.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


def arbiters_of(review: PeerReview) -> list:
    """The programme's QA radiologists, or the platform's when it named none; never the reader or the reviewer
    (``reporting.quality.selectors.arbitration_queue`` is the same rule, seen from the arbiter)."""
    excluded = {review.reader_id, review.read_request.assignee_id}
    named = list(QualitySettings.objects.filter(organization_id=review.programme_id)
                 .values_list("qa_radiologists", flat=True))
    if not [pk for pk in named if pk is not None]:
        named = list(QualitySettings.objects.filter(organization__kind=Organization.Kind.PLATFORM)
                     .values_list("qa_radiologists", flat=True))
    return list(RadiologistProfile.objects.filter(pk__in=[pk for pk in named if pk not in excluded])
                .select_related("user"))


def on_review_signed(report: Report, now: datetime) -> None:
    """The reviewer signed: record the score; 2b and above go to arbitration, the rest is final."""
    review = PeerReview.objects.select_related("read_request", "original_report__read_request__study").get(
        read_request_id=report.read_request_id)
    score = report.fields.get(RADPEER_SCORE, "")
    comment = verdict_text(report)
    scored = {"score": score, "comment": comment, "scored_at": now}
    if score in ARBITRATED_SCORES:
        peer_review_transition(review=review, to=PeerReview.Status.ARBITRATION, actor_user=report.signed_by,
                               fields=scored)
        study = review.original_report.read_request.study
        arbiters = arbiters_of(review)
        for arbiter in arbiters:  # they need the images; blinded like the reviewer
            study_access_grant_create(actor=None, study=study, user=arbiter.user, level="full",
                                      reason=f"Arbitration of peer review {review.public_id}",
                                      expires_at=now + timedelta(days=ARBITRATION_DAYS), hide_reports=True)
        events.notify([a.user for a in arbiters] or events.operations_people(),
                      title=f"Peer review to arbitrate: score {score}", body=f"{review.modality} study",
                      url=reverse("quality_arbitration", args=[review.public_id]))
    else:
        peer_review_transition(review=review, to=PeerReview.Status.FINAL, actor_user=report.signed_by,
                               fields={**scored, "final_score": score, "final_at": now})
        _after_final(review)


@transaction.atomic
def peer_review_arbitrate(*, actor: Actor, review: PeerReview, score: str, comment: str,
                          request: HttpRequest | None = None) -> PeerReview:
    """A QA radiologist confirms the reviewer's score or changes it; the outcome is final."""
    profile = profile_of(actor)
    if profile is None or profile.pk not in {a.pk for a in arbiters_of(review)}:
        raise NotFound("Review not found.")  # the queue's rule (arbitration_queue): anyone else, a missing review
    if score not in Score.values:
        raise ApplicationError.for_field("score", f"Score on the RADPEER scale: {', '.join(Score.values)}.")
    comment = (comment or "").strip()
    if score != review.score and not comment:
        raise ApplicationError.for_field("comment", "Say why the score changes.", code="required")
    review = peer_review_transition(
        review=review, to=PeerReview.Status.FINAL, actor_user=actor.user, request=request,
        fields={"final_score": score, "final_at": timezone.now(), "arbiter": profile,
                "arbitration_comment": comment[:4000]})
    _after_final(review)
    return review


def _after_final(review: PeerReview) -> None:
    """The reader's quality follows, and the reader hears the confirmed result (not who reviewed)."""
    refresh_reader_quality(review.reader_id)
    study = review.original_report.read_request.study
    events.notify([review.reader.user], title=f"Peer review result: RADPEER {review.final_score}",
                  body=f"A peer review of your report on {study.study_description or 'a study'} is final: "
                       f"{Score(review.final_score).label}.", url=reverse("quality_reviews_received"))


def refresh_reader_quality(radiologist_id: int) -> ReaderQuality:
    """Recount the reader's final reviews into the row the marketplace ranks by."""
    counts = PeerReview.objects.filter(reader_id=radiologist_id, status=PeerReview.Status.FINAL).aggregate(
        reviews=Count("pk"), concordant=Count("pk", filter=Q(final_score=Score.CONCUR)),
        significant=Count("pk", filter=Q(final_score__in=ARBITRATED_SCORES)))
    quality, _ = ReaderQuality.objects.update_or_create(radiologist_id=radiologist_id,
                                                        defaults={**counts, "updated_at": timezone.now()})
    return quality


def cancel_unread_reviews() -> int:
    """Reviews whose read request ended unread (cancelled, expired) end with it, uncounted (the beat runs this:
    the marketplace, below reporting, cannot call up)."""
    ended = PeerReview.objects.filter(status=PeerReview.Status.REQUESTED,
                                      read_request__status__in=[Status.CANCELLED, Status.EXPIRED])
    count = 0
    for review in ended:
        peer_review_transition(review=review, to=PeerReview.Status.CANCELLED)
        count += 1
    return count
