"""DICOMweb and C-STORE figures for ReadRoom on PostgreSQL with local-folder storage, beside Orthanc's.

It sets up a throw-away PostgreSQL database and media folder, starts ReadRoom under gunicorn and
the C-STORE gateway, then runs the shared harness (../shared/bench/bench_dicomweb.py) against
them — the same phases and data as the Orthanc baseline in ../shared/bench/orthanc-baseline.md.
It also measures what the harness does not: QIDO-RS with 10,000 studies indexed, and the server's
peak memory during a 1 GB study retrieve. With --with-orthanc it then stops ReadRoom, runs the same
harness phases against a private Orthanc 1.10 (Debian's orthanc + orthanc-dicomweb, started and stopped
by ../shared/bench/orthanc/*.sh) and prints both side by side: same data, same machine, same hour.
With --interleave ROUNDS it then measures both servers in turns: the harness's QIDO and WADO-RS series
phases, then QIDO-RS /studies with --scale-studies (10,000) studies stored in each.

    uv run python bench/dicomweb.py [--workers 4] [--phases ...] [--skip-harness] [--skip-memory]
                                    [--with-orthanc] [--interleave ROUNDS [--only-interleave]]
                                    [--scale-studies N]

Needs: PostgreSQL and (for C-STORE) DCMTK's storescu; Orthanc for --with-orthanc. Data (~1.1 GB) is generated once under
/tmp/bench-dicom by the shared make_dicom.py; nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import _harness

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
WORK = Path(os.environ.get("READROOM_BENCH_DIR", "/tmp/readroom-bench"))
DATA = Path(os.environ.get("READROOM_BENCH_DATA", "/tmp/bench-dicom"))
DB = os.environ.get("READROOM_BENCH_DB", "readroom_bench")
HTTP_PORT = int(os.environ.get("READROOM_BENCH_HTTP_PORT", "18080"))
DIMSE_PORT = int(os.environ.get("READROOM_BENCH_DIMSE_PORT", "11190"))
AE = "READROOM"


def run(cmd, env=None, check=True, **kwargs):
    return subprocess.run(cmd, env=env, check=check, text=True, **kwargs)


def server_env() -> dict:
    # As deployed: DEBUG on would wrap every query in Django's debug cursor (SQL formatted and kept).
    return _harness.server_env(db=DB, var_dir=WORK / "var", LOG_LEVEL="WARNING", TCP_NODELAY="1", DEBUG="0")


def manage(*args, env):
    return run([sys.executable, "manage.py", *args], env=env, cwd=ROOT, capture_output=True)


def setup_database(env) -> str:
    """Fresh database; one center with an API key, an AE title and the harness's calling AE allowed."""
    _harness.fresh_database(DB, capture=False)
    shutil.rmtree(WORK / "var" / "media", ignore_errors=True)  # the files of the dropped database's rows
    manage("migrate", "--noinput", env=env)
    script = f"""
from accounts.models import Organization
from accounts import services
from studies.models import DicomAeTitle, DicomPeer
org = Organization.objects.create(name="Bench Imaging", legal_name="Bench Imaging LLC", slug="bench",
    kind="imaging_center", country="US", region="TX", time_zone="America/Chicago")
ae = DicomAeTitle.objects.create(organization=org, ae_title="{AE}")
DicomPeer.objects.create(called=ae, calling_ae_title="BENCHSCU", host="127.0.0.1")
_, secret = services.api_key_create(actor=None, organization=org, name="bench", roles=["technologist"])
print(secret)
"""
    out = run([sys.executable, "manage.py", "shell", "-c", script], env=env, cwd=ROOT, capture_output=True)
    return out.stdout.strip().splitlines()[-1]


def analyze() -> None:
    """Statistics for the planner, as autovacuum keeps them in production: this machine's PostgreSQL runs with
    autovacuum off (conf.d/90-ci.conf), so a freshly loaded table would be planned as if it were empty (a
    PatientID search then filters every study of the organization instead of using its index)."""
    _harness.psql("VACUUM ANALYZE", database=DB, capture=False)


