"""Pixel data of stored instances: frames as stored, decoded frames, rendered images and thumbnails.

Frames of native (uncompressed) transfer syntaxes are byte ranges of the stored file, located by
``Instance.pixel_data_offset``; encapsulated frames are cut out of the stored fragments with
``pydicom.encaps``; nothing re-encodes what was received. Rendering decodes one frame with pydicom
(+ pylibjpeg for JPEG, JPEG-LS and JPEG 2000), applies the modality LUT (rescale slope/intercept),
the default window (the header's first Window Center/Width, else the VOI LUT, else min/max) and
MONOCHROME1 inversion, and encodes JPEG or PNG with Pillow. Thumbnails are cached in storage
beside the file, under a key the server builds from the stored file's key and hash.

Every decode (and every full parse of a deflated data set) runs in a decoder process under a time and
memory limit (``studies.decoding``): the ``*_file`` functions below are that worker half; they take a
local file path and plain values. The web half checks what it cheaply can first (frame present, JPEG
2000 header sane), remembers an instance whose decoder had to be stopped
(``Instance.undecodable_reason``) and answers it at once afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from PIL import Image
from pydicom.encaps import get_frame
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder, pixel_array

from core.errors import ApplicationError, NotFound
from studies import decoding
from studies.decoding import Undecodable
from studies.dicom import PARSE_ERRORS

if TYPE_CHECKING:  # imported lazily: decoder workers load this module without setting Django up
    from studies.models import Instance

logger = logging.getLogger(__name__)

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE_LE = frozenset({IMPLICIT_LE, EXPLICIT_LE})
NATIVE = NATIVE_LE | {EXPLICIT_BE}
READ_CHUNK = 1024 * 1024
THUMBNAIL_SIZE = (128, 128)
MAX_VIEWPORT = 4096
JPEG_QUALITY = 90


class NotRenderable(ApplicationError):
    """The stored pixel data cannot be decoded here (unsupported compression or damaged data)."""

    status_code = 422

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_renderable")


@dataclass(frozen=True)
class ImageFormat:
    name: str
    content_type: str
    extension: str


JPEG = ImageFormat("JPEG", "image/jpeg", "jpg")
PNG = ImageFormat("PNG", "image/png", "png")


# --- header facts ---------------------------------------------------------------------------------

def header_value(instance: Instance, tag_hex: str, default=None):
    """The first value of a top-level attribute from the stored DICOM JSON (no file read)."""
    element = _header(instance).get(tag_hex) or {}
    values = element.get("Value") or []
    return values[0] if values else default


def _header(instance: Instance) -> dict:
    cached = getattr(instance, "_parsed_dicom_json", None)
    if cached is None:
        cached = json.loads(instance.dicom_json or "{}")
        instance._parsed_dicom_json = cached
    return cached


def has_pixel_data(instance: Instance) -> bool:
    return instance.pixel_data_offset is not None and bool(instance.rows) and bool(instance.columns)


def can_decode(syntax: str) -> bool:
    """Whether an installed pydicom decoder plugin handles this transfer syntax."""
    try:
        return get_decoder(syntax).is_available
    except (NotImplementedError, ValueError):
        return False


def is_encapsulated(instance: Instance) -> bool:
    return instance.transfer_syntax_uid not in NATIVE and instance.transfer_syntax_uid != DEFLATED_LE


# --- frames as stored -------------------------------------------------------------------------------

def native_frame_geometry(instance: Instance) -> tuple[int, int]:
    """(bits per frame, bits allocated) of a native instance's frames."""
    samples = instance.samples_per_pixel or 1
    bits = instance.bits_allocated or 8
    pixels = (instance.rows or 0) * (instance.columns or 0)
    if str(header_value(instance, "00280004", "")).upper() == "YBR_FULL_422" and samples == 3:
        return pixels * 2 * bits, bits  # two samples per pixel on average after 4:2:2 sub-sampling
    return pixels * samples * bits, bits


