"""Which signed reports are peer reviewed: a share per programme (a center's, a reading group's), stratified by
modality, never predictable by the reader.

Each (programme, modality) counts its reports in blocks of ``10,000 / rate`` (40 at 2.5 %) and picks the
one at a random position in each block: every modality gets its share to within one report however few it
has, while which report is picked stays random. A center samples at 2.5 % unless it says otherwise; a group
samples only once it has set a rate. A run considers each signed report once (``SamplingCursor``): a beat
task, so signing never waits for it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from accounts.models import Membership, Organization
from marketplace.models import Kind
from reporting.models import Report
from reporting.quality_models import (
    DEFAULT_REVIEW_BASIS_POINTS,
    PeerReview,
    QualitySettings,
    SamplingCursor,
    SamplingStratum,
)

BATCH = 500
SAMPLED_KINDS = (Kind.PRIMARY, Kind.SPECIALIST_CONSULT)  # reviews, overreads, second opinions are not sampled
_rng = random.SystemRandom()


def block_size(basis_points: int) -> int:
    """Reports per block at this rate (one is picked in each)."""
    return max(1, round(10_000 / basis_points))


def take(stratum: SamplingStratum, basis_points: int, rng: random.Random) -> bool:
    """Count one more report in the stratum; True when it is the block's pick. Changes ``stratum`` only."""
    size = block_size(basis_points)
    if stratum.block != size or stratum.seen >= stratum.block:  # a new block (or the rate changed)
        stratum.block, stratum.seen, stratum.pick = size, 0, rng.randrange(size)
    picked = stratum.seen == stratum.pick
    stratum.seen += 1
    stratum.total += 1
    stratum.sampled += picked
    return picked


@dataclass(frozen=True)
class Programme:
    organization_id: int
    basis_points: int
    is_group: bool


def programmes_for(center_id: int, group_ids: list[int], rates: dict[int, int]) -> list[Programme]:
    """The center's programme (2.5 % by default), then each of the reader's groups that set a rate."""
    found = [Programme(center_id, rates.get(center_id, DEFAULT_REVIEW_BASIS_POINTS), False)]
    found += [Programme(g, rates[g], True) for g in sorted(group_ids) if g in rates]
    return [p for p in found if p.basis_points > 0]


def _groups_of(user_ids: set[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for user_id, org_id in Membership.objects.filter(
            user_id__in=user_ids, is_active=True,
            organization__kind=Organization.Kind.RADIOLOGY_GROUP).values_list("user_id", "organization_id"):
        groups.setdefault(user_id, []).append(org_id)
    return groups


def sample_signed_reports(*, rng: random.Random | None = None, batch: int = BATCH) -> list[PeerReview]:
    """Consider the reports signed since the last run; post a blind review for each one picked."""
    from reporting.quality.peer_review import peer_review_request  # the review is posted through the marketplace

    rng = rng or _rng
    posted = []
    with transaction.atomic():
        cursor, _ = SamplingCursor.objects.select_for_update().get_or_create(pk=1)
        reports = list(Report.objects.filter(pk__gt=cursor.last_report_id, status=Report.Status.FINAL,
                                             read_request__kind__in=SAMPLED_KINDS)
                       .select_related("read_request", "radiologist").order_by("pk")[:batch])
        if not reports:
            return posted
        rates = dict(QualitySettings.objects.values_list("organization_id", "review_basis_points"))
        groups = _groups_of({r.radiologist.user_id for r in reports})
        strata: dict[tuple[int, str], SamplingStratum] = {}
        for report in reports:
            modality = (report.read_request.modalities or ["OT"])[0]
            picked_by = None
            reader_groups = groups.get(report.radiologist.user_id, [])
            for programme in programmes_for(report.read_request.center_id, reader_groups, rates):
                key = (programme.organization_id, modality)
                if key not in strata:
                    strata[key], _ = SamplingStratum.objects.select_for_update().get_or_create(
                        organization_id=programme.organization_id, modality=modality)
                if take(strata[key], programme.basis_points, rng) and picked_by is None:
                    picked_by = programme  # a report is reviewed once, for the first programme that picked it
            if picked_by is not None:
                review = peer_review_request(report=report, programme_id=picked_by.organization_id,
                                             group_pays=picked_by.is_group, modality=modality)
                if review is not None:
                    posted.append(review)
        for stratum in strata.values():
            stratum.save()
        cursor.last_report_id = reports[-1].pk
        cursor.save(update_fields=["last_report_id", "updated_at"])
    return posted


def reviewed_share(organization_id: int) -> dict[str, tuple[int, int]]:
    """Per modality: (sampled, counted) for a programme (its settings page shows them)."""
    return {s.modality: (s.sampled, s.total)
            for s in SamplingStratum.objects.filter(Q(organization_id=organization_id)).order_by("modality")}
