"""Re-encoding a stored instance in another transfer syntax for WADO-RS retrieve (PS3.18 8.7.3.5).

``transcode_file`` is a pure module-level function (bytes in, bytes out) so that the web process can
run it through ``studies.decoding.run_bounded``: any decompression happens in a separate process with
time and memory limits. Only maintained pixel-data plugins are used (pydicom's handlers: pylibjpeg,
openjpeg, pillow, RLE); what no installed codec can produce is known before anything is decoded
(``can_produce``), so the caller answers 406 up front.
"""

from __future__ import annotations

import functools
import io
import tempfile
import threading
import warnings
from collections.abc import Iterator

import pydicom
from pydicom.pixels import get_encoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

# Targets written without any pixel codec (only the data set's encoding changes).
NATIVE_TARGETS = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)
# Compressed targets produced (when their encoder is installed): lossless ones only, never a lossy copy.
LOSSLESS_TARGETS = frozenset({
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",  # JPEG Lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless
})
# Pixel-data elements whose encoding follows the transfer syntax.
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)


class TranscodeError(Exception):
    """The instance cannot be produced in the asked syntax (a codec refused it)."""


def _native(syntax: str) -> bool:
    return syntax in NATIVE_TARGETS or syntax == "1.2.840.10008.1.2.2"


def can_decode(syntax: str) -> bool:
    from studies import render  # imported here as the other studies modules are (this module runs in decoders)

    return _native(syntax) or render.can_decode(syntax)


def can_encode(syntax: str) -> bool:
    if syntax in NATIVE_TARGETS:
        return True
    try:
        return syntax in LOSSLESS_TARGETS and get_encoder(syntax).is_available
    except (NotImplementedError, ValueError):
        return False


def can_produce(stored: str, target: str) -> bool:
    """Whether an instance stored as ``stored`` can be sent as ``target`` with the codecs installed here
    (never lossy compression of an image: only lossless targets are produced)."""
    return stored == target or (can_encode(target) and can_decode(stored))


def transcode_path(path: str, target: str) -> bytes:
    """``transcode_file`` of the file at ``path`` (what ``studies.render.bounded`` hands a decoder process)."""
    with open(path, "rb") as fh:
        return transcode_file(fh.read(), target)


def transcode_file(data: bytes, target: str) -> bytes:
    """The Part-10 file ``data`` re-encoded in ``target`` (pixel data decompressed, and compressed again
    when ``target`` is compressed); the data set is otherwise unchanged."""
    try:
        with warnings.catch_warnings(action="ignore"):
            ds = pydicom.dcmread(io.BytesIO(data))
            stored = str(ds.file_meta.TransferSyntaxUID)
            has_pixels = any(tag in ds for tag in _PIXEL_TAGS)
            if has_pixels and not _native(stored):
                # to explicit VR little endian, photometric interpretation adjusted; the same instance, so the
                # same SOP Instance UID (pydicom makes a new one unless told not to)
                ds.decompress(generate_instance_uid=False)
            if target in NATIVE_TARGETS or not has_pixels:
                ds.file_meta.TransferSyntaxUID = target if target in NATIVE_TARGETS else ExplicitVRLittleEndian
                out = io.BytesIO()
                ds.save_as(out, enforce_file_format=True,
                           implicit_vr=ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian,
                           little_endian=True)
                return out.getvalue()
            ds.compress(target, encoding_plugin="", generate_instance_uid=False)  # lossless: the same instance
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            return out.getvalue()
    except TranscodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any codec failure is this instance's refusal
        raise TranscodeError(f"{exc.__class__.__name__}: {str(exc)[:200]}") from exc


def produced_syntax(stored: str, target: str, has_pixel_data: bool) -> str:
    """The syntax a part will really carry: an instance without pixel data asked for a compressed syntax
    goes out in explicit VR little endian (there is nothing to compress)."""
    if stored == target or target in NATIVE_TARGETS or has_pixel_data:
        return target
    return ExplicitVRLittleEndian


# --- the web side: every instance of a retrieve decided before the response starts ----------------------

class _Spool:
    """Transcoded files of one response, kept in memory up to a limit and on disk beyond it."""

    MEMORY = 32 * 1024 * 1024

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=self.MEMORY)  # noqa: SIM115 - lives with the response
        self.lock = threading.Lock()

    def add(self, data: bytes) -> int:
        with self.lock:
            self.file.seek(0, io.SEEK_END)
            start = self.file.tell()
            self.file.write(data)
        return start

    def chunks(self, start: int, length: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        while length > 0:
            with self.lock:
                self.file.seek(start)
                data = self.file.read(min(chunk_size, length))
            if not data:
                raise OSError("the transcoded copy is shorter than written")
            start += len(data)
            length -= len(data)
            yield data


def retrieve_parts(instances: list, target: str | None) -> list:
    """The multipart parts of a WADO-RS retrieve: files as stored when ``target`` is None or already their
    syntax (streamed from storage), else transcoded now, each in a decoder process
    (``studies.render.bounded``: time and memory limits), so that any failure is a 422 naming the instance
    before the first byte is sent."""
    from studies import render
    from studies.decoding import Undecodable
    from studies.dicomweb.multipart import Part, storage_chunks

    dicom = "application/dicom"
    parts, spool = [], None
    for instance in instances:
        stored = instance.transfer_syntax_uid
        if target is None or stored == target:
            parts.append(Part(content_type=f"{dicom}; transfer-syntax={stored}", length=instance.size,
                              body=functools.partial(storage_chunks, instance.storage_key, length=instance.size)))
            continue
        name = UID(target).name or target
        try:
            data = render.bounded(instance, transcode_path, target, frame=None,
                                  what=f"instance {instance.sop_instance_uid} (to {name})")
        except TranscodeError as exc:
            raise Undecodable(f"Instance {instance.sop_instance_uid} could not be transcoded from "
                              f"{UID(stored).name or stored} to {name}: {exc}") from None
        spool = spool or _Spool()
        start = spool.add(data)
        produced = produced_syntax(stored, target, render.has_pixel_data(instance))
        parts.append(Part(content_type=f"{dicom}; transfer-syntax={produced}", length=len(data),
                          body=functools.partial(spool.chunks, start, len(data))))
    return parts