def native_frame(fh, instance: Instance, index: int) -> Iterator[bytes]:
    """The bytes of frame ``index`` (0-based) of a native instance, read from the open stored file."""
    frame_bits, _ = native_frame_geometry(instance)
    length = instance.pixel_data_length or 0
    if frame_bits % 8 == 0:
        size = frame_bits // 8
        start = index * size
        if start + size > length:
            raise NotFound(f"Frame {index + 1} lies beyond the stored pixel data.")
        fh.seek(instance.pixel_data_offset + start)
        remaining = size
        while remaining:
            data = fh.read(min(READ_CHUNK, remaining))
            if not data:
                raise OSError("the stored file ends inside a frame")
            remaining -= len(data)
            yield data
        return
    # Bit-packed frames (BitsAllocated 1) that do not start on a byte: unpack, cut, pack again.
    first_bit = index * frame_bits
    start, end = first_bit // 8, math.ceil((first_bit + frame_bits) / 8)
    if end > length:
        raise NotFound(f"Frame {index + 1} lies beyond the stored pixel data.")
    fh.seek(instance.pixel_data_offset + start)
    raw = np.frombuffer(fh.read(end - start), dtype=np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[first_bit - start * 8:first_bit - start * 8 + frame_bits]
    yield np.packbits(bits, bitorder="little").tobytes()


def _extended_offsets(instance: Instance):
    header = _header(instance)
    offsets, lengths = header.get("7FE00001", {}), header.get("7FE00002", {})
    if "InlineBinary" in offsets and "InlineBinary" in lengths:
        import base64

        return base64.b64decode(offsets["InlineBinary"]), base64.b64decode(lengths["InlineBinary"])
    return None


def encapsulated_frame(fh, instance: Instance, index: int) -> bytes:
    """The compressed bytes of frame ``index`` (0-based), as stored (fragments joined)."""
    fh.seek(instance.pixel_data_offset)
    try:
        return get_frame(fh, index, number_of_frames=instance.number_of_frames or 1,
                         extended_offsets=_extended_offsets(instance))
    except PARSE_ERRORS + (AttributeError, TypeError) as exc:
        raise NotFound(f"Frame {index + 1} of instance {instance.sop_instance_uid} could not be found in the "
                       f"stored pixel data ({str(exc)[:200]}).") from exc


def decoded_frame(instance: Instance, index: int) -> bytes:
    """Frame ``index`` (0-based) decompressed to native little-endian bytes (for explicit VR little endian)."""
    return bounded(instance, decode_frame_file, index, (instance.bits_allocated or 8) == 1, frame=index + 1)


def decode_frame_file(path: str, index: int, packed: bool) -> bytes:
    """Worker half of ``decoded_frame``."""
    try:
        source = path
        if pydicom.dcmread(path, stop_before_pixels=True).file_meta.get("TransferSyntaxUID") == DEFLATED_LE:
            source = pydicom.dcmread(path)  # pixel_array cannot read a deflated file by its path: inflate first
        arr = pixel_array(source, index=index, raw=True)
    except PARSE_ERRORS + (RuntimeError, NotImplementedError, AttributeError, TypeError) as exc:
        raise Undecodable(f"The frame could not be decompressed ({exc.__class__.__name__}: {str(exc)[:200]}).") \
            from None
    if packed:
        return np.packbits(arr.astype(np.uint8).ravel(), bitorder="little").tobytes()
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def encapsulated_value_length(fh, instance: Instance) -> int:
    """The length of the encapsulated Pixel Data value: its items up to (not including) the sequence delimiter."""
    fh.seek(instance.pixel_data_offset)
    position = 0
    limit = instance.pixel_data_length or 0
    while position + 8 <= limit:
        head = fh.read(8)
        if len(head) < 8:
            break
        group, element, length = int.from_bytes(head[0:2], "little"), int.from_bytes(head[2:4], "little"), \
            int.from_bytes(head[4:8], "little")
        if (group, element) == (0xFFFE, 0xE0DD):
            return position
        if (group, element) != (0xFFFE, 0xE000):
            break
        position += 8 + length
        fh.seek(length, io.SEEK_CUR)
    raise NotFound("The stored pixel data has no sequence delimiter; it cannot be served as bulk data.")


def dataset_bulk_value(instance: Instance, tag: int) -> bytes | None:
    """The value of a bulk data element anywhere in the stored file (first occurrence), read with pydicom
    in a decoder process (a deflated data set is inflated whole: bounded like a decode)."""
    return bounded(instance, bulk_value_file, tag, frame=None,
                   what=f"bulk data {tag:08X} of instance {instance.sop_instance_uid}")


def bulk_value_file(path: str, tag: int) -> bytes | None:
    """Worker half of ``dataset_bulk_value``."""
    try:
        ds = pydicom.dcmread(path)
    except PARSE_ERRORS as exc:
        raise NotFound(f"The stored file could not be read ({exc.__class__.__name__}).") from None

    def find(dataset) -> bytes | None:
        if tag in dataset:
            value = dataset[tag].value
            return value if isinstance(value, bytes) else None
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    found = find(item)
                    if found is not None:
                        return found
        return None

    try:
        return find(ds)
    except PARSE_ERRORS as exc:
        raise NotFound(f"The stored file could not be read ({exc.__class__.__name__}).") from None


# --- decoding under limits ----------------------------------------------------------------------------

J2K_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
                          "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                          "1.2.840.10008.1.2.4.203"})


def subject(instance: Instance, frame: int | None) -> str:
    """What a message is about: "frame 3 of instance 1.2.3" (or the whole instance)."""
    uid = instance.sop_instance_uid
    return f"frame {frame} of instance {uid}" if frame is not None else f"instance {uid}"


@contextlib.contextmanager
def local_path(key: str) -> Iterator[str]:
    """A path the decoder process can open: the stored file itself, or a temporary copy (S3)."""
    try:
        path = default_storage.path(key)
    except NotImplementedError:
        path = None
    if path is not None:
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="readroom-decode-", suffix=".dcm") as copy:
        with default_storage.open(key, "rb") as fh:
            shutil.copyfileobj(fh, copy, READ_CHUNK)
        copy.flush()
        yield copy.name


