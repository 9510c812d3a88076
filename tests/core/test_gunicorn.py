"""The production web server settings (config/gunicorn.py): a real gunicorn keeps client connections open."""

from __future__ import annotations

import http.client
import io
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from accounts.policy import actor_for_user
from accounts.services import personal_token_create
from studies import synthetic
from studies.ingest import Source, Status, ingest_stream
from studies.models import Instance

BASE_DIR = Path(django_settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_with_our_settings_answers_many_requests_on_one_connection(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ENV", "S3_BUCKET"}}
    env.update({"READROOM_VAR_DIR": str(tmp_path), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2",
                "GUNICORN_BIND": f"127.0.0.1:{port}", "CELERY_TASK_ALWAYS_EAGER": "true"})
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(300):  # up when it answers (the first request loads Django)
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        first_socket = connection.sock
        for _ in range(3):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, body
            assert (response.getheader("Connection") or "").lower() != "close"
        assert connection.sock is first_socket  # the same TCP connection carried every request
        connection.close()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Using worker: gthread" in output, output


HOSTILE_J2K = b"\0\0\0\x0cjP  \r\n\x87\n" + b"\0" * 50  # issue 20: a JP2 box of length 0 hangs pydicom


def _start(tmp_path, port: int, **extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ENV", "S3_BUCKET"}}
    env.update({"READROOM_VAR_DIR": str(tmp_path), "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2",
                "GUNICORN_BIND": f"127.0.0.1:{port}", "CELERY_TASK_ALWAYS_EAGER": "true", **extra})
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(300):
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            probe.request("GET", "/healthz")
            probe.getresponse().read()
            probe.close()
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise AssertionError(server.communicate(timeout=30)[0])


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_a_hostile_jpeg_2000_cannot_take_the_site_down(tmp_path, cast):
    """The issue's 748-byte file stored, then nine decoding requests at once against two threads: each is
    answered within seconds with 422, and /healthz answers throughout."""
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(0), accession="ACC9", description="CT",
                               study_date=date(2026, 11, 2))
    ds = synthetic.ct_series(spec, slices=1, size=32)[0]
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([HOSTILE_J2K])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(buffer.getvalue()), filename="j2k.dcm",
                            source=Source.UPLOAD)
    assert outcome.status == Status.STORED, outcome.reason
    _, token = personal_token_create(actor=actor_for_user(cast.center_admin), name="hostile")
    auth = {"Authorization": f"Bearer {token}"}
    base = (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
            f"{ds.SOPInstanceUID}")
    decoded = {"Accept": f"multipart/related; type=application/octet-stream; transfer-syntax={ExplicitVRLittleEndian}"}
    requests = [(f"{base}/thumbnail", {}), (f"{base}/rendered", {}), (f"{base}/frames/1", decoded),
                (f"{base}/frames/1/rendered", {}), (f"/dicomweb/studies/{ds.StudyInstanceUID}/thumbnail", {}),
                (f"{base}/bulkdata/7FE00010", {"Accept": "application/octet-stream"})] * 2
    port = free_port()
    database = connection.settings_dict
    server = _start(tmp_path, port, READROOM_DECODE_TIMEOUT="3",
                    DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
                                 f"{database['NAME']}")
    try:
        with ThreadPoolExecutor(max_workers=len(requests) + 1) as pool:
            answers = [pool.submit(_get, port, path, {**auth, **headers}) for path, headers in requests]
            health = []
            while not all(answer.done() for answer in answers):
                health.append(_get(port, "/healthz", {}))
                time.sleep(0.1)
            results = [answer.result() for answer in answers]
        assert [status for status, _ in results] == [422] * len(requests), results
        assert max(seconds for _, seconds in results) < 10, results
        assert all(status == 200 and seconds < 5 for status, seconds in health), health
        assert _get(port, "/healthz", {})[0] == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output


@pytest.mark.django_db(transaction=True)
def test_a_decode_beyond_the_memory_limit_is_killed_in_its_process_and_the_server_goes_on(tmp_path, cast):
    """The limit is the decoder process's, not the web worker's: with a limit below what a decoder needs, a
    rendering is 422 (and the instance remembered), while the web worker keeps answering."""
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(0), accession="ACC8", description="CT",
                               study_date=date(2026, 11, 2))
    # 3072 x 3072: its arrays (18 MB stored, ~75 MB as floats) need fresh mappings, never free heap left over
    # from the forkserver (with 512 x 512 the decode could fit in inherited heap and pass the limit).
    ds = synthetic.ct_series(spec, slices=1, size=3072)[0]
    outcome = ingest_stream(organization=cast.center, stream=io.BytesIO(synthetic.to_bytes(ds)), filename="ct.dcm",
                            source=Source.UPLOAD)
    assert outcome.status == Status.STORED, outcome.reason
    _, token = personal_token_create(actor=actor_for_user(cast.center_admin), name="memory")
    path = (f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
            f"{ds.SOPInstanceUID}/rendered")
    port = free_port()
    database = connection.settings_dict
    server = _start(tmp_path, port, READROOM_DECODE_MEMORY_MB="64",
                    DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
                                 f"{database['NAME']}")
    try:
        status, seconds = _get(port, path, {"Authorization": f"Bearer {token}"})
        assert status == 422
        assert seconds < 10
        assert _get(port, "/healthz", {})[0] == 200
        assert Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).undecodable_reason
        status, seconds = _get(port, path, {"Authorization": f"Bearer {token}"})  # now answered at once
        assert status == 422
        assert seconds < 1
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "Traceback" not in output, output
