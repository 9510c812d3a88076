"""Every read of the marketplace, always scoped to the actor (a missing scope is an error, not "everything").

- A center's people (admin, technologist, viewer) see its read requests; operations see all.
- A radiologist sees their own offers and assignments, and the requests they are assigned to.
- Anything else is NotFound.
"""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.policy import Actor
from core.errors import NotFound
from marketplace import policy
from marketplace.models import (
    ACTIVE_STATES,
    ASSIGNED_STATES,
    Assignment,
    Kind,
    Offer,
    Priority,
    ReadRequest,
    ReadRequestStatusChange,
    Status,
)
from marketplace.services.offers import profile_of

LIST_RELATED = ("center", "study", "assignee__user")


def read_request_list(*, actor: Actor, center=None) -> QuerySet[ReadRequest]:
    """The read requests of the actor's centers (or of ``center``, when the actor sees it), soonest deadline first."""
    if center is not None:
        if not policy.can_view_center_requests(actor, center):
            return ReadRequest.objects.none()
        centers = [center.pk]
    else:
        centers = policy.centers_viewed(actor)
    requests = ReadRequest.objects.filter(center_id__in=centers)
    if actor.user is not None:  # a reader on the center's staff never sees the blind reviews of their own reads
        requests = requests.exclude(kind=Kind.PEER_REVIEW, original_reader__user_id=actor.user.pk)
    return requests.select_related(*LIST_RELATED).order_by("deadline", "id")


def read_request_filter(queryset: QuerySet[ReadRequest], *, status: str = "", priority: str = "",
                        modality: str = "") -> QuerySet[ReadRequest]:
    """Filters of the center's worklist: state (or ``active``), priority, modality."""
    if status == "active":
        queryset = queryset.filter(status__in=ACTIVE_STATES)
    elif status in Status.values:
        queryset = queryset.filter(status=status)
    if priority in Priority.values:
        queryset = queryset.filter(priority=priority)
    if modality:
        queryset = queryset.filter(study__modalities_in_study__contains=f"\\{modality.upper()}\\")
    return queryset


def read_request_get(*, actor: Actor, public_id) -> ReadRequest:
    """One read request the actor may see in full: its center's people by role, its assignee, operations."""
    read_request = ReadRequest.objects.select_related(*LIST_RELATED, "posted_by", "original_request").filter(
        public_id=public_id).first()
    if read_request is None or not can_see(actor, read_request):
        raise NotFound("Read request not found.")
    return read_request


def reviews_own_read(actor: Actor, read_request: ReadRequest) -> bool:
    """A blind peer review of the actor's own read: theirs to know the result of, never the review (issue 16)."""
    return (read_request.kind == Kind.PEER_REVIEW and read_request.original_reader_id is not None
            and actor.user is not None and read_request.original_reader.user_id == actor.user.pk)


def can_see(actor: Actor, read_request: ReadRequest) -> bool:
    if reviews_own_read(actor, read_request):
        return False
    if policy.can_view_center_requests(actor, read_request.center_id) or policy.is_operations(actor):
        return True
    profile = profile_of(actor)
    return (profile is not None and read_request.assignee_id == profile.pk
            and read_request.status in (*ASSIGNED_STATES, Status.REPORTED))


def can_explain(actor: Actor, read_request: ReadRequest) -> bool:
    """The candidate table is for the center's people and operations (not for the readers in it)."""
    if reviews_own_read(actor, read_request):
        return False
    return policy.can_view_center_requests(actor, read_request.center_id) or policy.is_operations(actor)


def read_request_history(*, read_request: ReadRequest) -> QuerySet[ReadRequestStatusChange]:
    """The status changes of a request the caller already fetched through ``read_request_get``."""
    return read_request.status_changes.select_related("actor").order_by("created_at", "id")


def offer_list(*, actor: Actor, status: str = Offer.Status.OPEN) -> QuerySet[Offer]:
    """The actor's own offers (open ones by default), soonest deadline first; none for non-radiologists."""
    profile = profile_of(actor)
    if profile is None:
        return Offer.objects.none()
    queryset = Offer.objects.filter(radiologist=profile).select_related("read_request__center",
                                                                        "read_request__study")
    if status:
        queryset = queryset.filter(status=status)
    if status == Offer.Status.OPEN:
        queryset = queryset.filter(read_request__status=Status.OPEN, read_request__deadline__gt=timezone.now())
    return queryset.order_by("read_request__deadline", "id")


def offer_get(*, actor: Actor, public_id) -> Offer:
    offer = offer_list(actor=actor, status="").filter(public_id=public_id).first()
    if offer is None:
        raise NotFound("Offer not found.")
    return offer


def assignment_list(*, actor: Actor, active_only: bool = True) -> QuerySet[Assignment]:
    """The actor's own assignments ("my reads"), soonest deadline first."""
    profile = profile_of(actor)
    if profile is None:
        return Assignment.objects.none()
    queryset = Assignment.objects.filter(radiologist=profile).select_related(
        "read_request__center", "read_request__study", "grant")
    if active_only:
        queryset = queryset.filter(status=Assignment.Status.ACTIVE)
    return queryset.order_by("read_request__deadline", "id")


def assignment_get(*, actor: Actor, public_id) -> Assignment:
    assignment = assignment_list(actor=actor, active_only=False).filter(public_id=public_id).first()
    if assignment is None:
        raise NotFound("Assignment not found.")
    return assignment


def ops_reads(*, actor: Actor) -> dict[str, QuerySet[ReadRequest]]:
    """Operations' watch list across centers: at risk (80 % of the time gone unclaimed), unclaimed STATs,
    STATs flagged at posting with no reader on shift, and assigned reads past their deadline."""
    if not policy.is_operations(actor):
        raise NotFound()
    base = ReadRequest.objects.select_related(*LIST_RELATED).order_by("deadline", "id")
    return {
        "at_risk": base.filter(status=Status.OPEN, at_risk_at__isnull=False),
        "unclaimed_stat": base.filter(status=Status.OPEN, priority=Priority.STAT),
        "no_reader_on_shift": base.filter(status=Status.OPEN, no_on_shift_reader=True),
        "late": base.filter(status__in=ASSIGNED_STATES, late_at__isnull=False),
    }


def open_offer_counts(read_requests: list[ReadRequest]) -> dict[int, int]:
    """How many offers are open per request (one query for a page of requests)."""
    rows = (Offer.objects.filter(read_request__in=read_requests, status=Offer.Status.OPEN)
            .values("read_request").annotate(n=Count("id")))
    return {row["read_request"]: row["n"] for row in rows}


def offers_of(read_request: ReadRequest) -> QuerySet[Offer]:
    """Every offer of a request, with its reader (for the request page)."""
    return read_request.offers.select_related("radiologist__user").order_by("tier", "rank", "id")

