"""Offers, the exactly-once claim, release, and the access grants that follow them.

- Publishing makes offers to the ranked candidates of the current tier (preferred first, everyone
  eligible from tier 1), each with a ``preview`` grant that ends with the offer. STAT offers go to
  readers on shift only, and for their first minutes to those of them for whom it is daytime (follow the sun).
- A claim locks the request row; the first claim of an open request wins, every other gets a 409
  naming the state. The claimant's eligibility is checked again at that moment. The partial unique
  index ``one_active_assignment_per_request`` backs the rule in the database.
- On claim the winner's preview becomes a ``full`` grant until the deadline plus a grace period
  (moved to closing plus grace when the request closes); every other offer is withdrawn and its grant revoked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import RadiologistProfile
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from core.timefmt import local_time
from marketplace.models import (
    ASSIGNED_STATES,
    Assignment,
    Audience,
    Kind,
    Offer,
    Priority,
    ReadRequest,
    Status,
)
from marketplace.services import events, money
from marketplace.services.matching import Candidate, MatchResult, load_profiles, match
from marketplace.services.requests import read_request_transition
from studies.models import StudyAccessGrant
from studies.services import (
    study_access_grant_create,
    study_access_grant_revoke,
    study_access_grants_create,
    study_access_grants_revoke,
)

GRACE = timedelta(days=settings.READ_ACCESS_GRACE_DAYS)
WIDEN_AT_FRACTION = 0.25  # preferred readers alone until 25 % of the time to deadline (or the center's delay)
STAT_DAYTIME_FIRST = timedelta(minutes=5)  # a STAT waits this long for daytime readers before night ones see it


def _conflict(message: str, code: str, **fields) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=409, fields={k: [v] for k, v in fields.items()})


def profile_of(actor: Actor) -> RadiologistProfile | None:
    if actor.user is None:
        return None
    return RadiologistProfile.objects.filter(user=actor.user).select_related("user").first()


# --- tiers and offers -----------------------------------------------------------------------------

def _starts_in_tier_one(read_request: ReadRequest, result: MatchResult) -> bool:
    if read_request.audience == Audience.DIRECT:
        return True  # its one reader or group is the whole audience
    if read_request.audience == Audience.PREFERRED:
        return False
    return not any(c.preferred for c in result.candidates)  # marketplace: preferred readers first if any


def widen_due(read_request: ReadRequest, at: datetime) -> bool:
    """Whether the preferred tier has had its time: the request's or center's delay, else 25 % of the time."""
    if read_request.tier >= 1 or read_request.audience == Audience.DIRECT:
        return False
    start = read_request.published_at or read_request.created_at
    if read_request.audience == Audience.PREFERRED:
        if read_request.widen_after_minutes is None:
            return False  # never widens
        return at >= start + timedelta(minutes=read_request.widen_after_minutes)
    delay = getattr(getattr(read_request.center, "marketplace_settings", None), "preferred_widen_minutes", None)
    if delay is not None:
        return at >= start + timedelta(minutes=delay)
    return read_request.fraction_elapsed(at) >= WIDEN_AT_FRACTION


def _offerable(read_request: ReadRequest, result: MatchResult, at: datetime) -> list[Candidate]:
    chosen = [c for c in result.candidates if read_request.tier >= 1 or c.preferred]
    if read_request.priority == Priority.STAT:
        chosen = [c for c in chosen if c.on_shift]  # STAT offers only to readers on shift now
        # Follow the sun (issue 18): daytime readers alone for the first minutes, then the clock's next sweep
        # offers everyone on shift (no daytime reader: everyone on shift at once).
        published = read_request.published_at or at
        daytime = [c for c in chosen if c.daytime]
        if daytime and at < published + STAT_DAYTIME_FIRST:
            chosen = daytime
    return chosen


@transaction.atomic
def offers_sync(*, read_request: ReadRequest, at: datetime | None = None,
                result: MatchResult | None = None) -> list[Offer]:
    """Offer the request to every candidate of its current tier not offered yet. Idempotent.

    The request's row is locked first (the lock order of the claim: the request, then its offers), so two
    sweeps of one request take turns and the second finds the first's offers. The tier's grants and offers
    are written in one statement each, the grants' audit records sent together."""
    at = at or timezone.now()
    status = ReadRequest.objects.select_for_update().filter(pk=read_request.pk).values_list("status", flat=True)
    if status.first() != Status.OPEN:
        return []
    result = result or match(read_request, at=at, eligible_only=True)
    offered = dict(Offer.objects.filter(read_request=read_request).values_list("radiologist_id", "status"))
    offerable = _offerable(read_request, result, at)
    new = [c for c in offerable if c.radiologist_id not in offered]
    # An offer withdrawn because another reader took the read (who then released it) opens again.
    reopening = [c for c in offerable if offered.get(c.radiologist_id) == Offer.Status.WITHDRAWN]
    if not new and not reopening:
        return []
    load_profiles(new + reopening)  # matching's hot path carries ids: profiles only for those offered now
    grants = study_access_grants_create(
        actor=None, study=read_request.study, users=[c.radiologist.user for c in reopening + new], level="preview",
        reason=f"Offered read request {read_request.public_id}", expires_at=read_request.deadline,
        hide_reports=read_request.kind == Kind.PEER_REVIEW)
    grant_of = {grant.user_id: grant for grant in grants}
    now = timezone.now()
    for candidate in reopening:  # rare (a released read): one UPDATE each
        Offer.objects.filter(read_request=read_request, radiologist=candidate.radiologist,
                             status=Offer.Status.WITHDRAWN).update(
            status=Offer.Status.OPEN, grant=grant_of[candidate.radiologist.user_id], tier=read_request.tier,
            rank=candidate.rank, responded_at=None, updated_at=now)
    created = Offer.objects.bulk_create([
        Offer(read_request=read_request, radiologist=c.radiologist, tier=read_request.tier, rank=c.rank,
              grant=grant_of[c.radiologist.user_id]) for c in new])
    if reopening:
        created = list(Offer.objects.filter(read_request=read_request, radiologist_id__in=[
            c.radiologist_id for c in reopening]).select_related("radiologist__user")) + created
    title = (f"New {read_request.get_priority_display()} read offered: "
             f"{'/'.join(read_request.modalities)} {read_request.body_part}").strip()
    by_zone: dict[str, list] = {}  # each reader reads the deadline in their own zone
    for offer in created:
        by_zone.setdefault(offer.radiologist.user.time_zone, []).append(offer.radiologist.user)
    for zone, users in by_zone.items():
        events.notify(users, title=title, url="/worklist/",
                      body=f"Quote {_money(read_request)}, due {local_time(read_request.deadline, zone)}.")
    return created


