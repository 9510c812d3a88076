"""studies.decoding: decodes in killable worker processes under a time and memory limit; JPEG 2000 headers
checked before any decoder sees them.

The functions the workers run are module-level here (sent by reference, imported in the worker); this
module imports nothing that needs Django set up.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image
from pydicom.pixels.utils import get_j2k_parameters

from core.errors import NotFound
from studies import decoding
from studies.decoding import Undecodable, j2k_header_problem, run_bounded

HOSTILE_J2K = b"\0\0\0\x0cjP  \r\n\x87\n" + b"\0" * 50  # issue 20: a JP2 box of length 0


def add(a: int, b: int) -> int:
    return a + b


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


def refuse(message: str) -> None:
    raise NotFound(message)


def crash() -> None:
    import os

    os._exit(3)  # as a codec's segmentation fault would end the process


def test_pydicoms_j2k_parameter_loop_is_stopped_and_the_worker_replaced():
    started = time.monotonic()
    with pytest.raises(Undecodable) as caught:
        run_bounded(get_j2k_parameters, HOSTILE_J2K, timeout=2, what="frame 1 of instance 1.2.3")
    assert time.monotonic() - started < 5
    assert caught.value.overran
    assert caught.value.status_code == 422
    assert caught.value.message.startswith("Frame 1 of instance 1.2.3 could not be decoded: the decoder was stopped")
    kills = decoding.pool().kills
    assert kills >= 1
    # the pool goes on with a fresh worker
    assert run_bounded(add, 2, 3) == 5
    assert decoding.pool().kills == kills


def test_the_caller_thread_waits_without_holding_the_interpreter():
    """While a decode spins in its worker, other threads of the web process run freely (/healthz)."""
    ticks = []

    def hang():
        with pytest.raises(Undecodable):
            run_bounded(get_j2k_parameters, HOSTILE_J2K, timeout=1.5)

    worker = threading.Thread(target=hang)
    worker.start()
    started = time.monotonic()
    while worker.is_alive():
        ticks.append(time.monotonic())
        time.sleep(0.01)
    assert time.monotonic() - started < 4
    assert len(ticks) > 50  # about 100 in 1.5 s: the main thread was never starved


def test_memory_beyond_the_limit_is_undecodable_and_remembered_as_an_overrun(settings):
    settings.READROOM_DECODE_MEMORY_MB = 1024
    decoding._pool = None  # a pool with the new limit
    try:
        assert run_bounded(allocate, 50) == 50 * 1024 * 1024
        with pytest.raises(Undecodable) as caught:
            run_bounded(allocate, 4096, what="instance 9.9")
        assert caught.value.overran
        assert "more than the decoder's 1024 MB" in caught.value.message
        assert run_bounded(add, 1, 1) == 2
    finally:
        decoding.pool().close()
        decoding._pool = None


def test_a_crashed_worker_is_undecodable_and_replaced():
    with pytest.raises(Undecodable) as caught:
        run_bounded(crash, what="instance 7.7")
    assert caught.value.overran
    assert "crashed" in caught.value.message
    assert run_bounded(add, 4, 4) == 8


def test_errors_come_back_as_raised_with_their_status():
    with pytest.raises(NotFound) as caught:
        run_bounded(refuse, "frame 9 is not there")
    assert caught.value.status_code == 404
    assert caught.value.message == "frame 9 is not there"


def test_concurrent_tasks_share_the_pool_and_all_finish():
    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(run_bounded(add, n, n))) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [2 * n for n in range(12)]


def _pillow_j2k(**options) -> bytes:
    out = io.BytesIO()
    Image.new("L", (16, 16), 7).save(out, "JPEG2000", **options)
    return out.getvalue()


def test_j2k_headers_are_checked_cheaply_before_any_decoder():
    assert j2k_header_problem(_pillow_j2k()) is None  # a JP2 file
    assert j2k_header_problem(_pillow_j2k(no_jp2=True)) is None  # a raw codestream
    assert "length 0" in j2k_header_problem(HOSTILE_J2K)
    jp2 = _pillow_j2k()
    assert "length 1" in j2k_header_problem(jp2[:12] + b"\0\0\0\x01ftyp" + jp2[20:])
    assert "impossible length 5" in j2k_header_problem(jp2[:12] + b"\0\0\0\x05ftyp" + jp2[20:])
    assert "ends before its codestream" in j2k_header_problem(jp2[:40])
    assert "neither" in j2k_header_problem(b"\xff\xd8\xff\xe0" + b"\0" * 60)
    assert "SIZ" in j2k_header_problem(b"\xff\x4f\xff\x51\0\x29")
    # Empty boxes are refused past 64 (the signature counts), whatever follows; no timing (a loaded CI machine).
    many_boxes = decoding.JP2_SIGNATURE + b"\0\0\0\x08free" * 65 + b"\xff" * 10
    assert "more than 64 JP2 boxes" in j2k_header_problem(many_boxes)
    assert j2k_header_problem(decoding.JP2_SIGNATURE + b"\0\0\0\x08free" * 63 + b"\xff") != (
        j2k_header_problem(many_boxes))