def start_servers(env, workers: int):
    # As the README advises: one gateway process per core, sharing the port; started first, so that they come
    # up while gunicorn does (nothing waits for them).
    gateways = [subprocess.Popen([sys.executable, "manage.py", "dicom_gateway", "--host", "127.0.0.1",
                                  "--port", str(DIMSE_PORT), "--shared-port"], cwd=ROOT, env=env)
                for _ in range(os.cpu_count() or 1)]
    try:
        web = _harness.serve_gunicorn(env, HTTP_PORT, workers)
    except SystemExit:
        stop_servers(*gateways)
        raise
    return web, gateways


def worker_pids(master: int) -> list[int]:
    out = run(["pgrep", "-P", str(master)], capture_output=True, check=False).stdout.split()
    return [int(p) for p in out]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def index_studies(env, n: int) -> None:
    """Index n more studies (rows only, as a busy archive's index would hold) for the QIDO figure."""
    script = f"""
import random, datetime
from accounts.models import Organization
from studies.models import Study
org = Organization.objects.get(slug="bench")
have = Study.objects.filter(organization=org).count()
rng = random.Random(7)
family = ["Smith","Muller","Garcia","Nguyen","Kowalski","Rossi","Dubois","Jensen","Okafor","Tanaka"]
rows = []
for i in range(have, {n}):
    d = datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randrange(2200))
    rows.append(Study(organization=org, study_instance_uid=f"2.25.{{10**20 + i}}",
        patient_id=f"BENCH{{i % 3000:05d}}", patient_name=f"{{rng.choice(family)}}^P{{i}}",
        accession_number=f"B{{i:07d}}",
        modalities_in_study=rng.choice(["\\\\CT\\\\", "\\\\MR\\\\", "\\\\CR\\\\", "\\\\CT\\\\SR\\\\"]), study_date=d,
        study_description="Indexed study", jurisdiction_country="US", jurisdiction_region="TX",
        number_of_series=1, number_of_instances=100))
Study.objects.bulk_create(rows, batch_size=2000)
print(Study.objects.filter(organization=org).count())
"""
    out = run([sys.executable, "manage.py", "shell", "-c", script], env=env, cwd=ROOT, capture_output=True)
    print(f"studies indexed: {out.stdout.strip().splitlines()[-1]}")  # after the shell's own messages


