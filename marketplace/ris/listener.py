"""The HL7 v2 MLLP listener: RIS systems send orders, each message is answered with its ACK.

MLLP frames a message as ``0x0B message 0x1C 0x0D`` (the block characters come from ``hl7.mllp``); a
connection may send any number of messages in a row, each answered before the next is read. The
connections are served by one asyncio loop; each message's database work (``hl7_in.handle_message``, sync
ORM) runs in a bounded pool of worker threads, whose connections are checked after every message
(``close_old_connections``: kept under CONN_MAX_AGE, else closed) and closed when the listener stops.

Why not ``hl7.mllp.start_hl7_server`` and its ``readblock``: on a message over the limit it empties its
buffer, so the AR could not name the message's MSH-10, and it decodes every message as one configured
encoding while ours is chosen per message by MSH-18.

Limits, so that no sender can hold the listener:

- ``HL7_MAX_MESSAGE_BYTES`` (1 MiB): the stream reader buffers at most that much (plus one socket read);
  a longer message is answered AR "message too large" from its first bytes, and the connection closes;
- ``HL7_READ_TIMEOUT_SECONDS`` (30): a frame begun must be complete within it, else the connection closes;
  between messages a connection may stay idle ``HL7_IDLE_TIMEOUT_SECONDS`` (600);
- at most ``max_connections`` connections at once (a further one is closed at once) and ``workers`` messages
  processed at once.

One process spends about 3 ms of CPU per new order (8 statements in 4 round trips once the connection knows its
sender, whose interface it keeps for ``INTERFACE_RECHECK_SECONDS``; the rest mostly parsing and the ACK), so it
takes at most ~330 orders/s; with ``shared_port`` several processes listen on one port and the kernel spreads the
connections among them (as the DICOM gateway does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connections
from hl7.mllp.streams import CARRIAGE_RETURN, END_BLOCK, START_BLOCK

from marketplace.ris.hl7_in import handle_message, handle_too_large
from marketplace.ris.interfaces import InterfaceCache

logger = logging.getLogger(__name__)

FRAME_END = END_BLOCK + CARRIAGE_RETURN
HEAD_BYTES = 4096  # what is kept of a message refused as too large
DISCARD_SECONDS = 2.0  # after refusing a too large message, its rest is read and dropped this long (so the
# sender sees the AR instead of a connection reset), then the connection closes whatever remains


class MessageTooLarge(Exception):  # noqa: N818 - a condition of the stream, not a programming error
    def __init__(self, head: bytes) -> None:
        super().__init__("message too large")
        self.head = head


def frame(message: bytes) -> bytes:
    """One message in its MLLP frame."""
    return START_BLOCK + message + FRAME_END


class Hl7Listener:
    """The running MLLP server: ``start()`` in a thread (tests, bench) or ``serve_forever()`` (the command)."""

    def __init__(self, host: str = "0.0.0.0", port: int = 2575, *, max_message_bytes: int | None = None,  # noqa: S104
                 read_timeout: float | None = None, idle_timeout: float | None = None,
                 max_connections: int = 32, workers: int = 8, shared_port: bool = False) -> None:
        self.address = (host, port)
        self.shared_port = shared_port  # other listener processes may listen on the same port (SO_REUSEPORT)
        self.max_message_bytes = max_message_bytes or settings.HL7_MAX_MESSAGE_BYTES
        self.read_timeout = read_timeout or settings.HL7_READ_TIMEOUT_SECONDS
        self.idle_timeout = idle_timeout or settings.HL7_IDLE_TIMEOUT_SECONDS
        self.max_connections = max_connections
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hl7-worker")
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task] = set()
        self._databases: set = set()  # the workers' database connections (one per worker thread)

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.address[1]
        return self._server.sockets[0].getsockname()[1]

    def start(self) -> Hl7Listener:
        """Listen in a background thread; returns once the port is bound."""
        self._thread = threading.Thread(target=self._run, kwargs={"signals": False}, name="hl7-listener",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._failed is not None:
            raise self._failed
        return self

    def serve_forever(self) -> None:
        """Serve until SIGTERM or SIGINT (in the main thread), or ``shutdown()`` from another thread."""
        self._run(signals=threading.current_thread() is threading.main_thread())
        if self._failed is not None:
            raise self._failed

    def shutdown(self) -> None:
        """Stop accepting, close the connections, finish the messages being processed, free the database."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, *, signals: bool) -> None:
        try:
            asyncio.run(self._serve(signals))
        except BaseException as exc:  # noqa: BLE001 - reported to start()/serve_forever()
            self._failed = exc
            self._ready.set()
        finally:
            self._close_worker_connections()

    async def _serve(self, signals: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._stop.set)
        # The reader's limit bounds what one message may hold in memory (the start block is read apart).
        self._server = await asyncio.start_server(self._serve_connection, *self.address,
                                                  limit=self.max_message_bytes + 1,
                                                  reuse_port=self.shared_port or None)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._server.close()
            await self._server.wait_closed()
            # A message being processed finishes in its worker (committed, answered again if resent).
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    def _close_worker_connections(self) -> None:
        """Close the database connections the workers opened (thread-local: each worker's own is recorded by
        ``_handle``), once no worker runs any more."""
        self._executor.shutdown(wait=True)
        for wrapper in list(self._databases):
            wrapper.inc_thread_sharing()  # its thread has ended; closing it from here is safe
            try:
                wrapper.close()
            finally:
                wrapper.dec_thread_sharing()
        self._databases.clear()

    # --- one connection ---------------------------------------------------------------------------
    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer.get_extra_info("peername"))
        if len(self._connections) >= self.max_connections:
            logger.warning("HL7 connection from %s refused: %d connections already open", peer, len(self._connections))
            writer.close()
            return
        task = asyncio.current_task()
        self._connections.add(task)
        loop = asyncio.get_running_loop()
        interfaces = InterfaceCache()  # the sender is looked up again every INTERFACE_RECHECK_SECONDS, not per message
        try:
            while True:
                message = await self._read_message(reader, peer)
                if message is None:
                    break
                ack = await loop.run_in_executor(self._executor, self._handle, handle_message, message, peer,
                                                 interfaces)
                if ack is None:  # our failure: no ACK, so the sender sends the message again
                    break
                writer.write(frame(ack))
                await writer.drain()
        except MessageTooLarge as too_large:
            logger.warning("HL7 message from %s over %d bytes: refused", peer, self.max_message_bytes)
            ack = await loop.run_in_executor(self._executor, self._handle, handle_too_large, too_large.head, peer,
                                             self.max_message_bytes)
            if ack is not None:
                writer.write(frame(ack))
                await writer.drain()
                await self._discard(reader)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _read_message(self, reader: asyncio.StreamReader, peer: str) -> bytes | None:
        """The next message without its frame; None when the connection ends, idles out or stalls mid-frame."""
        try:
            first = await asyncio.wait_for(reader.readexactly(1), self.idle_timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            return None
        try:
            block = first + await asyncio.wait_for(reader.readuntil(FRAME_END), self.read_timeout)
        except TimeoutError:
            logger.warning("HL7 connection from %s closed: frame incomplete after %ss", peer, self.read_timeout)
            return None
        except asyncio.IncompleteReadError:
            logger.warning("HL7 connection from %s closed in the middle of a frame", peer)
            return None
        except asyncio.LimitOverrunError:
            head = first + await reader.read(HEAD_BYTES)
            raise MessageTooLarge(head[head.find(START_BLOCK) + 1:]) from None
        block = block[: -len(FRAME_END)]
        # Bytes before the start block are line noise (MLLP); a block without one is answered as not HL7.
        start = block.find(START_BLOCK)
        return block[start + 1:] if start >= 0 else block

    async def _discard(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DISCARD_SECONDS
        with contextlib.suppress(TimeoutError, ConnectionError):
            while (remaining := deadline - loop.time()) > 0:
                if not await asyncio.wait_for(reader.read(64 * 1024), remaining):
                    break

    def _handle(self, handler, *args) -> bytes | None:
        """Run one message's database work in a worker thread; None (and a log) if it failed."""
        close_old_connections()
        try:
            return handler(*args)
        except Exception:
            logger.exception("HL7 message from %s could not be processed", args[1])
            return None
        finally:
            close_old_connections()
            self._databases.add(connections["default"])


def _peer(address) -> str:
    if not address:
        return ""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