def remember_undecodable(instance: Instance, reason: str) -> None:
    """Mark the instance so that it is answered at once from now on (shown on the study page)."""
    from studies.models import Instance

    instance.undecodable_reason = reason[:500]
    Instance.objects.filter(pk=instance.pk).update(undecodable_reason=instance.undecodable_reason)
    logger.warning("instance %s marked undecodable: %s", instance.sop_instance_uid, reason)


def check_decodable(instance: Instance, frame: int | None) -> None:
    """422 at once for an instance already known to be undecodable; else the cheap header checks."""
    if instance.undecodable_reason:
        raise Undecodable(f"{subject(instance, frame).capitalize()} cannot be decoded: "
                          f"{instance.undecodable_reason}")
    if frame is None or not has_pixel_data(instance) or not is_encapsulated(instance):
        return
    index = frame - 1
    with default_storage.open(instance.storage_key, "rb") as fh:
        data = encapsulated_frame(fh, instance, index)  # a frame missing from the fragments is 404 here
    if instance.transfer_syntax_uid in J2K_SYNTAXES:
        problem = decoding.j2k_header_problem(data)
        if problem is not None:
            reason = f"its JPEG 2000 header is malformed ({problem})"
            if index == 0:  # one bad frame does not condemn the others
                remember_undecodable(instance, reason)
            raise Undecodable(f"{subject(instance, frame).capitalize()} cannot be decoded: {reason}.")


def bounded(instance: Instance, func, *args, frame: int | None, what: str | None = None):
    """``func(local path, *args)`` in a decoder process; an overrun marks the instance undecodable."""
    what = what or subject(instance, frame)
    check_decodable(instance, frame)
    with local_path(instance.storage_key) as path:
        try:
            return decoding.run_bounded(func, path, *args, what=what)
        except Undecodable as exc:
            if exc.overran:
                remember_undecodable(instance, exc.message.split(": ", 1)[-1])
            raise _naming(exc, what) from None
        except NotRenderable as exc:
            raise _naming(exc, what) from None


def _naming(exc: ApplicationError, what: str) -> ApplicationError:
    """The worker's message, prefixed with the instance and frame it is about (once)."""
    if what not in exc.message:
        exc.message = f"{what[:1].upper()}{what[1:]}: {exc.message[:1].lower()}{exc.message[1:]}"
        exc.args = (exc.message,)
    return exc


# --- rendering --------------------------------------------------------------------------------------

def _frame_group(ds, index: int, sequence: str):
    """An item of a functional group macro (per-frame first, then shared) of an enhanced multi-frame object."""
    for container, position in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(container)
        if groups and len(groups) > position and sequence in groups[position] and groups[position][sequence].value:
            return groups[position][sequence][0]
    return None