def memory_during_big_retrieve(env, secret: str, master: int) -> dict:
    """Ingest ~1 GB as ONE study, then retrieve it while sampling worker RSS."""
    import requests

    script = f"""
import io, pathlib, pydicom
from accounts.models import Organization
from studies.ingest import ingest_stream, Source
org = Organization.objects.get(slug="bench")
uid = "2.25.424242424242424242"
n = 0
for path in sorted(pathlib.Path("{DATA}/ct").rglob("*.dcm")):
    ds = pydicom.dcmread(path)
    ds.StudyInstanceUID = uid
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "2.25.9" + str(n).zfill(8)
    buf = io.BytesIO(); ds.save_as(buf, enforce_file_format=True); buf.seek(0)
    ingest_stream(organization=org, stream=buf, filename=path.name, source=Source.IMPORT)
    n += 1
print(uid)
"""
    uid = run([sys.executable, "manage.py", "shell", "-c", script], env=env, cwd=ROOT,
              capture_output=True).stdout.strip().splitlines()[-1]
    workers = worker_pids(master)
    before = {pid: rss_kib(pid) for pid in workers}
    peak = dict(before)
    total = 0
    start = time.perf_counter()
    with requests.get(f"http://127.0.0.1:{HTTP_PORT}/dicomweb/studies/{uid}", stream=True,
                      headers={"Authorization": f"Bearer {secret}",
                               "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}) as response:
        response.raise_for_status()
        for i, chunk in enumerate(response.iter_content(1024 * 1024)):
            total += len(chunk)
            if i % 16 == 0:
                for pid in workers:
                    peak[pid] = max(peak[pid], rss_kib(pid))
    seconds = time.perf_counter() - start
    growth = max(peak[pid] - before[pid] for pid in workers) / 1024
    return {"bytes": total, "seconds": seconds, "mb_per_s": total / seconds / 1e6,
            "rss_before_mib": max(before.values()) / 1024, "rss_peak_mib": max(peak.values()) / 1024,
            "rss_growth_mib": growth}


ORTHANC = SHARED / "orthanc"
ORTHANC_HTTP, ORTHANC_DIMSE = "http://127.0.0.1:28042/dicom-web", "127.0.0.1:24242"


def harness(base_url: str, label: str, args, *, extra: list[str], phases: str | None = None) -> Path:
    """Run the shared harness against one DICOMweb root; its JSON results go to WORK/<label>_harness.json."""
    out = WORK / f"{label}_harness.json"
    cmd = [sys.executable, str(SHARED / "bench_dicomweb.py"), "--base-url", base_url, "--data", str(DATA),
           "--phases", phases or args.phases, "--cstore-env", "TCP_NODELAY=1", "--retrieve-encodings", "default",
           "--label", label, "--json-out", str(out), *extra]
    if args.limit_instances:
        cmd += ["--limit-instances", str(args.limit_instances)]
    # DCMTK's storescu, not the script of the same name that pynetdicom puts in the venv.
    run(cmd, cwd=SHARED, env={**os.environ, "PATH": "/usr/bin:" + os.environ.get("PATH", "")},
        stdout=subprocess.DEVNULL if phases else None)
    print(f"harness JSON: {out}")
    return out


def orthanc_harness(args) -> Path | None:
    """The same phases against a private Orthanc 1.10 with its DICOMweb plugin (Debian's packages), now."""
    if not orthanc_installed():
        return None
    # TCP_NODELAY=1: Orthanc's DCMTK then turns Nagle's algorithm off as our gateway does (else each
    # C-STORE waits ~40 ms for a delayed ACK: ../shared/bench/README.md).
    run(["bash", str(ORTHANC / "start_orthanc.sh")], env={**os.environ, "TCP_NODELAY": "1"})
    try:
        pid = int(Path("/tmp/orthanc-bench.pid").read_text())
        return harness(ORTHANC_HTTP, "orthanc", args, extra=["--dimse", ORTHANC_DIMSE, "--dimse-aec", "ORTHANC",
                                                             "--server-pid", str(pid)])
    finally:
        run(["bash", str(ORTHANC / "stop_orthanc.sh")], check=False)


def orthanc_installed() -> bool:
    if Path("/usr/sbin/Orthanc").exists() or Path("/usr/bin/Orthanc").exists():
        return True
    print("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb): no side-by-side run")
    return False


INTERLEAVED_PHASES = "qido,wado-series"


@contextlib.contextmanager
def both_servers(args, *, secret: str | None = None, keep: bool = False) -> Iterator[str]:
    """ReadRoom (a fresh database unless ``secret`` names the kept one's API key) and a private Orthanc (empty
    unless ``keep``), both up for a measurement in turns; yields ReadRoom's API key. Both are stopped, and
    ReadRoom's stored copies removed, at the end."""
    env = server_env()
    if secret is None:
        secret = setup_database(env)
    web, gateways = start_servers(env, args.workers)
    try:
        run(["bash", str(ORTHANC / "start_orthanc.sh"), *(["--keep"] if keep else [])],
            env={**os.environ, "TCP_NODELAY": "1"})
        yield secret
    finally:
        stop_servers(web, *gateways)
        run(["bash", str(ORTHANC / "stop_orthanc.sh")], check=False)
        shutil.rmtree(WORK / "var" / "media", ignore_errors=True)


def interleaved(args, rounds: int, secret: str | None) -> None:
    """QIDO-RS latency and WADO-RS series throughput of ReadRoom and Orthanc measured in turns, both servers
    up with the same study set.

    The sequential comparison runs Orthanc ten minutes after ReadRoom; on this shared machine the speed of
    the cores moves by up to a factor of two within minutes, which is as much as the differences measured.
    Taking turns, round after round, puts both under the same conditions; each round is the harness's qido
    phase (200 requests per query shape) and its wado-series phase, and the figures are the median over
    the rounds.

    With ``secret`` (after the sequential runs) both servers keep what those runs stored, so that the
    searches run over the harness's amount of data; without it, both start empty."""
    with both_servers(args, secret=secret, keep=not args.only_interleave) as secret:
        targets = {"ReadRoom": (f"http://127.0.0.1:{HTTP_PORT}/dicomweb", ["--token", secret]),
                   "Orthanc": (ORTHANC_HTTP, [])}
        for label, (url, extra) in targets.items():  # the same UIDs in both (no re-UIDing)
            harness(url, f"{label}_interleaved_store", args, phases="stow-study",
                    extra=[*extra, "--no-reuid", "--clients", "4"])
        analyze()
        runs: dict[str, list[dict]] = {label: [] for label in targets}
        retrieves: dict[str, list[float]] = {label: [] for label in targets}
        for turn in range(rounds):
            for label, (url, extra) in targets.items():
                out = harness(url, f"{label}_interleaved_{turn}", args, phases=INTERLEAVED_PHASES,
                              extra=[*extra, "--no-reuid"])
                results = json.loads(out.read_text())["results"]
                runs[label].append({r["name"].replace(" enc=default", ""): r["latency"]
                                    for r in results if r["phase"] == "qido" and r.get("latency")})
                retrieves[label] += [r["MB_per_s"] for r in results if r["phase"] == "wado-series"]

    print(f"\nQIDO-RS taking turns, {rounds} rounds of 200 requests per query shape: median over the rounds of "
          "each round's median / p95 (ms);\n'p95 not worse' counts the rounds where ReadRoom's p95 was at most "
          "Orthanc's")
    print(f"{'query':72} {'ReadRoom':>14} {'Orthanc':>14} {'p95 not worse':>14}")
    for name in runs["ReadRoom"][0]:
        ours = [r[name] for r in runs["ReadRoom"]]
        theirs = [r[name] for r in runs["Orthanc"]]
        not_worse = sum(a["p95_ms"] <= b["p95_ms"] for a, b in zip(ours, theirs, strict=True))

        def cell(values: list[dict]) -> str:
            return (f"{statistics.median(v['median_ms'] for v in values):.1f} / "
                    f"{statistics.median(v['p95_ms'] for v in values):.1f}")
        print(f"{name[:72]:72} {cell(ours):>14} {cell(theirs):>14} {f'{not_worse} of {rounds}':>14}")
        print(f"{'':72} p95 by round: ReadRoom {[round(v['p95_ms'], 1) for v in ours]}, "
              f"Orthanc {[round(v['p95_ms'], 1) for v in theirs]}")
    ours, theirs = retrieves["ReadRoom"], retrieves["Orthanc"]
    share = statistics.median(ours) / statistics.median(theirs)
    at_least = sum(a >= 0.8 * b for a, b in zip(ours, theirs, strict=True))
    print(f"\nWADO-RS series retrieve taking turns: ReadRoom {statistics.median(ours):.0f} MB/s, Orthanc "
          f"{statistics.median(theirs):.0f} MB/s (median over {rounds} rounds): {share:.0%} of Orthanc's; "
          f"at least 80 % in {at_least} of {rounds} rounds")
    print(f"  MB/s by round: ReadRoom {[round(v) for v in ours]}, Orthanc {[round(v) for v in theirs]}")


# --- QIDO-RS /studies with many studies, in both servers ---------------------------------------------
SCALE_SHAPES = {
    "studies?PatientID": "/studies?PatientID=BENCH00042",
    "studies?StudyDate=range&limit=100": "/studies?StudyDate=20230101-20230301&limit=100",
    "studies?PatientName=prefix*&limit=50": "/studies?PatientName=Gar*&limit=50",
    "studies?ModalitiesInStudy=CT&limit=50&includefield": "/studies?ModalitiesInStudy=CT&limit=50"
                                                          "&includefield=StudyDescription",
    "studies?limit=101&offset=0 (OHIF list)": "/studies?limit=101&offset=0&fuzzymatching=false"
                                              "&includefield=00081030%2C00080060",
}


def scale_instances(n: int) -> list[bytes]:
    """n small DICOM instances, one study each, with the attribute mix ``index_studies`` used: 3,000 patients,
    ten family names, dates over six years, CT/MR/CR studies. Deterministic, built in memory."""
    import datetime
    import io
    import random

    import numpy as np
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    rng = random.Random(7)
    family = ["Smith", "Muller", "Garcia", "Nguyen", "Kowalski", "Rossi", "Dubois", "Jensen", "Okafor", "Tanaka"]
    pixels = np.zeros((8, 8), dtype=np.uint16).tobytes()
    out = []
    for i in range(n):
        date = datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randrange(2200))
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.StudyInstanceUID = f"2.25.{10**20 + i}"
        ds.SeriesInstanceUID = f"2.25.{10**20 + i}.1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{10**20 + i}.1.1"
        ds.PatientID, ds.PatientName = f"BENCH{i % 3000:05d}", f"{rng.choice(family)}^P{i}"
        ds.AccessionNumber, ds.StudyDate = f"B{i:07d}", date.strftime("%Y%m%d")
        ds.StudyDescription, ds.Modality = "Indexed study", rng.choice(["CT", "MR", "CR", "CT"])
        ds.SeriesNumber, ds.InstanceNumber = 1, 1
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = pixels
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def stow_all(url: str, headers: dict, instances: list[bytes], per_request: int = 100) -> None:
    """STOW-RS the instances, ``per_request`` per request, from 4 clients."""
    import concurrent.futures

    import requests

    boundary = "readroom-bench-scale"

    def send(chunk: list[bytes]) -> None:
        body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
                        for part in chunk) + b"--" + boundary.encode() + b"--\r\n"
        response = requests.post(url + "/studies", data=body, timeout=300, headers={
            **headers, "Accept": "application/dicom+json",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
        response.raise_for_status()

    chunks = [instances[i:i + per_request] for i in range(0, len(instances), per_request)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(send, chunks))


def scale_latencies(url: str, headers: dict, requests_per_shape: int) -> dict[str, tuple[float, float, int]]:
    """name → (median ms, p95 ms, results in the last answer) of each /studies shape, one client."""
    import requests

    session = requests.Session()
    session.headers.update({**headers, "Accept": "application/dicom+json"})
    out = {}
    for name, path in SCALE_SHAPES.items():
        times = []
        for _ in range(requests_per_shape):
            start = time.perf_counter()
            response = session.get(url + path)
            content = response.content
            times.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
        times.sort()
        out[name] = (statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)],
                     len(json.loads(content)) if content else 0)
    return out


