"""The claim race through the HTTP API: N radiologists claim the same read at once, round after round.

Issue 13's figure: 50 concurrent claimants x 200 rounds on PostgreSQL: exactly one winner every round, no 5xx.

Builds a fresh PostgreSQL database (migrated here), a Texas center with one CT study and ``--claimants``
radiologists of one group (licensed in TX, on shift around the clock, TOTP enrolled as their role
requires, each with a personal API token), then serves ReadRoom with gunicorn and config/gunicorn.py as
deployed (DEBUG off). Each round posts one read request (offered to every claimant), then all claimants,
one thread and one kept-open connection each, wait at a barrier and send
``POST /api/v1/offers/{id}/claim/`` together. Counted per round: 201s (winners), 409s, 5xx, anything
else; afterwards the database must hold exactly one active assignment per request.

    uv run python bench/claim_race.py [--claimants 50] [--rounds 200] [--workers 4]

READROOM_BENCH_DB (readroom_bench_claim), READROOM_BENCH_PG and READROOM_BENCH_PORT (18091) choose the
database, the server and the port. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import _harness

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench_claim")
PORT = int(os.environ.get("READROOM_BENCH_PORT", "18091"))
VAR = tempfile.mkdtemp(prefix="readroom-claim-")
TARGET = "exactly 1 winner per round, 0 5xx"
SERVER_LOG = Path(VAR) / "gunicorn.log"

sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = f"{_harness.PG}/{DB}"
os.environ["READROOM_VAR_DIR"] = VAR
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"


def build(claimants: int):
    """The center, its study and the claimants with TOTP and personal tokens (in this process's ORM)."""
    import pyotp
    from allauth.mfa.totp.internal.auth import TOTP

    from accounts import policy, services
    from accounts.models import Membership, Organization, User
    from tests.marketplace.helpers import ingest_study, make_radiologist

    center = Organization.objects.create(name="Race Imaging", legal_name="Race Imaging LLC", slug="race-imaging",
                                         kind="imaging_center", country="US", region="TX", time_zone="America/Chicago")
    admin = User.objects.create_user("admin@race.example.test", None, kind="professional")
    Membership.objects.create(user=admin, organization=center, roles=["admin"])
    group = Organization.objects.create(name="Race Readers", legal_name="Race Readers PC", slug="race-readers",
                                        kind="radiology_group", country="US", region="TX", time_zone="America/Chicago")
    study = ingest_study(center, modality="CT")
    readers = []
    for i in range(claimants):
        user = User.objects.create_user(f"racer{i}@example.test", None, kind="professional", full_name=f"Racer {i}")
        Membership.objects.create(user=user, organization=group, roles=["radiologist"])
        profile = make_radiologist(user=user, capacity=1000)
        TOTP.activate(user, pyotp.random_base32())
        _, token = services.personal_token_create(actor=policy.actor_for_user(user), name="claim race")
        readers.append((profile, token))
    return policy.actor_for_user(admin), study, readers


def claimant(index: int, token: str, jobs: list, barrier: threading.Barrier, results: list, rounds: int) -> None:
    """One radiologist: a kept-open connection; at each round, wait for everyone, then claim."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Length": "0"}
    for round_no in range(rounds):
        barrier.wait()  # the round's offers are in jobs
        offer_id = jobs[round_no][index]
        barrier.wait()  # everyone has their offer: go
        started = time.perf_counter()
        try:
            conn.request("POST", f"/api/v1/offers/{offer_id}/claim/", headers=headers)
            response = conn.getresponse()
            body = response.read()
            code = response.status
            detail = "" if code in (201, 409) else body[:200].decode(errors="replace")
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            code, detail = 0, repr(error)
        results[round_no][index] = (code, (time.perf_counter() - started) * 1000, detail)
        barrier.wait()  # round done
    conn.close()


def run(*, claimants: int, rounds: int, workers: int, out=print) -> dict:
    from marketplace.models import Assignment, Offer
    from marketplace.services.requests import PostData, read_request_post

    admin, study, readers = build(claimants)
    env = _harness.server_env(db=DB, var_dir=VAR, LOG_LEVEL="ERROR", CELERY_TASK_ALWAYS_EAGER="true")
    web = _harness.serve_gunicorn(env, PORT, workers, SERVER_LOG)  # every 409 is logged there
    try:
        jobs: list = [None] * rounds
        results = [[None] * claimants for _ in range(rounds)]
        barrier = threading.Barrier(claimants + 1)
        threads = [threading.Thread(target=claimant, args=(i, token, jobs, barrier, results, rounds), daemon=True)
                   for i, (_, token) in enumerate(readers)]
        for thread in threads:
            thread.start()
        request_ids, short = [], 0
        started = time.perf_counter()
        for round_no in range(rounds):
            rr, _ = read_request_post(actor=admin, center=study.organization,
                                      data=PostData(study=study, priority="stat" if round_no % 4 == 0 else "routine"))
            request_ids.append(rr.pk)
            offers = dict(Offer.objects.filter(read_request=rr).values_list("radiologist_id", "public_id"))
            short += sum(1 for profile, _ in readers if profile.pk not in offers)
            jobs[round_no] = [str(offers.get(profile.pk, "00000000-0000-0000-0000-000000000000"))
                              for profile, _ in readers]
            barrier.wait()  # offers published
            barrier.wait()  # go
            barrier.wait()  # done
        seconds = time.perf_counter() - started
        for thread in threads:
            thread.join(timeout=60)
    finally:
        web.terminate()
        web.wait(timeout=30)
    per_round = [Counter(code for code, _, _ in row) for row in results]
    winners = [c[201] for c in per_round]
    five = sum(n for c in per_round for code, n in c.items() if code >= 500 or code == 0)
    other = Counter(code for row in results for code, _, _ in row if code not in (201, 409) and code < 500)
    active = Counter(Assignment.objects.filter(read_request_id__in=request_ids).exclude(
        status="released").values_list("read_request_id", flat=True))
    times = sorted(ms for row in results for _, ms, _ in row)
    figures = {"rounds": rounds, "claimants": claimants, "one_winner": sum(1 for w in winners if w == 1),
               "zero": sum(1 for w in winners if w == 0), "many": sum(1 for w in winners if w > 1),
               "conflicts": sum(c[409] for c in per_round), "server_errors": five, "other": dict(other),
               "db_double": sum(1 for n in active.values() if n > 1), "not_offered": short}
    out(f"database: PostgreSQL {DB}; gunicorn config/gunicorn.py, {workers} workers; {claimants} claimants x "
        f"{rounds} rounds in {seconds:.0f} s; load average {os.getloadavg()[0]:.2f}")
    out(f"target: {TARGET}")
    head = f"{'figure':46} {'measured':>12} {'target':>8}"
    out(head)
    out("-" * len(head))
    for name, measured, target in [
        ("rounds with exactly one winner (201)", f"{figures['one_winner']}/{rounds}", f"{rounds}"),
        ("rounds with no winner", figures["zero"], "0"),
        ("rounds with more than one winner", figures["many"], "0"),
        ("409 answers (the losers)", figures["conflicts"], f"{rounds * (claimants - 1)}"),
        ("5xx or broken connections", five, "0"),
        ("other answers", json.dumps(figures["other"]) if other else 0, "0"),
        ("requests with two assignments in the database", figures["db_double"], "0"),
        ("claimants not offered the read (should be 0)", short, "0"),
        ("claim latency p50 / p95 / max (ms)",
         f"{times[len(times) // 2]:.0f}/{times[int(len(times) * 0.95) - 1]:.0f}/{times[-1]:.0f}", "-"),
    ]:
        out(f"{name:46} {measured!s:>12} {target:>8}")
    errors = [line for line in SERVER_LOG.read_text(errors="replace").splitlines()
              if "Error" in line or "Traceback" in line]
    out(f"server log {SERVER_LOG}: {len(errors)} error lines" + (f", first: {errors[0][:200]}" if errors else ""))
    details = {d for row in results for code, _, d in row if d}
    for detail in list(details)[:3]:
        out(f"  e.g. {detail}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claimants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn processes (4 threads each)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    with _harness.migrated_database(DB, keep=args.keep):
        figures = run(claimants=args.claimants, rounds=args.rounds, workers=args.workers)
    sys.exit(0 if figures["one_winner"] == args.rounds and figures["server_errors"] == 0 else 1)


if __name__ == "__main__":
    main()
