"""Orders per second through the HL7 v2 MLLP listener, and the time each ACK takes.

Issue 23's figure: 4 RIS senders at once, target ≥ 200 orders/s on this machine and ACK p95 < 50 ms.

Builds a fresh PostgreSQL database (migrated here) with one imaging center and its registered HL7 interface,
then runs ``manage.py hl7_listener`` as deployed (its own process, DEBUG off). ``--senders`` threads each
open one MLLP connection and send ``--orders`` new orders (ORM^O01 built by hl7apy, each with its own MSH-10,
placer order number and accession number) one after the other, timing each from the first byte sent to the
whole ACK received. Afterwards every order must be in the database once, with its message and ACK.

    uv run python bench/hl7_orders.py [--senders 4] [--orders 500] [--workers 8] [--processes 1]

READROOM_BENCH_DB (readroom_bench_hl7), READROOM_BENCH_PG and READROOM_BENCH_PORT (18575) choose the
database, the server and the port. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import _harness

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench_hl7")
PORT = int(os.environ.get("READROOM_BENCH_PORT", "18575"))
VAR = tempfile.mkdtemp(prefix="readroom-hl7-")
TARGET_RATE, TARGET_P95_MS = 200, 50
LOG = Path(VAR) / "listener.log"

sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = f"{_harness.PG}/{DB}"
os.environ["READROOM_VAR_DIR"] = VAR
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def listen(workers: int, processes: int) -> list[subprocess.Popen]:
    """``processes`` listeners on the port (``--shared-port`` when more than one), each ready."""
    env = {**os.environ, "DEBUG": "false", "LOG_LEVEL": "ERROR", "CELERY_TASK_ALWAYS_EAGER": "true",
           "PYTHONUNBUFFERED": "1"}
    log = open(LOG, "w")  # noqa: SIM115 - the listeners' for their lifetime
    shared = ["--shared-port"] if processes > 1 else []
    started = []
    for _ in range(processes):
        started.append(subprocess.Popen([sys.executable, "manage.py", "hl7_listener", "--host", "127.0.0.1", "--port",
                                         str(PORT), "--workers", str(workers), *shared], cwd=ROOT, env=env,
                                        stdout=log, stderr=subprocess.STDOUT))
    for _ in range(300):
        if any(process.poll() is not None for process in started):
            raise SystemExit(f"a listener exited: see {LOG}")
        if log_lines() >= processes:  # each prints one line once it is about to listen
            time.sleep(0.5)
            return started
        time.sleep(0.1)
    for process in started:
        process.terminate()
    raise SystemExit("the listeners did not start")


def log_lines() -> int:
    return sum(1 for line in LOG.read_text().splitlines() if line.startswith("HL7 listener on"))


def build() -> None:
    from accounts.models import Organization
    from marketplace.ris_models import Hl7Interface

    center = Organization.objects.create(name="Bench Imaging", legal_name="Bench Imaging LLC", slug="bench-imaging",
                                         kind="imaging_center", country="US", region="TX",
                                         time_zone="America/Chicago")
    Hl7Interface.objects.create(center=center, sending_application="RIS", sending_facility="BENCH_RIS",
                                allowed_hosts=["127.0.0.1"])


def messages(senders: int, orders: int) -> list[list[bytes]]:
    """Each sender's framed messages. hl7apy builds one template (it spends milliseconds per segment); the
    unique values are put in by replacing placeholders that need no escaping."""
    from marketplace.ris.hl7_send import Order, orm_o01
    from marketplace.ris.listener import frame

    template = orm_o01(Order(control_id="CTRLID", placer="PLACER", accession="ACCNO", facility="BENCH_RIS",
                             priority="R", history="Follow-up of a known nodule"))
    return [[frame(template.replace("CTRLID", f"B{s}-{n}").replace("PLACER", f"PL{s}-{n}")
                   .replace("ACCNO", f"A{s}-{n}").encode()) for n in range(orders)] for s in range(senders)]


def sender(batch: list[bytes], results: list, start: threading.Barrier) -> None:
    sock = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start.wait()
    buffer = b""
    for message in batch:
        began = time.perf_counter()
        sock.sendall(message)
        while b"\x1c\r" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            buffer += chunk
        ack, buffer = buffer.split(b"\x1c\r", 1)
        code = ack.split(b"\rMSA|", 1)[1][:2].decode() if b"\rMSA|" in ack else "??"
        results.append((code, (time.perf_counter() - began) * 1000))
    sock.close()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (Linux /proc), to tell a slow listener from a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(*, senders: int, orders: int, workers: int, processes: int = 1, out=print) -> dict:
    from marketplace.ris_models import Hl7Message, RisOrder

    build()
    batches = messages(senders, orders)
    listeners = listen(workers, processes)
    try:
        results: list[list] = [[] for _ in range(senders)]
        start = threading.Barrier(senders + 1)
        threads = [threading.Thread(target=sender, args=(batch, results[i], start), daemon=True)
                   for i, batch in enumerate(batches)]
        for thread in threads:
            thread.start()
        cpu_before = sum(process_cpu_seconds(p.pid) for p in listeners)  # start-up is not the orders'
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join(timeout=600)
        seconds = time.perf_counter() - began
        cpu = sum(process_cpu_seconds(p.pid) for p in listeners) - cpu_before
    finally:
        for process in listeners:
            process.terminate()
        for process in listeners:
            process.wait(timeout=60)
    answers = [item for batch in results for item in batch]
    codes = Counter(code for code, _ in answers)
    times = sorted(ms for _, ms in answers)

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(p * len(times)))] if times else float("nan")

    figures = {"sent": senders * orders, "answered": len(answers), "accepted": codes["AA"],
               "rate": codes["AA"] / seconds if seconds else 0.0, "p50": pct(0.50), "p95": pct(0.95),
               "max": times[-1] if times else float("nan"), "orders": RisOrder.objects.count(),
               "messages": Hl7Message.objects.filter(ack_code="AA").count()}
    out(f"database: PostgreSQL {DB}; manage.py hl7_listener x {processes}, {workers} workers each; {senders} "
        f"senders x {orders} "
        f"orders in {seconds:.1f} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    head = f"{'figure':44} {'measured':>12} {'target':>10}"
    out(head)
    out("-" * len(head))
    for name, measured, target in [
        ("orders accepted (AA) / sent", f"{codes['AA']}/{figures['sent']}", f"{figures['sent']}"),
        ("other answers", dict(codes - Counter({"AA": codes["AA"]})) or 0, "0"),
        ("orders per second (accepted)", f"{figures['rate']:.0f}", f">= {TARGET_RATE}"),
        ("ACK p50 / p95 (ms)", f"{figures['p50']:.1f} / {figures['p95']:.1f}", f"p95 < {TARGET_P95_MS}"),
        ("ACK max (ms)", f"{figures['max']:.1f}", ""),
        ("listeners' CPU per order (ms)", f"{cpu * 1000 / max(1, len(answers)):.1f}", ""),
        ("orders in the database", figures["orders"], f"{figures['sent']}"),
        ("messages kept with an AA", figures["messages"], f"{figures['sent']}"),
    ]:
        out(f"{name:44} {measured!s:>12} {target:>10}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--orders", type=int, default=500, help="orders per sender")
    parser.add_argument("--workers", type=int, default=8, help="the listener's worker threads")
    parser.add_argument("--processes", type=int, default=1,
                        help="listener processes sharing the port (--shared-port), e.g. one per core")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    figures = {}
    with _harness.migrated_database(DB, keep=args.keep):
        figures = run(senders=args.senders, orders=args.orders, workers=args.workers, processes=args.processes)
    ok = (figures.get("accepted") == args.senders * args.orders and figures.get("rate", 0) >= TARGET_RATE
          and figures.get("p95", 1e9) < TARGET_P95_MS)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