def at_scale(args, rounds: int, n: int) -> None:
    """Issue 3's QIDO-RS figure — /studies queries with ``n`` studies indexed — measured in both servers, in
    turns: both empty at first, then the same ``n`` small studies stored in each by STOW-RS (100 instances
    per request, 4 clients), then ``rounds`` rounds of 100 requests per query shape, one server after the
    other. Prints the median over the rounds of each round's median / p95, and in how many rounds
    ReadRoom's p95 was at most Orthanc's."""
    runs: dict[str, list[dict]] = {"ReadRoom": [], "Orthanc": []}
    with both_servers(args) as secret:
        targets = {"ReadRoom": (f"http://127.0.0.1:{HTTP_PORT}/dicomweb", {"Authorization": f"Bearer {secret}"}),
                   "Orthanc": (ORTHANC_HTTP, {})}
        instances = scale_instances(n)
        for label, (url, headers) in targets.items():
            start = time.perf_counter()
            stow_all(url, headers, instances)
            print(f"{label}: {n:,} studies stored in {time.perf_counter() - start:.0f} s")
        analyze()
        for _ in range(rounds):
            for label, (url, headers) in targets.items():
                runs[label].append(scale_latencies(url, headers, 100))

    print(f"\nQIDO-RS /studies with {n:,} studies in both servers, taking turns, {rounds} rounds of 100 requests "
          "per query:\nmedian over the rounds of each round's median / p95 (ms); results = matches in the answer "
          "(the same in both servers)")
    print(f"{'query':55} {'ReadRoom':>14} {'Orthanc':>14} {'p95 not worse':>14} {'results':>10}")
    for name in SCALE_SHAPES:
        ours = [r[name] for r in runs["ReadRoom"]]
        theirs = [r[name] for r in runs["Orthanc"]]
        not_worse = sum(a[1] <= b[1] for a, b in zip(ours, theirs, strict=True))

        def cell(values: list[tuple]) -> str:
            return f"{statistics.median(v[0] for v in values):.1f} / {statistics.median(v[1] for v in values):.1f}"
        counts = f"{ours[-1][2]}/{theirs[-1][2]}"
        print(f"{name:55} {cell(ours):>14} {cell(theirs):>14} {f'{not_worse} of {rounds}':>14} {counts:>10}")