def _money(read_request: ReadRequest) -> str:
    from marketplace.pricing import format_money

    return format_money(read_request.quoted_cents, read_request.currency)


@transaction.atomic
def read_request_publish(*, read_request: ReadRequest, actor: Actor | None, request: HttpRequest | None = None,
                         at: datetime | None = None) -> ReadRequest:
    """Draft → open: the first tier's offers go out; a STAT with nobody eligible on shift is flagged now."""
    at = at or timezone.now()
    read_request = read_request_transition(read_request=read_request, to=Status.OPEN, actor=actor,
                                           fields={"published_at": at}, request=request)
    result = match(read_request, at=at, eligible_only=True)
    tier = 1 if _starts_in_tier_one(read_request, result) else 0
    flagged = read_request.priority == Priority.STAT and not result.on_shift
    ReadRequest.objects.filter(pk=read_request.pk).update(tier=tier, no_on_shift_reader=flagged)
    read_request.tier, read_request.no_on_shift_reader = tier, flagged
    offers_sync(read_request=read_request, at=at, result=result)
    if flagged:
        events.notify(events.operations_people() + events.center_people(read_request.center, "admin"),
                      title="STAT read with no eligible reader on shift",
                      body=f"{'/'.join(read_request.modalities)} in {read_request.jurisdiction}: nobody eligible is "
                           "on shift now. It stays open for readers who come on shift.",
                      url=events.request_url(read_request))
    return read_request


def read_request_widen(*, read_request: ReadRequest, at: datetime | None = None, reason: str = "") -> bool:
    """Open the request to everyone eligible (tier 1). Idempotent: False when it already was."""
    at = at or timezone.now()
    if not ReadRequest.objects.filter(pk=read_request.pk, tier=0, status=Status.OPEN).update(tier=1, widened_at=at):
        return False
    read_request.tier, read_request.widened_at = 1, at
    audit_record(action="read_request.widened", organization_id=read_request.center_id,
                 object_type="marketplace.readrequest", object_id=str(read_request.public_id), reason=reason)
    offers_sync(read_request=read_request, at=at)
    return True


# --- claim, decline, release, start -----------------------------------------------------------------

def _full_grant_until(read_request: ReadRequest) -> datetime:
    return max(read_request.deadline, timezone.now()) + GRACE


