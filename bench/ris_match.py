"""From the last image of a study its RIS order waits for, to the offer a reader can see.

Issue 23's second figure: time from the last image of a matched study to the offer being visible, target
p95 < 1 s. Both arrival orders are timed: the order first (the study's images match it: the studies app's hook
queues ``ris_order_match``), and the images first (the order matches the waiting study).

Builds a fresh PostgreSQL database (migrated here) with one imaging center in US-TX, its registered HL7
interface and ``--readers`` radiologists licensed in Texas (the matching bench's builder: weekly hours in a
dozen zones, about a quarter of them on shift at any hour). Tasks go through Redis to a real Celery worker
(``celery -A config worker``, its own process) as deployed; each study is one CT image stored with
``ingest_files`` (the path upload, STOW-RS and C-STORE take). The clock stops when a committed offer for the
order's read request can be read from another connection.

    uv run python bench/ris_match.py [--studies 40] [--readers 300]

READROOM_BENCH_DB (readroom_bench_ris), READROOM_BENCH_PG and READROOM_BENCH_REDIS
(redis://127.0.0.1:6379/14) choose the database, the server and the broker. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench_ris")
BROKER = os.environ.get("READROOM_BENCH_REDIS", "redis://127.0.0.1:6379/14")
VAR = tempfile.mkdtemp(prefix="readroom-ris-")
TARGET_P95_S = 1.0
LOG = Path(VAR) / "worker.log"

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.update({"DATABASE_URL": f"{_harness.PG}/{DB}", "READROOM_VAR_DIR": VAR, "CELERY_BROKER_URL": BROKER,
                   "CELERY_RESULT_BACKEND": BROKER, "CELERY_TASK_ALWAYS_EAGER": "false",
                   "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", "LOG_LEVEL": "ERROR",
                   "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"})


def start_worker() -> subprocess.Popen:
    log = open(LOG, "w")  # noqa: SIM115 - the worker's for its lifetime
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads",
                               "--concurrency=4", "--loglevel=INFO", "--without-heartbeat", "--without-mingle",
                               "--without-gossip"], cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited: see {LOG}")
        if "ready." in LOG.read_text():
            return worker
        time.sleep(0.1)
    worker.terminate()
    raise SystemExit("the worker did not start")


def build(readers: int):
    import marketplace_matching
    from django.utils import timezone

    from accounts.models import Organization
    from tests.marketplace.ris_helpers import interface_for

    marketplace_matching.add_radiologists(readers, start=0, rng=random.Random(23), today=timezone.now().date(),
                                          licenses_each=2, jurisdictions=[("US", "TX", 1.0)])
    center = Organization.objects.create(name="Bench RIS Imaging", legal_name="Bench RIS Imaging LLC",
                                         slug="bench-ris", kind="imaging_center", country="US", region="TX",
                                         time_zone="America/Chicago")
    interface_for(center)
    return center


def offer_visible(order_pk: int, *, timeout: float = 30.0) -> float:
    """Seconds until an offer of the order's read request is committed (polled every 5 ms), or inf."""
    from marketplace.models import Offer
    from marketplace.ris_models import RisOrder

    read_request = RisOrder.objects.filter(pk=order_pk).values("read_request")
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if Offer.objects.filter(read_request__in=read_request).exists():
            return time.perf_counter()
        time.sleep(0.005)
    return float("inf")


def run(*, studies: int, readers: int, out=print) -> dict:
    from marketplace.ris_models import RisOrder
    from tests.marketplace.ris_helpers import ingest_with_accession, order

    center = build(readers)
    worker = start_worker()
    times: dict[str, list[float]] = {"order first": [], "images first": []}
    try:
        for n in range(studies):
            patient = n % 6  # demo_patient(n): MRN1002nn
            placed = order(center, placer=f"OF{n}", accession=f"OF-{n}", patient_id=f"MRN{100200 + patient}")
            began = time.perf_counter()  # the last (only) image is sent
            ingest_with_accession(center, accession=f"OF-{n}", patient=patient)
            times["order first"].append(offer_visible(placed.pk) - began)

            ingest_with_accession(center, accession=f"IF-{n}", patient=patient)
            began = time.perf_counter()  # the order that the waiting images were missing arrives
            placed = order(center, placer=f"IF{n}", accession=f"IF-{n}", patient_id=f"MRN{100200 + patient}")
            times["images first"].append(offer_visible(placed.pk) - began)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    matched = RisOrder.objects.filter(read_request__isnull=False).count()
    out(f"database: PostgreSQL {DB}; a Celery worker (threads x 4) through Redis; {readers} readers in US-TX; "
        f"{studies} studies each way; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    head = f"{'arrival order':16} {'p50 s':>8} {'p95 s':>8} {'max s':>8} {'target':>12}"
    out(head)
    out("-" * len(head))
    figures = {"matched": matched}
    for name, values in times.items():
        ordered = sorted(values)
        p50, p95 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        figures[name] = {"p50": p50, "p95": p95, "max": ordered[-1]}
        out(f"{name:16} {p50:8.3f} {p95:8.3f} {ordered[-1]:8.3f} {'p95 < ' + str(TARGET_P95_S) + ' s':>12}")
    out(f"orders matched to a read request: {matched} of {2 * studies}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=40, help="studies timed in each arrival order")
    parser.add_argument("--readers", type=int, default=300)
    args = parser.parse_args()
    with _harness.migrated_database(DB):
        run(studies=args.studies, readers=args.readers)


if __name__ == "__main__":
    main()
