"""The marketplace figures' scripts (bench/) still run: each at a tiny scale, printing its table.

Nothing here is timed: the figures themselves are read off the scripts' output by a person.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import dj_database_url
import pytest
from django.db import connection

from tests.conftest import require_or_skip

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))


def test_matching_bench_prints_every_shape_at_both_scales(db):
    import marketplace_matching

    lines: list[str] = []
    figures = marketplace_matching.run(radiologists=60, small=30, calls=2, out=lines.append)
    text = "\n".join(lines)
    assert "target: p95 < 50 ms, <= 8 queries, constant" in text
    assert set(figures) == {30, 60}
    for shape in figures[60]:
        assert sum(1 for line in lines if line.startswith(shape)) == 4  # one row per scale, hot path and why-not page
    assert all(f["queries"] >= 1 for scale in figures.values() for f in scale.values())
    assert "measured: worst p95" in lines[-1]


def test_week_bench_prints_its_figures_beside_the_targets(db):
    import marketplace_week

    lines: list[str] = []
    figures = marketplace_week.run(requests=8, radiologists=10, centers=2, days=0.1, tick=10, out=lines.append)
    text = "\n".join(lines)
    assert figures["requests"] == 8
    assert "assignments to an ineligible reader (re-checked at claim)" in text
    assert "STAT met when an eligible reader was on shift at posting" in text
    assert figures["ineligible"] == 0  # the service re-checks at claim: never an ineligible assignee
    assert "final states:" in lines[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
def test_claim_race_bench_runs_through_gunicorn_and_prints_its_table(db):
    require_or_skip(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    parsed = dj_database_url.parse(os.environ["DATABASE_URL"])
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env = {**os.environ, "READROOM_BENCH_PG": server, "READROOM_BENCH_DB": f"{parsed['NAME']}_claim_smoke",
           "READROOM_BENCH_PORT": str(_free_port())}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, str(BENCH / "claim_race.py"), "--claimants", "3", "--rounds", "2",
                           "--workers", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "rounds with exactly one winner (201)" in done.stdout
    assert "2/2" in done.stdout


@pytest.mark.postgres
def test_overflow_ingest_bench_runs_both_ways_through_gunicorn_and_prints_its_table(db):
    require_or_skip(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    parsed = dj_database_url.parse(os.environ["DATABASE_URL"])
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    env = {**os.environ, "READROOM_BENCH_PG": server, "READROOM_BENCH_DB": f"{parsed['NAME']}_overflow_smoke",
           "READROOM_BENCH_PORT": str(_free_port())}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, str(BENCH / "overflow_ingest.py"), "--clients", "2", "--requests", "2",
                           "--rounds", "1", "--workers", "1"], env=env, capture_output=True, text=True, timeout=300)
    # The exit code says whether the figure met its target: a smoke run on a busy machine may not.
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    rows = {line[:50].strip(): line[50:].split() for line in done.stdout.splitlines()}
    assert rows["added by the rules per instance (ms, medians)"][-2:] == ["<", "2"]
    assert rows["answers other than 200"] == ["0", "0"]
    assert rows["studies posted (the hours rule is for MR)"] == ["0", "0"]
    assert rows["rounds where the rules added < 2 ms"][-1] == "1/1"
    wall, slash, p95, *target = rows["the hook alone per request, wall median / p95"]
    assert slash == "/"
    assert float(wall) <= float(p95)
    assert target == ["<", "2"]
