"""Matching at scale: ``match()`` over 10,000 synthetic radiologists with 50,000 licenses, in PostgreSQL.

Issue 13's figure: p95 < 50 ms and a constant number of queries (<= 8) whatever the number of radiologists.

The world is built in bulk (bulk_create): radiologists spread over ~50 US states and a few Canadian
provinces (big states weigh more), some licenses expired or pending, malpractice policies, weekly
reading hours in a dozen time zones, some MQSA qualifications, minimum rates, groups, a finished and
active caseload; then a few centers and their studies (real ingest) and one read request per shape.
Each shape is matched ``--calls`` times at ``--small`` radiologists, the world grows to
``--radiologists`` (VACUUM ANALYZE after each load: autovacuum is off on this machine) and each shape
is matched again. The request is read again before each call, as a view or the claim does.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readroom_bench_f uv run python bench/marketplace_matching.py \
        [--radiologists 10000] [--small 1000] [--licenses 5] [--calls 200] [--profile]

Uses a throw-away test database (``test_`` + the database's name), created and dropped here.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if "DJANGO_SETTINGS_MODULE" not in os.environ:  # run as a script (the smoke test imports it with Django set up)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/readroom_bench")
    os.environ.setdefault("READROOM_VAR_DIR", tempfile.mkdtemp(prefix="readroom-bench-"))

import django  # noqa: E402
from django.apps import apps  # noqa: E402

if not apps.ready:
    django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

TARGET = "p95 < 50 ms, <= 8 queries, constant"  # the snapshot warm; cold shown beside it
BIG = {"TX": 3, "CA": 3, "NY": 3, "FL": 3, "IL": 1.5, "PA": 1.5, "OH": 1.5, "GA": 1.5, "NC": 1.5, "MI": 1.5,
       "NJ": 1.5, "VA": 1.5, "WA": 1.5, "AZ": 1.5}
US_STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
             "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC",
             "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY"]
JURISDICTIONS = [("US", s, BIG.get(s, 1.0)) for s in US_STATES] + [
    ("CA", "ON", 1.0), ("CA", "BC", 0.6), ("CA", "QC", 0.5), ("CA", "AB", 0.5)]
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix",
         "America/Anchorage", "Pacific/Honolulu", "America/Toronto", "America/Vancouver", "Europe/London",
         "Asia/Kolkata", "Australia/Sydney"]
ALL_DAY, DAY, EVENING, NIGHT = (clock(0), clock(0)), (clock(8), clock(17)), (clock(16), clock(0)), (clock(22), clock(7))
SCHEDULES = [  # (weight, [(weekday, (starts, ends))])
    (3, [(d, ALL_DAY) for d in range(7)]),
    (5, [(d, DAY) for d in range(5)]),
    (2, [(d, EVENING) for d in range(7)]),
    (2, [(d, NIGHT) for d in range(7)]),
    (1, [(d, ALL_DAY) for d in (5, 6)]),
]
SUBSPECIALTIES = ["neuro", "musculoskeletal", "body", "chest", "breast", "pediatric", "cardiac", "emergency",
                  "general"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def vacuum_analyze() -> None:
    """What autovacuum would do a minute after a bulk load (it is off on this machine)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def add_radiologists(n: int, *, start: int, rng: random.Random, today: date, licenses_each: int = 5,
                     groups=(), jurisdictions=JURISDICTIONS) -> int:
    """``n`` more radiologists (numbered from ``start``) with their credentials, hours and rates, in bulk;
    licenses drawn from ``jurisdictions`` ((country, region, weight) triples)."""
    from accounts.models import (
        License,
        MalpracticeInsurance,
        Membership,
        MqsaQualification,
        RadiologistProfile,
        User,
    )
    from marketplace.models import MinimumRate, ReadingHours, TimeOff

    batch = 5000
    users = User.objects.bulk_create([
        User(email=f"bench-reader-{start + i}@example.test", full_name=f"Reader {start + i:05d}", kind="professional",
             password="!") for i in range(n)], batch_size=batch)
    profiles = []
    for user in users:
        modalities = ["CT", "MR", "CR", "DX", "US"] if rng.random() < 0.8 else ["CT", "CR", "DX"]
        if rng.random() < 0.15:
            modalities.append("MG")
        if rng.random() < 0.1:
            modalities += ["NM", "PT"]
        profiles.append(RadiologistProfile(
            user=user, home_time_zone=rng.choice(ZONES), modalities=modalities,
            subspecialties=rng.sample(SUBSPECIALTIES, rng.randint(1, 3)), max_concurrent_cases=rng.randint(2, 8),
            priorities=["stat", "urgent", "routine"] if rng.random() < 0.8 else ["urgent", "routine"]))
    profiles = RadiologistProfile.objects.bulk_create(profiles, batch_size=batch)
    weights = [w for _, _, w in jurisdictions]
    licenses_each = min(licenses_each, len(jurisdictions))
    licenses, policies, mqsa, hours, off, rates, members = [], [], [], [], [], [], []
    for profile in profiles:
        chosen: set[tuple[str, str]] = set()
        while len(chosen) < licenses_each:
            country, region, _ = rng.choices(jurisdictions, weights)[0]
            chosen.add((country, region))
        for country, region in sorted(chosen):
            roll = rng.random()
            status, expires = "verified", today + timedelta(days=rng.randint(20, 900))
            if roll < 0.04:
                expires = today - timedelta(days=rng.randint(1, 400))  # verified, since lapsed (dates decide)
            elif roll < 0.06:
                status, expires = "expired", today - timedelta(days=rng.randint(1, 400))
            elif roll < 0.12:
                status = "pending"
            elif roll < 0.13:
                status = "rejected"
            licenses.append(License(radiologist=profile, country=country, region=region,
                                    number=f"{region}-{profile.pk}", issued_on=date(2012, 1, 1), expires_on=expires,
                                    status=status))
        countries = sorted({c for c, _ in chosen})
        roll = rng.random()
        policies.append(MalpracticeInsurance(
            radiologist=profile, carrier="Bench Mutual", policy_number=f"BM-{profile.pk}", per_claim_limit=100_000_000,
            aggregate_limit=300_000_000, coverage_jurisdictions=countries, effective_on=date(2020, 1, 1),
            expires_on=today - timedelta(days=30) if roll < 0.03 else today + timedelta(days=rng.randint(30, 700)),
            status="pending" if 0.03 <= roll < 0.05 else "verified"))
        if "MG" in profile.modalities:
            mqsa.append(MqsaQualification(
                radiologist=profile, initial_qualified_on=date(2010, 1, 1),
                exams_last_24_months=1200 if rng.random() < 0.9 else 500, cme_hours_last_36_months=20,
                attested_on=today - timedelta(days=60), expires_on=today + timedelta(days=300), status="verified"))
        _, pattern = rng.choices(SCHEDULES, [w for w, _ in SCHEDULES])[0]
        hours += [ReadingHours(radiologist=profile, weekday=d, starts=s, ends=e) for d, (s, e) in pattern]
        if rng.random() < 0.03:
            now = timezone.now()
            off.append(TimeOff(radiologist=profile, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=3)))
        if rng.random() < 0.2:
            rates += [MinimumRate(radiologist=profile, modality="CT", priority=p, cents=rng.choice([2500, 3500, 4500]))
                      for p in ("routine", "stat")]
        if groups and rng.random() < 0.25:
            members.append(Membership(user=profile.user, organization=rng.choice(groups), roles=["radiologist"]))
    for model, rows in ((License, licenses), (MalpracticeInsurance, policies), (MqsaQualification, mqsa),
                        (ReadingHours, hours), (TimeOff, off), (MinimumRate, rates), (Membership, members)):
        model.objects.bulk_create(rows, batch_size=batch)
    return len(licenses)