def figures(path: Path) -> dict[str, str]:
    """name → the figure the harness reports for it (throughput, or median / p95 latency)."""
    out = {}
    for result in json.loads(path.read_text())["results"]:
        latency = result.get("latency") or {}
        if result.get("instances_per_s") and result["phase"] in ("stow-study", "stow-instance", "cstore"):
            out[result["name"]] = f"{result['instances_per_s']:.0f} inst/s"
        elif result["phase"] == "wado-series":
            out[result["name"]] = f"{result['MB_per_s']:.0f} MB/s"
        elif latency:
            out[result["name"]] = f"{latency['median_ms']:.1f} / {latency['p95_ms']:.1f} ms"
    return out


def side_by_side(ours: Path, theirs: Path) -> None:
    mine, orthanc = figures(ours), figures(theirs)
    print(f"\n{'measurement (same harness, same machine, one after the other)':78} {'ReadRoom':>18} {'Orthanc':>18}")
    for name in mine:
        print(f"{name.replace(' enc=default', ''):78} {mine[name]:>18} {orthanc.get(name, '-'):>18}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--phases", default="stow-study,stow-instance,cstore,dwc,qido,wado-series,wado-instance,"
                                            "wado-frames,wado-metadata")
    parser.add_argument("--limit-instances", type=int, default=0)
    parser.add_argument("--skip-harness", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--with-orthanc", action="store_true",
                        help="then run the same harness phases against a private Orthanc, and print both")
    parser.add_argument("--interleave", type=int, default=0, metavar="ROUNDS",
                        help="then measure QIDO-RS latency of ReadRoom and Orthanc in turns, ROUNDS rounds each")
    parser.add_argument("--only-interleave", action="store_true", help="skip everything else")
    parser.add_argument("--scale-studies", type=int, default=10_000, metavar="N",
                        help="with --interleave: then QIDO-RS /studies with N studies stored in both servers, in turns")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    if not (DATA / "manifest.json").exists():
        print("generating benchmark data (once) ...")
        run([sys.executable, str(SHARED / "make_dicom.py"), "--out", str(DATA), "--quiet"])
    secret = None if args.only_interleave else sequential(args)
    if args.interleave and orthanc_installed():
        interleaved(args, args.interleave, secret)
        if args.scale_studies:
            at_scale(args, args.interleave, args.scale_studies)


