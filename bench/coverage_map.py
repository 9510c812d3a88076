"""Coverage map of one center at 10,000 radiologists with schedules (issue 18's figure: < 500 ms, constant queries).

The world comes from bench/marketplace_matching.py's bulk builder (credentials, weekly hours in a dozen zones,
some time off) plus extra shifts for 5 % of the readers; the map of a Texas center (CT, then MR neuro) is
timed at 1,000 and at 10,000 radiologists, with its query count at each scale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/readroom_bench uv run python bench/coverage_map.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.marketplace_matching import add_radiologists, vacuum_analyze  # noqa: E402 - sets Django up

TARGET_MS = 500


def add_extra_shifts(rng: random.Random, share: float = 0.05) -> None:
    from accounts.models import RadiologistProfile
    from marketplace.coverage_models import ExtraShift

    now = timezone.now()
    rows = []
    for pk in RadiologistProfile.objects.values_list("pk", flat=True):
        if rng.random() < share:
            starts = now + timedelta(hours=rng.randint(0, 150))
            rows.append(ExtraShift(radiologist_id=pk, starts_at=starts, ends_at=starts + timedelta(hours=8)))
    ExtraShift.objects.bulk_create(rows, batch_size=5000)


def measure(actor, center, *, calls: int, **choice) -> tuple[float, float, int]:
    """(median ms, p95 ms, queries) of ``calls`` maps."""
    from marketplace.coverage import coverage_map

    with CaptureQueriesContext(connection) as queries:
        coverage_map(actor=actor, center=center, **choice)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        coverage_map(actor=actor, center=center, **choice)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], len(queries)


def run(*, radiologists: int = 10_000, small: int = 1_000, calls: int = 20, seed: int = 18, out=print) -> dict:
    from accounts import policy
    from accounts.models import Membership, Organization, User

    rng = random.Random(seed)
    today = timezone.now().date()
    center = Organization.objects.create(name="Bench Center", legal_name="Bench Center LLC", slug="bench-coverage",
                                         kind="imaging_center", country="US", region="TX", time_zone="America/Chicago")
    admin = User.objects.create(email="bench-coverage-admin@example.test", full_name="Bench Admin")
    Membership.objects.create(user=admin, organization=center, roles=["admin"])
    actor = policy.actor_for_user(admin)
    figures = {}
    built = 0
    for scale in sorted({small, radiologists}):
        add_radiologists(scale - built, start=built, rng=rng, today=today)
        built = scale
        add_extra_shifts(rng)
        vacuum_analyze()
        figures[scale] = {label: measure(actor, center, calls=calls, **choice) for label, choice in
                          (("CT", {"modality": "CT"}), ("MR neuro", {"modality": "MR", "subspecialty": "neuro"}))}
    out(f"database: {connection.vendor}; coverage map of one center, 7 × 24 hours; target < {TARGET_MS} ms, "
        "constant queries")
    out(f"{'radiologists':>12}  {'map':<9} {'median ms':>9} {'p95 ms':>7} {'queries':>7}")
    for scale, rows in figures.items():
        for label, (median, p95, queries) in rows.items():
            out(f"{scale:>12,}  {label:<9} {median:>9.1f} {p95:>7.1f} {queries:>7}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--radiologists", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    from django.conf import settings
    from django.test.utils import get_runner

    settings.DEBUG = False
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        run(radiologists=args.radiologists, small=min(args.small, args.radiologists), calls=args.calls)
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
