"""Decoding untrusted pixel data without risking the web process (issue 20).

A decoder is third-party C and Python that reads bytes an uploader chose: it can loop forever
(pydicom's ``get_j2k_parameters`` on a JP2 box of length 0), allocate without bound or crash. So every
decode runs in a small pool of separate worker processes, one task at a time each, under a hard
wall-clock limit (the parent waits on a pipe; on overrun the worker is killed with SIGKILL and
replaced) and a memory limit (``RLIMIT_AS`` set inside the worker). The web thread only waits on a
pipe, so the other threads, ``/healthz`` included, keep answering.

The pool is per process, started lazily on first use (after gunicorn has forked its workers), and
started again in a process forked after it existed. Workers are forked from a ``forkserver`` (a clean,
single-threaded parent that preloaded numpy, pydicom and the codecs), so a replacement costs
milliseconds and never inherits a gunicorn thread's locks or database connections.

A task is ``func(*args)`` where ``func`` is a module-level function: it is sent by reference and
imported in the worker. Django is set up in a worker only if a task's module needs it; functions here
and in ``studies.render``'s worker half take file paths and plain values, never model instances or
settings, so what a test overrides in settings is passed explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

from core.errors import ApplicationError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0  # seconds for one task: a 4k x 4k JPEG 2000 frame decodes in about 2
DEFAULT_MEMORY_MB = 3072  # address space of a worker (numpy, codecs and their thread stacks need ~600 MB)
DEFAULT_WORKERS = 2  # per web process: decodes are CPU-bound and the machine has few cores
PRELOAD = ["numpy", "pydicom", "pydicom.pixels", "PIL.Image", "studies.decoding", "studies.render"]


class Undecodable(ApplicationError):
    """The pixel data cannot be decoded here: damaged, hostile, or beyond the time/memory limit (422).

    ``overran`` is true when the decoder had to be stopped (time, memory or crash): the caller remembers
    the instance so that it is answered at once afterwards.
    """

    status_code = 422

    def __init__(self, message: str, *, overran: bool = False, code: str = "undecodable") -> None:
        super().__init__(message, code=code)
        self.overran = overran

    def __reduce__(self):  # crosses the worker's pipe
        return (_rebuild_undecodable, (self.message, self.overran, self.code))


def _rebuild_undecodable(message: str, overran: bool, code: str) -> Undecodable:
    return Undecodable(message, overran=overran, code=code)


class DecoderBusy(ApplicationError):
    """Every decoder of this web process stayed busy for the whole wait: try again shortly (503)."""

    status_code = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, code="decoder_busy")


def _setting(name: str, default: float) -> float:
    """``settings.<name>``, else the environment variable of the same name, else the default."""
    try:
        from django.conf import settings

        value = getattr(settings, name, None)
    except Exception:  # noqa: BLE001 - settings not configured (a plain script): use the environment
        value = None
    if value is None:
        value = os.environ.get(name)
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


def decode_timeout() -> float:
    return _setting("READROOM_DECODE_TIMEOUT", DEFAULT_TIMEOUT)


# --- the worker side -------------------------------------------------------------------------------


def _serve(conn, memory_bytes: int) -> None:
    """A worker's loop: receive a pickled (func, args), run it, send back ("ok", result) or ("error", exc)."""
    if memory_bytes > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            func, args = _load_task(payload)
            reply = ("ok", func(*args))
        except MemoryError:
            reply = ("error", Undecodable("", overran=True, code="memory"))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("error", exc)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)  # noqa: S301 - our own bytes; an exception the parent cannot rebuild goes as text
        except MemoryError:
            data = pickle.dumps(("error", Undecodable("", overran=True, code="memory")))
        except Exception:  # noqa: BLE001
            exc = reply[1]
            data = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {str(exc)[:300]}")))
        conn.send_bytes(data)


def _load_task(payload: bytes):
    try:
        return pickle.loads(payload)  # noqa: S301 - written by our web process on a private pipe
    except Exception as exc:  # noqa: BLE001
        # The task's module imports Django models: set Django up once in this worker and try again.
        from django.core.exceptions import AppRegistryNotReady, ImproperlyConfigured

        if not isinstance(exc, AppRegistryNotReady | ImproperlyConfigured) or not os.environ.get(
            "DJANGO_SETTINGS_MODULE"
        ):
            raise
        import django

        django.setup()
        return pickle.loads(payload)  # noqa: S301 - written by our web process on a private pipe


# --- the web side ----------------------------------------------------------------------------------


class _Worker:
    def __init__(self, context, memory_bytes: int) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(child, memory_bytes), daemon=True, name="readroom-decoder")
        self.process.start()
        child.close()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


