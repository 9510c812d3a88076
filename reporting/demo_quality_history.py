"""Six months of synthetic quality history for the demo readers (issue 16, item 4), so the charts have data.

Bulk-created, not through the services: reads that never happened must not notify, deliver, bill or be
offered. Each reader reads at one demo center every four days (reported on time or late), two in three of
those reads have a final RADPEER review by a reader of the other group (mostly 1, some 2a, 2b, 3a),
and dr.brennan's significant-discrepancy rate stands out. Every read request's idempotency key is
``demo-history:<n>`` (its review's ``demo-history:<n>:review``): when one exists the history is there and
nothing is written. Then each reader's quality row is recounted (the ranking reads it) and the sampling
cursor moved past these reports (the beat must never review them: they have their reviews already).
"""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts.models import Organization, RadiologistProfile
from marketplace.models import Assignment, Kind, ReadRequest, Status
from marketplace.services.requests import imaging_modalities
from reporting.models import Report
from reporting.quality.peer_review import refresh_reader_quality
from reporting.quality_models import ARBITRATED_SCORES, PeerReview, SamplingCursor
from reporting.services.reports import default_template
from studies.demo import DEMO_STUDIES
from studies.models import Study

KEY = "demo-history:"
DAYS = 182
EVERY_DAYS = 4  # about seven reads a month each
# reader → center whose studies they read (licensed there); their group decides who reviews them.
READERS = {"okafor": "lakeside", "nakamura": "lakeside", "haddad": "lakeside", "brennan": "lakeside",
           "whitfield": "lakeside", "alvarez": "summit", "chen": "summit", "kowalski": "bayview", "mensah": "bayview"}
OUTLIER = "brennan"
# Final scores of every 16 reviews (shuffled): the outlier's 2b and 3a are "significant" four times as often.
SCORES = ["1"] * 14 + ["2a", "2b"]
OUTLIER_SCORES = ["1"] * 10 + ["2a", "2a", "2b", "2b", "3a", "3a"]
ON_TIME_SHARE, OUTLIER_ON_TIME_SHARE = 0.9, 0.7
NOT_READ_BY_EVERYONE = {"MG"}  # MQSA: the history keeps to studies any demo reader may read


def load_history(organizations: dict[str, Organization], readers: dict[str, RadiologistProfile], report, *,
                 profile: str) -> None:
    if ReadRequest.objects.filter(idempotency_key__startswith=KEY).exists():
        report.unchanged += 1
        return
    # Only the demo's own archive (studies.demo's accessions: prefix, yymmdd, index), not the CTs the coverage and
    # RIS demos add, which must stay unread for the overflow rules and the RIS orders to show what they do.
    studies = {slug: [s for s in Study.objects.filter(organization=organizations[slug], deleted_at__isnull=True,
                                                      accession_number__regex=rf"^{DEMO_STUDIES[slug][0]}\d{{9}}$")
                      .order_by("pk") if _readable_by_anyone(s)]
               for slug in set(READERS.values()) if slug in organizations}
    cast = {name: readers[name] for name in READERS if name in readers and studies.get(READERS[name])}
    if len(cast) < 2:
        return
    with transaction.atomic():
        made = _write(cast, organizations, studies, now=timezone.now())
        for reader in cast.values():
            refresh_reader_quality(reader.pk)
        highest = Report.objects.aggregate(top=Max("pk"))["top"] or 0
        cursor, _ = SamplingCursor.objects.select_for_update().get_or_create(pk=1)
        if cursor.last_report_id < highest:
            cursor.last_report_id = highest
            cursor.save(update_fields=["last_report_id", "updated_at"])
    report.created += made
    report.notes.append(f"Quality history: {made} synthetic reads with their reviews over {DAYS // 30} months for "
                        f"{len(cast)} demo readers (dr.{OUTLIER} the outlier; keys {KEY}<n>)")


def _readable_by_anyone(study: Study) -> bool:
    modalities = set(imaging_modalities(study))
    return bool(modalities) and not modalities & NOT_READ_BY_EVERYONE


def _groups(cast: dict[str, RadiologistProfile]) -> dict[str, set[int]]:
    return {name: set(p.user.memberships.filter(is_active=True, organization__kind=Organization.Kind.RADIOLOGY_GROUP)
                      .values_list("organization_id", flat=True)) for name, p in cast.items()}