@transaction.atomic
def offer_claim(*, actor: Actor, offer: Offer, request: HttpRequest | None = None,
                at: datetime | None = None) -> Assignment:
    """The offered radiologist takes the read. Exactly once: the first claim wins, the others get 409."""
    at = at or timezone.now()
    profile = profile_of(actor)
    if profile is None or offer.radiologist_id != profile.pk:
        raise NotFound()
    # Lock order everywhere: the request, then its offers.
    read_request = ReadRequest.objects.select_for_update().select_related("center", "study").get(
        pk=offer.read_request_id)
    offer = Offer.objects.select_for_update().get(pk=offer.pk)
    if read_request.status != Status.OPEN:
        taken = read_request.status in ASSIGNED_STATES
        raise _conflict("This read was already claimed by another radiologist." if taken else
                        f"This read request is {read_request.get_status_display().lower()}: it can no longer be "
                        "claimed.", "taken" if taken else "not_open", status=read_request.status)
    if offer.status != Offer.Status.OPEN:
        raise _conflict(f"This offer is {offer.get_status_display().lower()}.", f"offer_{offer.status}",
                        status=offer.status)
    again = match(read_request, at=at, radiologist_ids=[profile.pk])
    mine = (again.candidates or again.excluded)
    if not mine or not mine[0].eligible:
        reasons = mine[0].reasons if mine else ["not considered for this read"]
        raise ApplicationError(f"You can no longer take this read: {'; '.join(reasons)}.", code="no_longer_eligible",
                               status_code=409, fields={"eligibility": reasons})
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(read_request=read_request, radiologist=profile, offer=offer)
    except IntegrityError:  # the database's own guard (the row lock above makes this unreachable in practice)
        raise _conflict("This read was already claimed by another radiologist.", "taken",
                        status=Status.ASSIGNED) from None
    offer.status, offer.responded_at = Offer.Status.CLAIMED, at
    offer.save(update_fields=["status", "responded_at", "updated_at"])
    read_request_transition(read_request=read_request, to=Status.ASSIGNED, actor=actor, request=request,
                            fields={"assignee": profile, "assigned_at": at})
    grant = study_access_grant_create(actor=None, study=read_request.study, user=profile.user, level="full",
                                      reason=f"Assigned read request {read_request.public_id}",
                                      expires_at=_full_grant_until(read_request), request=request,
                                      hide_reports=read_request.kind == Kind.PEER_REVIEW)
    assignment.grant = grant
    assignment.save(update_fields=["grant", "updated_at"])
    _end_offers(read_request, status=Offer.Status.WITHDRAWN, at=at)
    events.notify(events.center_people(read_request.center), title=f"Read claimed by {profile.name}",
                  body=f"{read_request.get_priority_display()} {'/'.join(read_request.modalities)} "
                       f"{read_request.study.study_description}", url=events.request_url(read_request))
    return assignment


def _end_offers(read_request: ReadRequest, *, status: str, at: datetime,
                also_revoke: list[StudyAccessGrant | None] = ()) -> None:
    """Every still-open offer of the request ends (withdrawn or expired) and its preview grant with it; so do
    the claimant's own preview (the full grant replaces it) and the grants in ``also_revoke``: one UPDATE of
    the offers, one of the grants, their audit records sent together."""
    offers = list(Offer.objects.filter(read_request=read_request, status__in=[Offer.Status.OPEN, Offer.Status.CLAIMED])
                  .select_related("grant__study", "grant__user"))
    still_open = [offer.pk for offer in offers if offer.status == Offer.Status.OPEN]
    study_access_grants_revoke(actor=None, grants=[offer.grant for offer in offers] + list(also_revoke))
    Offer.objects.filter(pk__in=still_open).update(status=status, responded_at=at, updated_at=at)


def end_access(read_request: ReadRequest, *, offer_status: str, assignment_status: str) -> None:
    """A request that ended (cancelled, expired): its offers end, its active assignment ends, grants revoked."""
    at = timezone.now()
    active = list(Assignment.objects.filter(read_request=read_request, status=Assignment.Status.ACTIVE)
                  .select_related("grant__study", "grant__user"))
    _end_offers(read_request, status=offer_status, at=at, also_revoke=[assignment.grant for assignment in active])
    Assignment.objects.filter(pk__in=[assignment.pk for assignment in active]).update(
        status=assignment_status, ended_at=at, updated_at=at)