class _Pool:
    """At most ``size`` workers; a task takes an idle one (or starts one), a killed one is not returned."""

    def __init__(self, size: int, memory_bytes: int) -> None:
        self.pid = os.getpid()
        self.size = size
        self.memory_bytes = memory_bytes
        self.slots = threading.BoundedSemaphore(size)
        self.idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self.context = _context()
        self.kills = 0

    def _take(self) -> _Worker:
        while True:
            try:
                worker = self.idle.get_nowait()
            except queue.Empty:
                return _Worker(self.context, self.memory_bytes)
            if worker.process.is_alive():
                return worker
            worker.kill()

    def run(self, payload: bytes, *, timeout: float, what: str):
        started = time.monotonic()
        if not self.slots.acquire(timeout=timeout):
            raise DecoderBusy(
                f"Decoding {what or 'the image'}: every decoder stayed busy for {timeout:g} s; try again shortly."
            )
        worker = None
        try:
            worker = self._take()
            worker.conn.send_bytes(payload)
            remaining = max(timeout - (time.monotonic() - started), 0.5)
            if not worker.conn.poll(remaining):
                self._discard(worker)
                worker = None
                raise Undecodable(
                    f"{_subject(what)} could not be decoded: the decoder was stopped after {timeout:g} s "
                    "(the data is damaged or built to make decoders hang).",
                    overran=True,
                    code="timeout",
                )
            try:
                status, value = pickle.loads(worker.conn.recv_bytes())  # noqa: S301 - our own worker
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                self._discard(worker)
                worker = None
                raise Undecodable(
                    f"{_subject(what)} could not be decoded: the decoder crashed ({type(exc).__name__}).",
                    overran=True,
                    code="crashed",
                ) from None
            self.idle.put(worker)  # before the slot is released, so the pool never grows past its size
        except BaseException:
            if worker is not None:  # e.g. the pipe broke while sending: do not reuse this worker
                self._discard(worker)
            raise
        finally:
            self.slots.release()
        if status == "ok":
            return value
        if isinstance(value, Undecodable) and value.code == "memory":
            limit = self.memory_bytes // (1024 * 1024)
            raise Undecodable(
                f"{_subject(what)} could not be decoded: it needs more than the decoder's {limit} MB of memory.",
                overran=True,
                code="memory",
            )
        raise value

    def _discard(self, worker: _Worker) -> None:
        self.kills += 1
        worker.kill()
        logger.warning("decoder process %s killed and dropped", worker.process.pid)

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().kill()
            except queue.Empty:
                return


def _subject(what: str) -> str:
    return (what[:1].upper() + what[1:]) if what else "The pixel data"


def _context():
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def pool() -> _Pool:
    """This process's pool (a process forked after the pool was made gets its own)."""
    global _pool
    current = _pool
    if current is not None and current.pid == os.getpid():
        return current
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool(
                int(_setting("READROOM_DECODE_WORKERS", DEFAULT_WORKERS)),
                int(_setting("READROOM_DECODE_MEMORY_MB", DEFAULT_MEMORY_MB)) * 1024 * 1024,
            )
        return _pool


def run_bounded(func: Callable[..., Any], *args, timeout: float | None = None, what: str = ""):
    """Run module-level picklable ``func(*args)`` in a separate process with a hard time and memory limit;
    return its result; on overrun the process is killed and replaced and Undecodable is raised.

    ``what`` names the subject for messages ("frame 3 of instance 1.2.3"). Exceptions ``func`` raises come
    back as they were (an ``ApplicationError`` keeps its status); a crash of the worker is Undecodable.
    """
    try:
        payload = pickle.dumps((func, args), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TypeError(f"run_bounded needs a module-level function and picklable arguments: {exc}") from exc
    return pool().run(payload, timeout=decode_timeout() if timeout is None else timeout, what=what)


# --- cheap header checks ---------------------------------------------------------------------------

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
J2K_START = b"\xff\x4f\xff\x51"  # SOC then SIZ (ISO/IEC 15444-1 A.3)
MAX_JP2_BOXES = 64


def j2k_header_problem(data: bytes) -> str | None:
    """What is wrong with the start of a JPEG 2000 frame, or None: a raw codestream must begin with SOC and
    SIZ; a JP2 file's boxes must lead to its codestream box (``jp2c``) holding one.

    Decoders (pydicom's ``get_j2k_parameters``) walk the boxes by their length; a length of 0 ("to the end")
    or 1 (a 64-bit length follows) before the codestream box sends that walk round forever, so both are
    refused here, in a loop that cannot run longer than ``MAX_JP2_BOXES`` steps.
    """
    if data.startswith(J2K_START):
        return None if len(data) >= 44 else "the codestream ends inside its SIZ marker segment"
    if not data.startswith(JP2_SIGNATURE[:8]):
        return "it is neither a JPEG 2000 codestream (SOC, SIZ) nor a JP2 file"
    if not data.startswith(JP2_SIGNATURE):
        return "the JP2 signature box is damaged"
    offset = len(JP2_SIGNATURE)
    for _ in range(MAX_JP2_BOXES):
        if offset + 8 > len(data):
            return "the JP2 file ends before its codestream box"
        length = int.from_bytes(data[offset : offset + 4], "big")
        box_type = data[offset + 4 : offset + 8]
        if box_type == b"jp2c":
            if data[offset + 8 : offset + 12] != J2K_START:
                return "the JP2 codestream box does not start with SOC and SIZ"
            return None
        if length in (0, 1):
            return (
                f"the JP2 box {box_type!r} at byte {offset} has length {length} "
                f"({'to the end of the file' if length == 0 else 'a 64-bit length'}) before the codestream"
            )
        if length < 8:
            return f"the JP2 box {box_type!r} at byte {offset} has the impossible length {length}"
        offset += length
    return f"more than {MAX_JP2_BOXES} JP2 boxes before the codestream"