def add_caseload(study, profiles: list, *, rng: random.Random, finished: int, active: int) -> None:
    """Finished reads (the on-time record) and active ones (the load), in bulk."""
    from marketplace.models import Assignment, ReadRequest

    now = timezone.now()
    base = dict(center=study.organization, study=study, kind="primary", priority="routine",
                modalities=study.modalities, jurisdiction=study.jurisdiction, quoted_cents=3500)
    requests = ReadRequest.objects.bulk_create(
        [ReadRequest(status="reported", deadline=now - timedelta(days=1), **base) for _ in range(finished)]
        + [ReadRequest(status="assigned", deadline=now + timedelta(hours=20), **base) for _ in range(active)],
        batch_size=5000)
    readers = rng.choices(profiles, k=finished + active)
    Assignment.objects.bulk_create([
        Assignment(read_request=rr, radiologist=reader, status="completed" if i < finished else "active",
                   on_time=(rng.random() < 0.9) if i < finished else None)
        for i, (rr, reader) in enumerate(zip(requests, readers, strict=True))], batch_size=5000)
    for rr, reader in zip(requests, readers, strict=True):
        rr.assignee = reader
    ReadRequest.objects.bulk_update(requests, ["assignee"], batch_size=5000)


def build_shapes(rng: random.Random) -> dict:
    """The centers, their studies and one read request per shape (posted through the service, as drafts)."""
    from accounts import policy
    from accounts.models import Membership, Organization, RadiologistProfile, User
    from marketplace.models import CenterSettings, ReadRequest
    from marketplace.services.requests import PostData, read_request_post
    from tests.marketplace.helpers import ingest_study

    def center(slug, name, country, region, zone):
        org = Organization.objects.create(name=name, legal_name=f"{name} LLC", slug=slug, kind="imaging_center",
                                          country=country, region=region, time_zone=zone)
        admin = User.objects.create_user(f"admin@{slug}.example.test", None, kind="professional")
        Membership.objects.create(user=admin, organization=org, roles=["admin"])
        return org, policy.actor_for_user(admin)

    dallas, dallas_admin = center("bench-dallas", "Bench Dallas Imaging", "US", "TX", "America/Chicago")
    albany, albany_admin = center("bench-albany", "Bench Albany Breast", "US", "NY", "America/New_York")
    toronto, toronto_admin = center("bench-toronto", "Bench Toronto Imaging", "CA", "ON", "America/Toronto")
    texans = list(RadiologistProfile.objects.filter(licenses__region="TX", licenses__status="verified")
                  .order_by("pk")[:20]) or list(RadiologistProfile.objects.order_by("pk")[:20])
    settings_row = CenterSettings.objects.create(center=dallas)
    settings_row.preferred_radiologists.set(texans[:5])
    settings_row.blocked_radiologists.set(texans[5:7])
    ct = ingest_study(dallas, modality="CT", patient=1)
    ct_two = ingest_study(dallas, modality="CT", patient=2)
    mg = ingest_study(albany, modality="MG", patient=3)
    on = ingest_study(toronto, modality="CT", patient=4)
    original = ReadRequest.objects.create(
        center=dallas, study=ct_two, kind="primary", priority="routine", status="reported",
        deadline=timezone.now() - timedelta(hours=2), modalities=ct_two.modalities,
        jurisdiction=ct_two.jurisdiction, quoted_cents=3500, assignee=texans[-1])

    def post(actor, study, **fields):
        return read_request_post(actor=actor, center=study.organization,
                                 data=PostData(study=study, publish=False, **fields))[0]

    return {
        "CT routine, US-TX, marketplace": post(dallas_admin, ct),
        "CT STAT, US-TX, marketplace": post(dallas_admin, ct, priority="stat"),
        "MG screening, US-NY (MQSA)": post(albany_admin, mg),
        "CT, US-TX, direct to one reader": post(dallas_admin, ct, audience="direct",
                                                direct_radiologist=texans[len(texans) // 2]),
        "CT overread, US-TX (conflicts)": post(dallas_admin, ct_two, kind="overread", original_request=original),
        "CT routine, CA-ON": post(toronto_admin, on),
    }


def measure(shapes: dict, *, calls: int, at, eligible_only: bool = True) -> dict:
    """Per shape: query count of one call, then ``calls`` timed calls (the request read again before each).

    ``eligible_only``: the hot path (posting, the clocks, offers); else the "why not" page's full explanation.
    The hot path is measured twice: warm (this process's pool snapshot stands, as between writes to the
    credentials, hours and rates) and cold (the snapshot dropped before each call, as after such a write or in
    a new process: the pool is read again).

    Wall time, and this process's CPU time (Python's share, without PostgreSQL's; steadier on a busy machine).
    Long-lived objects are frozen out of the cyclic collector first, as config/gunicorn.py does in each worker.
    """
    from marketplace.models import ReadRequest
    from marketplace.services import matching_pool
    from marketplace.services.matching import match

    gc.collect()
    gc.freeze()

    def timed(request_pk: int, n: int, cold: bool) -> tuple[int, list[float], list[float], object]:
        def fresh():
            return ReadRequest.objects.select_related("center").get(pk=request_pk)

        request = fresh()
        if cold:
            matching_pool._SNAPSHOTS.clear()
        with CaptureQueriesContext(connection) as ctx:
            result = match(request, at=at, eligible_only=eligible_only)
        times, cpu = [], []
        for _ in range(n):
            request = fresh()
            if cold:
                matching_pool._SNAPSHOTS.clear()
            start, start_cpu = time.perf_counter(), time.process_time()
            match(request, at=at, eligible_only=eligible_only)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        return len(ctx.captured_queries), times, cpu, result

    out = {}
    for name, rr in shapes.items():
        for _ in range(3):  # warm the caches a server process would have warm
            match(ReadRequest.objects.select_related("center").get(pk=rr.pk), at=at, eligible_only=eligible_only)
        queries, times, cpu, result = timed(rr.pk, calls, cold=False)
        out[name] = {"queries": queries, "p50": statistics.median(times), "p95": pct(times, 0.95),
                     "cpu50": statistics.median(cpu),
                     "pool": len(result.candidates) + len(result.excluded), "eligible": len(result.candidates),
                     "reasons": len(result.reasons_seen())}
        if eligible_only:
            queries, times, _, _ = timed(rr.pk, max(calls // 10, 3), cold=True)
            out[name].update(cold_queries=queries, cold50=statistics.median(times), cold95=pct(times, 0.95))
    return out


def profile_one(shapes: dict, at) -> str:
    from marketplace.models import ReadRequest
    from marketplace.services.matching import match

    name = next(iter(shapes))
    rr = ReadRequest.objects.select_related("center").get(pk=shapes[name].pk)
    try:
        from pyinstrument import Profiler
    except ImportError:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        match(rr, at=at, eligible_only=True)
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(25)
        return f"cProfile of one call ({name}):\n{text.getvalue()}"
    profiler = Profiler(interval=0.0005)
    profiler.start()
    match(rr, at=at, eligible_only=True)
    profiler.stop()
    return f"pyinstrument, one call ({name}):\n{profiler.output_text(unicode=False, color=False)}"


def run(*, radiologists: int = 10_000, small: int = 1_000, licenses: int = 5, calls: int = 200, seed: int = 13,
        profile: bool = False, out=print) -> dict:
    """Build, measure at ``small`` then at ``radiologists``, print the table; the figures come back too."""
    from accounts.models import License, Organization, RadiologistProfile

    rng = random.Random(seed)
    today = timezone.now().date()
    groups = [Organization.objects.create(name=f"Bench Readers {i}", legal_name=f"Bench Readers {i} PC",
                                          slug=f"bench-readers-{i}", kind="radiology_group", country="US",
                                          region="TX", time_zone="America/Chicago") for i in range(10)]
    started = time.perf_counter()
    add_radiologists(small, start=0, rng=rng, today=today, licenses_each=licenses, groups=groups)
    shapes = build_shapes(rng)
    profiles = list(RadiologistProfile.objects.order_by("pk"))
    history = shapes["CT routine, US-TX, marketplace"].study
    add_caseload(history, profiles, rng=rng, finished=small // 3, active=small // 20)
    vacuum_analyze()
    at = timezone.now()
    explain = {}  # the "why not" page: every reader in the jurisdiction with reasons (no target of its own)
    figures = {small: measure(shapes, calls=calls, at=at)}
    explain[small] = measure(shapes, calls=max(calls // 4, 1), at=at, eligible_only=False)
    if radiologists > small:
        add_radiologists(radiologists - small, start=small, rng=rng, today=today, licenses_each=licenses,
                         groups=groups)
        profiles = list(RadiologistProfile.objects.order_by("pk"))
        add_caseload(history, profiles[small:], rng=rng, finished=(radiologists - small) // 3,
                     active=(radiologists - small) // 20)
        vacuum_analyze()
        figures[radiologists] = measure(shapes, calls=calls, at=at)
        explain[radiologists] = measure(shapes, calls=max(calls // 4, 1), at=at, eligible_only=False)
    load_seconds = time.perf_counter() - started
    scales = list(figures)
    out(f"database: {connection.vendor}; radiologists: {RadiologistProfile.objects.count():,}; licenses: "
        f"{License.objects.count():,}; {calls} calls per shape; load average {os.getloadavg()[0]:.2f}; "
        f"built and measured in {load_seconds:.0f} s")
    out(f"target: {TARGET} (the hot path: posting, the clocks, offers — eligible readers only)")
    head = (f"{'shape':34} {'rads':>6} {'pool':>5} {'elig':>5} {'why-nots':>8} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'cpu p50':>7} {'queries':>7}")
    cold_head = f"{'cold p50':>8} {'cold p95':>8} {'queries':>7}"
    out(f"{head}   {cold_head}")
    out("-" * (len(head) + 3 + len(cold_head)))

    def row(name: str, scale: int, f: dict) -> str:
        return (f"{name:34} {scale:6,} {f['pool']:5} {f['eligible']:5} {f['reasons']:8} {f['p50']:7.1f} "
                f"{f['p95']:7.1f} {f['cpu50']:7.1f} {f['queries']:7}")

    for name in shapes:
        for scale in scales:
            f = figures[scale][name]
            out(f"{row(name, scale, f)}   {f['cold50']:8.1f} {f['cold95']:8.1f} {f['cold_queries']:7}")
    last = figures[scales[-1]].values()
    worst, worst_cold = max(f["p95"] for f in last), max(f["cold95"] for f in last)
    queries = {f[k] for scale in scales for f in figures[scale].values() for k in ("queries", "cold_queries")}
    constant = all(figures[scales[0]][n][k] == figures[scales[-1]][n][k]
                   for n in shapes for k in ("queries", "cold_queries"))
    met = "met" if worst < 50 else "MISSED"
    verdict = (f"measured: worst p95 {worst:.1f} ms warm at {scales[-1]:,} (target < 50: {met}), "
               f"{worst_cold:.1f} ms cold (the pool read again: after a write to it, or in a new process); "
               f"queries {min(queries)}-{max(queries)} (target <= 8: {'met' if max(queries) <= 8 else 'MISSED'}), "
               f"{'constant' if constant else 'NOT constant'} from {scales[0]:,} to {scales[-1]:,} radiologists")
    out(verdict)
    out("")
    out("the center's why-not page (every reader licensed in the jurisdiction, with reasons; no target):")
    out(head)
    for name in shapes:
        for scale in scales:
            out(row(name, scale, explain[scale][name]))
    out(verdict)
    if profile:
        out(profile_one(shapes, at))
    gc.unfreeze()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--radiologists", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000, help="the first scale measured")
    parser.add_argument("--licenses", type=int, default=5, help="licenses per radiologist")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per shape and scale")
    parser.add_argument("--profile", action="store_true", help="profile one call at the largest scale")
    args = parser.parse_args()
    from django.conf import settings
    from django.test.utils import get_runner

    settings.DEBUG = False
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        run(radiologists=args.radiologists, small=min(args.small, args.radiologists), licenses=args.licenses,
            calls=args.calls, profile=args.profile)
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
