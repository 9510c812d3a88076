"""A simulated week of the marketplace on a simulated clock: posting, offers, claims, reads and the SLA clocks.

Issue 13's figure: 10,000 requests from 20 centers in several states, 200 radiologists across time zones
with schedules and licenses expiring mid-week. Printed beside the targets: assignments to an ineligible
reader (re-checked with ``accounts.credentials.eligibility.eligible`` at each claim's moment; must be 0),
STAT deadlines met whenever an eligible reader was on shift at posting (target 100 %), the median time to
claim, escalations (half-time, at-risk), expiries and late reads.

Every service gets the simulated moment (``read_request_post(now=)``, ``sla_tick(at=)``,
``offer_claim(at=)``, ``read_request_mark_reported(at=)``). The week starts at a full hour 1-2 hours ahead of the
real clock, so every deadline (and the preview grants that end with it) lies in the real future.
Each tick (``--tick`` simulated minutes) posts the requests that arrived (Poisson arrivals, busier in US
daytime), runs ``sla_tick``, lets simulated readers claim offers (on shift by their own weekly hours,
within capacity, after a random delay) and finish reads (``assignment_start`` then
``read_request_mark_reported``) after a reading time by modality.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readroom_bench_f uv run python bench/marketplace_week.py \
        [--requests 10000] [--radiologists 200] [--centers 20] [--days 7] [--tick 5]

Uses a throw-away test database (``test_`` + the database's name), created and dropped here.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import marketplace_matching as world  # noqa: E402  (sets up Django)
from django.utils import timezone  # noqa: E402

STATES = [("US", "TX", "America/Chicago"), ("US", "NY", "America/New_York"), ("US", "CA", "America/Los_Angeles"),
          ("US", "FL", "America/New_York"), ("US", "IL", "America/Chicago"), ("US", "WA", "America/Los_Angeles"),
          ("CA", "ON", "America/Toronto")]
CENTER_STATES = ["TX"] * 5 + ["NY"] * 3 + ["CA"] * 3 + ["FL"] * 3 + ["IL"] * 2 + ["WA"] * 2 + ["ON"] * 2
MODALITY_MIX = {"CT": 35, "CR": 25, "MR": 20, "US": 12, "MG": 8}
PRIORITY_MIX = {"stat": 10, "urgent": 25, "routine": 65}
CLAIM_DELAY_MINUTES = {"stat": 4, "urgent": 15, "routine": 45}  # mean of an exponential delay once offered
READ_MINUTES = {"CR": (5, 12), "US": (8, 15), "MG": (6, 12), "CT": (12, 25), "MR": (18, 35)}


def pick(rng: random.Random, mix: dict) -> str:
    return rng.choices(list(mix), list(mix.values()))[0]


def arrivals(rng: random.Random, n: int, start, days: float) -> list:
    """``n`` arrival moments over the span, busier from 12:00 to 02:00 UTC (US daytime): thinned Poisson."""
    span = days * 86400
    out = []
    while len(out) < n:
        moment = start + timedelta(seconds=rng.uniform(0, span))
        hour = moment.hour
        if rng.random() < (1.0 if hour >= 12 or hour < 2 else 0.35):
            out.append(moment)
    return sorted(out)


def build(*, radiologists: int, centers: int, rng: random.Random, start, days: float) -> dict:
    """Centers with one study per modality, radiologists licensed in the centers' states, some licenses
    expiring in the middle of the week (the day of the week's midpoint)."""
    from accounts import policy
    from accounts.models import License, Membership, Organization, RadiologistProfile, User
    from tests.marketplace.helpers import ingest_study

    used = CENTER_STATES[:centers] if centers <= len(CENTER_STATES) else CENTER_STATES * (centers // 20 + 1)
    used = used[:centers]
    zones = {region: zone for _, region, zone in STATES}
    countries = {region: country for country, region, _ in STATES}
    out_centers = []
    for i, region in enumerate(used):
        org = Organization.objects.create(name=f"Week Center {i:02d} {region}", legal_name=f"Week Center {i} LLC",
                                          slug=f"week-center-{i}", kind="imaging_center", country=countries[region],
                                          region=region, time_zone=zones[region])
        admin = User.objects.create_user(f"admin@week-center-{i}.example.test", None, kind="professional")
        Membership.objects.create(user=admin, organization=org, roles=["admin"])
        studies = {m: ingest_study(org, modality=m, patient=100 + i) for m in MODALITY_MIX}
        out_centers.append((org, policy.actor_for_user(admin), studies))
    weights = Counter(used)
    jurisdictions = [(countries[r], r, float(w)) for r, w in weights.items()]
    world.add_radiologists(radiologists, start=0, rng=rng, today=start.date(), groups=(),
                           licenses_each=min(4, len(jurisdictions)), jurisdictions=jurisdictions)
    midweek = (start + timedelta(days=days / 2)).date()
    verified = list(License.objects.filter(status="verified", expires_on__gt=midweek).values_list("pk", flat=True))
    expiring = rng.sample(verified, k=max(1, len(verified) // 10)) if verified else []
    License.objects.filter(pk__in=expiring).update(expires_on=midweek)
    profiles = {p.pk: p for p in RadiologistProfile.objects.select_related("user")}
    return {"centers": out_centers, "profiles": profiles, "expiring": len(expiring), "midweek": midweek}


def run(*, requests: int = 10_000, radiologists: int = 200, centers: int = 20, days: float = 7, tick: int = 5,
        seed: int = 7, out=print) -> dict:
    """Simulate, print the table; the figures come back as a dict."""
    from accounts import policy
    from accounts.credentials.eligibility import eligible
    from core.errors import ApplicationError
    from marketplace import schedule
    from marketplace.models import Assignment, Offer, ReadingHours, ReadRequest, TimeOff
    from marketplace.services.clock import sla_tick
    from marketplace.services.offers import assignment_start, offer_claim, read_request_mark_reported
    from marketplace.services.requests import PostData, read_request_post

    rng = random.Random(seed)
    started = time.perf_counter()
    start = (timezone.now() + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    built = build(radiologists=radiologists, centers=centers, rng=rng, start=start, days=days)
    profiles = built["profiles"]
    hours: dict[int, list] = {}
    for rid, weekday, starts, ends in ReadingHours.objects.values_list("radiologist_id", "weekday", "starts", "ends"):
        hours.setdefault(rid, []).append((weekday, starts, ends))
    off: dict[int, list] = {}
    for rid, starts_at, ends_at in TimeOff.objects.values_list("radiologist_id", "starts_at", "ends_at"):
        off.setdefault(rid, []).append((starts_at, ends_at))
    actors = {pk: policy.actor_for_user(p.user) for pk, p in profiles.items()}
    world.vacuum_analyze()
    if world.connection.vendor == "postgresql":
        with world.connection.cursor() as cursor:  # outcomes are measured here, not commit latency
            cursor.execute("SET synchronous_commit = off")
    gc.collect()
    gc.freeze()
    setup_seconds = time.perf_counter() - started

    queue = arrivals(rng, requests, start, days)
    posted_at: dict[int, object] = {}
    first_seen: dict[int, object] = {}  # offer id -> simulated moment the reader first saw it
    claim_due: dict[int, object] = {}
    reading: list = []  # heap of (finish moment, request id, radiologist id)
    claims, refused, ineligible, to_claim = 0, Counter(), 0, {"stat": [], "urgent": [], "routine": []}
    finished_at: dict[int, object] = {}
    post_errors = Counter()
    moment, end, step = start, start + timedelta(days=days), timedelta(minutes=tick)
    sim_started = time.perf_counter()
    while moment <= end + timedelta(days=2) and (moment <= end or reading or ReadRequest.objects.filter(
            status__in=("open", "assigned", "in_progress")).exists()):
        # 1. Arrivals up to this moment.
        while queue and queue[0] <= moment:
            arrived = queue.pop(0)
            org, admin, studies = rng.choice(built["centers"])
            modality = pick(rng, MODALITY_MIX)
            try:
                rr, _ = read_request_post(actor=admin, center=org, now=arrived, data=PostData(
                    study=studies[modality], priority=pick(rng, PRIORITY_MIX)))
                posted_at[rr.pk] = arrived
            except ApplicationError as error:
                post_errors[error.code] += 1
        # 2. The clocks.
        sla_tick(at=moment, limit=100_000)
        # 3. Readers finish what is due.
        while reading and reading[0][0] <= moment:
            done, rr_id, rid = heapq.heappop(reading)
            rr = ReadRequest.objects.get(pk=rr_id)
            if rr.status == "in_progress":
                read_request_mark_reported(read_request=rr, actor=actors[rid], at=done)
                finished_at[rr_id] = done
        # 4. Readers on shift and within capacity claim the offers whose delay has passed.
        load = Counter(Assignment.objects.filter(status="active").values_list("radiologist_id", flat=True))
        open_offers = (Offer.objects.filter(status="open", read_request__status="open")
                       .select_related("read_request").order_by("read_request__deadline"))
        shift: dict[int, bool] = {}
        taken: set[int] = set()  # claimed in this tick: its other offers were just withdrawn
        for offer in open_offers:
            rr, rid = offer.read_request, offer.radiologist_id
            if rr.pk in taken:
                continue
            if offer.pk not in first_seen:
                first_seen[offer.pk] = moment
                mean = CLAIM_DELAY_MINUTES[rr.priority]
                claim_due[offer.pk] = moment + timedelta(minutes=rng.expovariate(1 / mean))
            if claim_due[offer.pk] > moment or load[rid] >= profiles[rid].max_concurrent_cases:
                continue
            if rid not in shift:
                shift[rid] = schedule.availability(hours.get(rid, []), profiles[rid].home_time_zone,
                                                   off.get(rid, []), moment).on_shift
            if not shift[rid]:
                continue
            try:
                assignment = offer_claim(actor=actors[rid], offer=offer, at=moment)
            except ApplicationError as error:
                refused[error.code] += 1
                continue
            claims += 1
            load[rid] += 1
            taken.add(rr.pk)
            rr.refresh_from_db()
            if not eligible(profiles[rid], jurisdiction=rr.jurisdiction, modalities=rr.modalities,
                            subspecialty=rr.subspecialty or None, center=org_of(rr), at=moment):
                ineligible += 1
            to_claim[rr.priority].append((moment - posted_at.get(rr.pk, moment)).total_seconds() / 60)
            assignment_start(actor=actors[rid], assignment=assignment)
            low, high = READ_MINUTES.get(rr.modalities[0], (10, 20))
            minutes = rng.uniform(low, high) * (0.7 if rr.priority == "stat" else 1.0)
            heapq.heappush(reading, (moment + timedelta(minutes=minutes), rr.pk, rid))
        moment += step
    sim_seconds = time.perf_counter() - sim_started
    gc.unfreeze()

    rows = list(ReadRequest.objects.filter(pk__in=posted_at).values(
        "pk", "priority", "status", "deadline", "no_on_shift_reader", "half_time_at", "at_risk_at", "late_at"))
    stat_covered = [r for r in rows if r["priority"] == "stat" and not r["no_on_shift_reader"]]
    stat_met = [r for r in stat_covered if r["pk"] in finished_at and finished_at[r["pk"]] <= r["deadline"]]
    all_met = [r for r in rows if r["pk"] in finished_at and finished_at[r["pk"]] <= r["deadline"]]
    status = Counter(r["status"] for r in rows)
    waits = [w for ws in to_claim.values() for w in ws]
    figures = {
        "requests": len(rows), "claims": claims, "ineligible": ineligible,
        "stat_covered": len(stat_covered), "stat_met": len(stat_met),
        "stat_flagged": sum(1 for r in rows if r["priority"] == "stat" and r["no_on_shift_reader"]),
        "median_claim": statistics.median(waits) if waits else float("nan"),
        "half_time": sum(1 for r in rows if r["half_time_at"]), "at_risk": sum(1 for r in rows if r["at_risk_at"]),
        "expired": status["expired"], "late": sum(1 for r in rows if r["late_at"]), "met": len(all_met),
        "refused": dict(refused), "post_errors": dict(post_errors), "status": dict(status),
        "offers": Offer.objects.count(),
    }
    stat_pct = 100 * len(stat_met) / len(stat_covered) if stat_covered else 100.0
    out(f"database: {world.connection.vendor}; {len(rows):,} requests from {centers} centers over {days:g} simulated "
        f"days (ticks of {tick} min), {radiologists} radiologists, {built['expiring']} licenses expiring "
        f"{built['midweek']}; setup {setup_seconds:.0f} s, simulation {sim_seconds:.0f} s; load average "
        f"{os.getloadavg()[0]:.2f}")
    head = f"{'figure':58} {'measured':>14} {'target':>10}"
    out(head)
    out("-" * len(head))
    table = [
        ("assignments to an ineligible reader (re-checked at claim)", f"{ineligible}", "0"),
        ("STAT met when an eligible reader was on shift at posting",
         f"{stat_pct:.1f} % ({len(stat_met)}/{len(stat_covered)})", "100 %"),
        ("STAT flagged at posting: nobody eligible on shift", f"{figures['stat_flagged']}", "-"),
        ("median time to claim, all (min)", f"{figures['median_claim']:.1f}", "-"),
    ]
    for priority, ws in to_claim.items():
        table.append((f"  median time to claim, {priority} (min)",
                      f"{statistics.median(ws):.1f}" if ws else "-", "-"))
    table += [
        ("deadlines met, all priorities", f"{100 * len(all_met) / max(len(rows), 1):.1f} %", "-"),
        ("escalations at half-time (50 %)", f"{figures['half_time']}", "-"),
        ("escalations at risk (80 %)", f"{figures['at_risk']}", "-"),
        ("expired unclaimed", f"{figures['expired']}", "-"),
        ("late (assigned, past deadline)", f"{figures['late']}", "-"),
        ("claims / offers made", f"{claims:,} / {figures['offers']:,}", "-"),
        ("claims refused by the service (code: count)",
         ", ".join(f"{k}: {v}" for k, v in sorted(refused.items())) or "0", "-"),
    ]
    for name, measured, target in table:
        out(f"{name:58} {measured:>14} {target:>10}")
    if post_errors:
        out(f"posting refused: {dict(post_errors)}")
    out(f"final states: {dict(sorted(status.items()))}")
    return figures


def org_of(read_request):
    return read_request.center


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--radiologists", type=int, default=200)
    parser.add_argument("--centers", type=int, default=20)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--tick", type=int, default=5, help="simulated minutes per tick")
    args = parser.parse_args()
    from django.conf import settings
    from django.test.utils import get_runner

    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"  # hundreds of thousands
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        run(requests=args.requests, radiologists=args.radiologists, centers=args.centers, days=args.days,
            tick=args.tick)
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