def _first_float(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, pydicom.multival.MultiValue | list | tuple):
            value = value[0] if len(value) else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _display_bytes(arr: np.ndarray, ds, index: int, window: tuple[float, float] | None) -> np.ndarray:
    """The frame as 8-bit grey or RGB, windowed for display."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 3:  # colour: scale to 8 bits if stored deeper
        top = float(arr.max()) if arr.size else 0
        if top > 255:
            arr = arr.astype(np.float32) * (255.0 / top)
        return np.clip(arr, 0, 255).astype(np.uint8)

    transform = _frame_group(ds, index, "PixelValueTransformationSequence")
    values = apply_modality_lut(arr, transform if transform is not None and "RescaleSlope" in transform else ds)
    values = values.astype(np.float32, copy=False)
    voi = _frame_group(ds, index, "FrameVOILUTSequence")
    center = width = None
    if window is not None:
        center, width = window
    else:
        source = voi if voi is not None and "WindowCenter" in voi else ds
        center, width = _first_float(source.get("WindowCenter")), _first_float(source.get("WindowWidth"))
    if (center is None or not width or width <= 0) and "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds).astype(np.float32, copy=False)
        center = width = None
    if center is None or not width or width <= 0:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        center, width = (low + high) / 2, max(high - low, 1.0)
    # PS3.3 C.11.2.1.2.1: linear window
    out = ((values - (center - 0.5)) / max(width - 1, 1) + 0.5) * 255.0
    out = np.clip(out, 0, 255).astype(np.uint8)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _decode_for_display(path: str, index: int, window) -> np.ndarray:
    with open(path, "rb") as fh:
        try:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
            fh.seek(0)
            arr = pixel_array(fh, index=index)
        except PARSE_ERRORS + (RuntimeError, NotImplementedError, AttributeError, TypeError) as exc:
            raise NotRenderable(f"The image could not be decoded for display ({exc.__class__.__name__}: "
                                f"{str(exc)[:200]}).") from None
    try:
        return _display_bytes(arr, ds, index, window)
    except PARSE_ERRORS + (TypeError, AttributeError) as exc:  # a malformed LUT, window or photometric
        raise NotRenderable(f"The image could not be windowed for display ({exc.__class__.__name__}: "
                            f"{str(exc)[:200]}).") from None


def _encode(pixels: np.ndarray, fmt: ImageFormat, *, viewport: tuple[int, int] | None, quality: int) -> bytes:
    image = Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L")
    if viewport is not None:
        image.thumbnail(viewport, Image.Resampling.LANCZOS)  # fits inside, keeps the aspect ratio
    out = io.BytesIO()
    if fmt is JPEG:
        image.save(out, "JPEG", quality=quality, optimize=True)
    else:
        image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


def render_instance(instance: Instance, *, frame: int = 1, fmt: ImageFormat = JPEG,
                    viewport: tuple[int, int] | None = None, quality: int = JPEG_QUALITY,
                    window: tuple[float, float] | None = None) -> bytes:
    """One frame (1-based) as a display image with the default (or the given) window."""
    if not has_pixel_data(instance):
        raise NotFound("This instance has no image to render.")
    if frame < 1 or frame > (instance.number_of_frames or 1):
        raise NotFound(f"Frame {frame} does not exist: this instance has {instance.number_of_frames or 1} "
                       "frame(s), numbered from 1.")
    return bounded(instance, render_file, frame - 1, window, fmt.name, viewport, quality, frame=frame)


def render_file(path: str, index: int, window, fmt_name: str, viewport, quality: int) -> bytes:
    """Worker half of ``render_instance``: decode, window and encode one frame."""
    pixels = _decode_for_display(path, index, window)
    try:
        return _encode(pixels, JPEG if fmt_name == JPEG.name else PNG, viewport=viewport, quality=quality)
    except (ValueError, TypeError, OSError) as exc:
        raise NotRenderable(f"The image could not be encoded for display ({exc.__class__.__name__}).") from None


def thumbnail_key(instance: Instance, fmt: ImageFormat, viewport: tuple[int, int]) -> str:
    """Built from the server-built storage key and the file's hash (a replaced file never shows an old thumbnail)."""
    return f"{instance.storage_key}.{instance.sha256[:16]}.thumb-{viewport[0]}x{viewport[1]}.{fmt.extension}"


def thumbnail(instance: Instance, *, fmt: ImageFormat = JPEG, viewport: tuple[int, int] = THUMBNAIL_SIZE) -> bytes:
    """The first frame fitted in ``viewport``, rendered once and then served from storage."""
    key = thumbnail_key(instance, fmt, viewport)
    try:
        with default_storage.open(key, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, OSError):
        pass
    data = render_instance(instance, frame=1, fmt=fmt, viewport=viewport, quality=85)
    try:
        saved = default_storage.save(key, ContentFile(data))
        if saved != key:  # another request wrote it first: keep theirs
            default_storage.delete(saved)
    except OSError:
        logger.warning("could not cache thumbnail %s", key, exc_info=True)
    return data


def representative_instance(instances: QuerySet[Instance]) -> Instance | None:
    """The image shown for a series or study: the middle image of the first series that has images."""
    from studies.models import Instance

    rows = list(instances.filter(pixel_data_offset__isnull=False, rows__isnull=False, columns__isnull=False)
                .order_by("series__series_number", "series_id", "instance_number", "id")
                .values_list("series_id", "id"))
    if not rows:
        return None
    first_series = rows[0][0]
    ids = [pk for series_id, pk in rows if series_id == first_series]
    return Instance.objects.select_related("series").get(pk=ids[(len(ids) - 1) // 2])
