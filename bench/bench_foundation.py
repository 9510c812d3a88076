"""Foundation figures: audit appends per second, API latency and queries for the hot endpoints.

Usage: uv run python bench/bench_foundation.py [--events 2000] [--requests 300] [--members 50]
Prints a small table. Uses a throw-away test database (created and dropped by Django's test runner).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, get_runner  # noqa: E402


def timed_requests(client, path, n, **headers):
    times = []
    connection.queries_log.clear()  # the log is a bounded deque: a full one hides new queries
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, **headers)
        first_queries = len(ctx.captured_queries)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    for _ in range(n):
        start = time.perf_counter()
        client.get(path, **headers)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], first_queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--members", type=int, default=50)
    args = parser.parse_args()

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        from allauth.mfa.totp.internal.auth import TOTP
        from rest_framework.test import APIClient

        from accounts import policy, services
        from accounts.audit import audit_record, audit_verify_chain
        from accounts.models import Membership, Organization, User

        org = Organization.objects.create(name="Bench Imaging", legal_name="Bench Imaging LLC", slug="bench",
                                          kind="imaging_center", country="US", region="TX",
                                          time_zone="America/Chicago")
        admin = User.objects.create_user("bench-admin@example.test", "bench-password-123", kind="professional")
        Membership.objects.create(user=admin, organization=org, roles=["admin"])
        TOTP.activate(admin, "JBSWY3DPEHPK3PXP")
        for i in range(args.members):
            user = User.objects.create_user(f"member{i}@example.test", None, kind="professional")
            Membership.objects.create(user=user, organization=org, roles=["technologist"])

        start = time.perf_counter()
        for i in range(args.events):
            audit_record(action="bench.event", actor=admin, organization=org, object_id=str(i))
        audit_rate = args.events / (time.perf_counter() - start)
        start = time.perf_counter()
        broken = audit_verify_chain()
        verify_rate = args.events / (time.perf_counter() - start)

        actor = policy.actor_for_user(admin)
        _, token = services.personal_token_create(actor=actor, name="bench")
        client = APIClient()
        header = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        rows = [
            ("GET /api/v1/me/ (bearer token)", *timed_requests(client, "/api/v1/me/", args.requests, **header)),
            (f"GET members list ({args.members + 1} members)",
             *timed_requests(client, f"/api/v1/organizations/{org.public_id}/members/", args.requests, **header)),
        ]
        print(f"database: {connection.vendor}")
        print(f"audit appends: {audit_rate:,.0f} events/s ({args.events} events); chain verify: "
              f"{verify_rate:,.0f} rows/s; broken rows: {len(broken)}")
        print(f"{'request':45} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
        for name, median, p95, queries in rows:
            print(f"{name:45} {median:10.2f} {p95:8.2f} {queries:8d}")
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