@transaction.atomic
def offer_decline(*, actor: Actor, offer: Offer, reason: str = "", request: HttpRequest | None = None) -> Offer:
    """The radiologist passes on an offer (with a reason the center may read); the preview ends."""
    profile = profile_of(actor)
    if profile is None or offer.radiologist_id != profile.pk:
        raise NotFound()
    offer = Offer.objects.select_for_update(of=("self",)).select_related("grant__study", "grant__user").get(
        pk=offer.pk)  # the grant is an outer join: PostgreSQL locks only the offer row
    if offer.status != Offer.Status.OPEN:
        raise _conflict(f"This offer is {offer.get_status_display().lower()}.", f"offer_{offer.status}",
                        status=offer.status)
    offer.status, offer.responded_at, offer.decline_reason = Offer.Status.DECLINED, timezone.now(), reason.strip()[:500]
    offer.save(update_fields=["status", "responded_at", "decline_reason", "updated_at"])
    if offer.grant is not None:
        study_access_grant_revoke(actor=None, grant=offer.grant, request=request)
    return offer


def assignment_for(actor: Actor, assignment: Assignment) -> Assignment:
    profile = profile_of(actor)
    if profile is None or assignment.radiologist_id != profile.pk:
        raise NotFound()
    return assignment


@transaction.atomic
def assignment_start(*, actor: Actor, assignment: Assignment, request: HttpRequest | None = None) -> Assignment:
    """The assignee starts reading (assigned → in progress). Starting again changes nothing."""
    assignment = assignment_for(actor, assignment)
    if assignment.status != Assignment.Status.ACTIVE:
        raise _conflict(f"This assignment is {assignment.get_status_display().lower()}.", "not_active")
    read_request = assignment.read_request
    if read_request.status == Status.ASSIGNED:
        read_request_transition(read_request=read_request, to=Status.IN_PROGRESS, actor=actor, request=request)
        assignment.started_at = timezone.now()
        assignment.save(update_fields=["started_at", "updated_at"])
    return assignment


@transaction.atomic
def assignment_release(*, actor: Actor, assignment: Assignment, reason: str,
                       request: HttpRequest | None = None) -> ReadRequest:
    """The assignee gives the read back with a reason: released, then open again for the others."""
    assignment = assignment_for(actor, assignment)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError.for_field("reason", "Say why you give this read back.", code="required")
    if assignment.status != Assignment.Status.ACTIVE:
        raise _conflict(f"This assignment is {assignment.get_status_display().lower()}.", "not_active")
    read_request = read_request_transition(read_request=assignment.read_request, to=Status.RELEASED, actor=actor,
                                           reason=reason, request=request, fields={"assignee": None})
    if assignment.grant is not None:
        study_access_grant_revoke(actor=None, grant=assignment.grant, request=request)
    assignment.status, assignment.ended_at, assignment.release_reason = (
        Assignment.Status.RELEASED, timezone.now(), reason[:500])
    assignment.save(update_fields=["status", "ended_at", "release_reason", "updated_at"])
    # The one who gave it back is not offered it again.
    Offer.objects.filter(read_request=read_request, radiologist=assignment.radiologist).update(
        status=Offer.Status.DECLINED, decline_reason=f"released: {reason}"[:500])
    if read_request.deadline <= timezone.now():
        read_request_transition(read_request=read_request, to=Status.EXPIRED, actor=None,
                                reason="released after its deadline")
        return read_request
    read_request = read_request_transition(read_request=read_request, to=Status.OPEN, actor=None,
                                           reason="reopened after release", fields={"assigned_at": None})
    events.notify(events.center_people(read_request.center), title=f"Read released by {assignment.radiologist.name}",
                  body=reason, url=events.request_url(read_request))
    offers_sync(read_request=read_request)
    return read_request


@transaction.atomic
def read_request_mark_reported(*, read_request: ReadRequest, actor: Actor | None,
                               request: HttpRequest | None = None, at: datetime | None = None) -> ReadRequest:
    """In progress → reported: the reporting app calls this when the report is signed. On time is recorded."""
    at = at or timezone.now()
    read_request = read_request_transition(read_request=read_request, to=Status.REPORTED, actor=actor,
                                           request=request, fields={"reported_at": at})
    Assignment.objects.filter(read_request=read_request, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.COMPLETED, ended_at=at, on_time=at <= read_request.deadline, updated_at=at)
    money.post_reported(read_request)
    return read_request


@transaction.atomic
def read_request_close(*, read_request: ReadRequest, actor: Actor | None,
                       request: HttpRequest | None = None) -> ReadRequest:
    """Reported → closed; the reader's full access ends a grace period after closing."""
    at = timezone.now()
    read_request = read_request_transition(read_request=read_request, to=Status.CLOSED, actor=actor,
                                           request=request, fields={"closed_at": at})
    StudyAccessGrant.objects.filter(
        pk__in=Assignment.objects.filter(read_request=read_request).values("grant_id"),
        revoked_at__isnull=True).update(expires_at=at + GRACE)
    return read_request

