"""Streaming ``multipart/related`` bodies (RFC 2387) for WADO-RS, read from storage in chunks.

A part's body is produced by a callable that is only called when the writer reaches that part,
so a 2 GB study is read one file and one chunk at a time: nothing but the current chunk is in
memory, and at most one file is open.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024  # what one read from storage (and one write to the client) carries
COALESCE_BELOW = 64 * 1024  # small parts (headers, little frames) are sent together, not one write each


class StorageReadError(Exception):
    """The stored file is shorter than the index says: the stream must stop rather than lie."""


@dataclass(frozen=True)
class Part:
    """One body part: its media type, its length when known, and how to produce its bytes."""

    content_type: str
    body: Callable[[], Iterable[bytes]]
    length: int | None = None
    location: str | None = None


def new_boundary() -> str:
    return f"readroom-{secrets.token_hex(16)}"


def storage_chunks(key: str, *, start: int = 0, length: int | None = None,
                   chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Bytes ``[start, start + length)`` of a stored file (to the end when ``length`` is None), chunk by chunk."""
    with default_storage.open(key, "rb") as fh:
        if start:
            fh.seek(start)
        remaining = length
        while remaining is None or remaining > 0:
            data = fh.read(chunk_size if remaining is None else min(chunk_size, remaining))
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            yield data
    if remaining:
        raise StorageReadError(f"{key}: {remaining} bytes missing at the end of the stored file")


def _part_head(part: Part, boundary: str) -> bytes:
    head = f"--{boundary}\r\nContent-Type: {part.content_type}\r\n"
    if part.length is not None:
        head += f"Content-Length: {part.length}\r\n"
    if part.location:
        head += f"Content-Location: {part.location}\r\n"
    return (head + "\r\n").encode("ascii")


def multipart_length(parts: list[Part], boundary: str) -> int | None:
    """The exact body length when every part's length is known (then no chunked encoding is needed)."""
    if any(part.length is None for part in parts):
        return None
    return sum(len(_part_head(part, boundary)) + part.length + 2 for part in parts) + len(f"--{boundary}--\r\n")


def multipart_stream(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """The body of a multipart/related message, part by part, in chunks of at most ``CHUNK_SIZE``."""
    pending = bytearray()
    for part in parts:
        pending += _part_head(part, boundary)
        for chunk in part.body():
            if len(pending) + len(chunk) <= COALESCE_BELOW:
                pending += chunk
                continue
            if pending:
                yield bytes(pending)
                pending.clear()
            if len(chunk) < COALESCE_BELOW:
                pending += chunk
            else:
                yield chunk
        pending += b"\r\n"
    pending += f"--{boundary}--\r\n".encode("ascii")
    yield bytes(pending)


def _logged(stream: Iterator[bytes], what: str) -> Iterator[bytes]:
    """Log (rather than hide) a failure half-way through a stream: the status line has already gone."""
    try:
        yield from stream
    except StorageReadError:
        logger.exception("streaming %s stopped: the stored data is incomplete", what)
        raise
    except Exception:
        logger.exception("streaming %s stopped half-way", what)
        raise


def multipart_response(parts: Iterable[Part], *, part_type: str, what: str,
                       extra_type_params: str = "") -> StreamingHttpResponse:
    """A streamed ``multipart/related; type=...`` response (never compressed: DICOM does not shrink)."""
    boundary = new_boundary()
    length = multipart_length(parts, boundary) if isinstance(parts, list) else None
    response = StreamingHttpResponse(_logged(multipart_stream(parts, boundary), what),
                                     content_type=f'multipart/related; type="{part_type}"{extra_type_params}; '
                                                  f"boundary={boundary}")
    if length is not None:
        # Known up front from the index: clients read a plain body (faster than chunked) and see progress.
        response["Content-Length"] = str(length)
    response["Cache-Control"] = "private, no-store"
    return response