def sequential(args) -> str:
    """The harness against ReadRoom (and then Orthanc), plus the figures the harness does not measure.
    Returns ReadRoom's API key; with ``--interleave`` both servers' stored data are kept for it."""
    env = server_env()
    secret = setup_database(env)
    web, gateways = start_servers(env, args.workers)
    try:
        ours = None
        if not args.skip_harness:
            ours = harness(f"http://127.0.0.1:{HTTP_PORT}/dicomweb", "readroom", args,
                           extra=["--token", secret, "--dimse", f"127.0.0.1:{DIMSE_PORT}", "--dimse-aec", AE])
        index_studies(env, args.studies)
        analyze()
        print(f"\nQIDO-RS with {args.studies:,} studies indexed (200 requests each)")
        print(f"{'query':55} {'p50 ms':>8} {'p95 ms':>8}")
        for name, (p50, p95, _results) in scale_latencies(f"http://127.0.0.1:{HTTP_PORT}/dicomweb",
                                                          {"Authorization": f"Bearer {secret}"}, 200).items():
            print(f"{name:55} {p50:8.2f} {p95:8.2f}")
        if not args.skip_memory:
            mem = memory_during_big_retrieve(env, secret, web.pid)
            print(f"\n1 GB study retrieve: {mem['bytes'] / 1e9:.2f} GB in {mem['seconds']:.1f} s "
                  f"({mem['mb_per_s']:.0f} MB/s); worker RSS before {mem['rss_before_mib']:.0f} MiB, "
                  f"peak {mem['rss_peak_mib']:.0f} MiB, growth {mem['rss_growth_mib']:.1f} MiB")
            (WORK / "readroom_memory.json").write_text(json.dumps(mem, indent=2))
        if ours is not None and args.with_orthanc:
            stop_servers(web, *gateways)  # Orthanc gets the machine to itself, as ReadRoom had
            theirs = orthanc_harness(args)
            if theirs is not None:
                side_by_side(ours, theirs)
    finally:
        stop_servers(web, *gateways)
        if not args.interleave:
            shutil.rmtree(WORK / "var" / "media", ignore_errors=True)  # several GB of stored copies
    return secret


def stop_servers(*procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