def _write(cast, organizations, studies, *, now) -> int:
    """Read requests, completed assignments, final reports, then the review requests and final reviews."""
    rng = random.Random(16)  # noqa: S311 - the same history every time it is built, not a secret
    groups = _groups(cast)
    templates: dict[tuple[int, int], object] = {}
    reads, assignments, signed, reviewed = [], [], [], []
    number = 0
    for name, reader in cast.items():
        center = organizations[READERS[name]]
        reviewers = [p for other, p in cast.items() if not groups[other] & groups[name] and other != name]
        scores = iter(_score_stream(rng, name))
        on_time_share = OUTLIER_ON_TIME_SHARE if name == OUTLIER else ON_TIME_SHARE
        for days_ago in range(DAYS, 7, -EVERY_DAYS):
            number += 1
            study = studies[READERS[name]][number % len(studies[READERS[name]])]
            published = now - timedelta(days=days_ago, minutes=rng.randrange(600))
            turnaround = 1440 if rng.random() < on_time_share else 1440 + 60 * rng.randrange(1, 12)
            reported = published + timedelta(minutes=rng.randrange(turnaround // 6, turnaround))
            read = ReadRequest(center=center, study=study, kind=Kind.PRIMARY, status=Status.REPORTED,
                               deadline=published + timedelta(minutes=1440), modalities=imaging_modalities(study),
                               jurisdiction=center.jurisdiction, quoted_cents=3500, tier=1,
                               published_at=published, assignee=reader, assigned_at=published + timedelta(minutes=5),
                               reported_at=reported, idempotency_key=f"{KEY}{number}",
                               reason_for_exam="Synthetic history (demo)")
            reads.append(read)
            assignments.append(Assignment(read_request=read, radiologist=reader, status=Assignment.Status.COMPLETED,
                                          started_at=read.assigned_at, ended_at=reported,
                                          on_time=reported <= read.deadline))
            key = (center.pk, study.pk)
            if key not in templates:
                templates[key] = default_template(read, reader)
            signed.append(_report(read, reader, templates[key]))
            # Two reads in three are reviewed (far above 2.5 %): enough for the monthly agreement, and for at least
            # ten reviews per reader in the statistics pages' default 90 days (the fewest an outlier rests on).
            if reviewers and number % 3:
                reviewed.append((read, signed[-1], rng.choice(reviewers), next(scores)))
    ReadRequest.objects.bulk_create(reads)  # the rows below take the saved requests' keys (bulk_create prepares them)
    Assignment.objects.bulk_create(assignments)
    Report.objects.bulk_create(signed)
    _reviews(reviewed, now)
    ReadRequest.objects.filter(idempotency_key__startswith=KEY).update(created_at=F("published_at"))
    return len(reads)


def _score_stream(rng: random.Random, name: str):
    while True:
        block = list(OUTLIER_SCORES if name == OUTLIER else SCORES)
        rng.shuffle(block)
        yield from block


def _report(read: ReadRequest, reader: RadiologistProfile, template) -> Report:
    sections = {"impression": "No acute abnormality. (Synthetic history: demo.)"}
    return Report(read_request=read, radiologist=reader, template=template, status=Report.Status.FINAL, version=2,
                  sections=sections, fields={}, signed_by=reader.user, signed_at=read.reported_at,
                  signer_name=reader.name, signer_credentials=reader.credentials_line,
                  content_hash=hashlib.sha256(f"{read.idempotency_key}|{sections}".encode()).hexdigest(),
                  template_snapshot={"name": template.name, "sections": template.sections, "fields": template.fields})


def _reviews(reviewed, now) -> None:
    requests, rows = [], []
    for read, original, reviewer, score in reviewed:
        published = read.reported_at + timedelta(days=2)
        final_at = min(published + timedelta(days=3), now - timedelta(days=1))
        request = ReadRequest(center=read.center, study=read.study, kind=Kind.PEER_REVIEW, status=Status.REPORTED,
                              deadline=published + timedelta(days=7), modalities=read.modalities,
                              jurisdiction=read.jurisdiction, quoted_cents=1400, tier=1, published_at=published,
                              original_request=read, original_reader=read.assignee, assignee=reviewer,
                              assigned_at=published, reported_at=final_at,
                              idempotency_key=f"{read.idempotency_key}:review")
        requests.append(request)
        rows.append(PeerReview(original_report=original, read_request=request, programme=read.center,
                               reader=read.assignee, center=read.center, modality=(read.modalities or ["OT"])[0],
                               status=PeerReview.Status.FINAL, score=score, final_score=score,
                               comment="Synthetic history (demo).", scored_at=final_at, final_at=final_at,
                               arbitration_comment="Confirmed (synthetic history)." if score in ARBITRATED_SCORES
                               else ""))
    ReadRequest.objects.bulk_create(requests)
    PeerReview.objects.bulk_create(rows)
