"""DICOMweb WADO-RS (PS3.18 10.4): retrieve, metadata, frames, bulk data, rendered images and thumbnails.

Every response streams: DICOM files and frames are read from storage in chunks
(``studies.dicomweb.multipart``), metadata is written row by row from one query. Frames and pixel
bulk data go out as stored when the client allows it (``transfer-syntax=*``), decompressed when it asks
for Explicit VR Little Endian (or names no syntax for octet-stream); other syntaxes are 406.

No 500 half-way (issue 20): everything about frames, bulk data and renderings that can fail — a frame
missing from the fragments, a decode — is done before the response starts, so a failure is a 404, 406
or 422 naming the instance and frame. Decodes run in killable processes (``studies.decoding``).

Access (studies.selectors): a foreign or missing study is 404. ``full`` access gets everything;
``preview`` access gets de-identified metadata (studies.deid) and thumbnails of images whose
Burned In Annotation is "NO" — never the files, frames, bulk data or full-size renderings (404).
Each response that carries PHI or pixels is audited once (studies.services.study_access_record).
A blinded peer reviewer (selectors.StudyAccess.hide_reports) gets none of the study's signed reports:
the selectors leave them out of every series and instance read here, so asking for one is a 404.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from functools import partial

from django.core.files.storage import default_storage
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse

from core.errors import ApplicationError, NotFound
from core.sql import RequirementFailed, one_round_trip
from studies import policy, render, selectors
from studies.deid import deidentify_json, study_key_for
from studies.dicom import BULK_PLACEHOLDER
from studies.dicomweb import transcode
from studies.dicomweb.auth import dicomweb_view
from studies.dicomweb.media import (
    DICOM,
    OCTET,
    FrameAnswer,
    NotAcceptable,
    negotiate_frames,
    negotiate_instances,
    parse_accept,
    syntax_name,
    type_matches,
)
from studies.dicomweb.multipart import Part, multipart_response, storage_chunks
from studies.models import Instance
from studies.selectors import StudyAccess
from studies.services import study_access_record

PREVIEW_REFUSAL = ("{what} is not available with preview access: a preview shows de-identified metadata and "
                   "thumbnails of images without burned-in annotation only.")
JSON_CHUNK = 256 * 1024
IMAGE_MAX_AGE = 600


# --- access ------------------------------------------------------------------------------------------

def _access(request, study_uid: str) -> StudyAccess:
    return selectors.study_get(actor=request.actor, study_uid=study_uid)


def _require_full(access: StudyAccess, what: str) -> None:
    if access.level != policy.FULL:
        raise NotFound(PREVIEW_REFUSAL.format(what=what))


def _full_instance(request, study_uid: str, series_uid: str, sop_uid: str, what: str) -> tuple[StudyAccess, Instance]:
    """The study at ``full`` level (else 404) and one of its instances (else 404). A viewer fetches a study's
    frames one request each: the access study_get last answered this principal for the study is tried
    first, checked by the database in the same round trip as the instance's query (one exchange instead of
    two; docs/decisions/0006). If it no longer holds, nothing was read, and the study is looked up again."""
    remembered = selectors.study_get_remembered(actor=request.actor, study_uid=study_uid)
    if remembered is not None and remembered.is_full:
        try:
            with one_round_trip():
                selectors.study_access_verify(actor=request.actor, access=remembered)
                read_instance = selectors.instance_get_sent(access=remembered, series_uid=series_uid,
                                                            sop_uid=sop_uid)
            return remembered, read_instance()
        except RequirementFailed:
            pass
    access = _access(request, study_uid)
    _require_full(access, what)
    return access, selectors.instance_get(access=access, series_uid=series_uid, sop_uid=sop_uid)


def _audit(request, access: StudyAccess, fetched: str) -> None:
    study_access_record(actor=request.actor, access=access, fetched=fetched, request=request)


# --- retrieve ----------------------------------------------------------------------------------------

INSTANCE_ORDER = ("series__series_number", "series_id", "instance_number", "id")


def _retrieve(request, access: StudyAccess, instances, *, fetched: str, single_allowed: bool = False):
    rows = list(instances.order_by(*INSTANCE_ORDER).defer("dicom_json"))
    if not rows:
        raise NotFound("There are no instances to retrieve.")
    answer = negotiate_instances(request.headers.get("Accept", ""), {row.transfer_syntax_uid for row in rows},
                                 single_allowed=single_allowed)
    # Transcoding (when asked) happens here, before the response starts: a failure is a 422, not a cut stream.
    parts = transcode.retrieve_parts(rows, answer.syntax)
    _audit(request, access, fetched)
    if answer.mode == "single":
        part = parts[0]
        response = StreamingHttpResponse(part.body(), content_type=part.content_type)
        response["Content-Length"] = str(part.length)
        response["Cache-Control"] = "private, no-store"
        return response
    return multipart_response(parts, part_type=DICOM, what=f"{fetched} of {access.study.study_instance_uid}")


@dicomweb_view(methods=["GET"])
def study_retrieve(request, study_uid: str):
    """GET /studies/{study}: every instance of the study (stow.study_resource dispatches GET here)."""
    access = _access(request, study_uid)
    _require_full(access, "Retrieving DICOM files")
    return _retrieve(request, access, selectors.instance_list(access=access), fetched="study")


@dicomweb_view(methods=["GET"])
def series_retrieve(request, study_uid: str, series_uid: str):
    access = _access(request, study_uid)
    _require_full(access, "Retrieving DICOM files")
    series = selectors.series_get(access=access, series_uid=series_uid)
    return _retrieve(request, access, selectors.instance_list(access=access).filter(series=series),
                     fetched="series")


@dicomweb_view(methods=["GET"])
def instance_retrieve(request, study_uid: str, series_uid: str, sop_uid: str):
    access, instance = _full_instance(request, study_uid, series_uid, sop_uid, "Retrieving DICOM files")
    return _retrieve(request, access, Instance.objects.filter(pk=instance.pk), fetched="instance",
                     single_allowed=True)


# --- metadata ----------------------------------------------------------------------------------------

def _strip_bulk(body: dict) -> dict:
    """Preview: no references to pixels or other bulk data (they would only answer 404)."""
    return {key: element for key, element in body.items()
            if not (isinstance(element, dict) and "BulkDataURI" in element)}


def _metadata_rows(rows: Iterable[tuple[str, str, str]], *, base: str, deidentify_key: str | None) -> Iterator[bytes]:
    """A JSON array written row by row, in chunks of about ``JSON_CHUNK`` bytes."""
    buffer = bytearray(b"[")
    first = True
    for series_uid, sop_uid, dicom_json in rows:
        if deidentify_key is not None:
            dicom_json = json.dumps(_strip_bulk(deidentify_json(json.loads(dicom_json), study_key=deidentify_key)),
                                    separators=(",", ":"))
        url = f"{base}/series/{series_uid}/instances/{sop_uid}"
        if not first:
            buffer += b","
        first = False
        buffer += dicom_json.replace(BULK_PLACEHOLDER, url).encode()
        if len(buffer) >= JSON_CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"
    yield bytes(buffer)


def _metadata(request, access: StudyAccess, rows: Iterable[tuple[str, str, str]]) -> StreamingHttpResponse:
    accepted = [r for r in parse_accept(request.headers.get("Accept", ""))
                if type_matches(r.type, "application/dicom+json") or r.type == "application/json"]
    if not accepted:
        raise NotAcceptable("Metadata is available as application/dicom+json (or application/json).")
    study = access.study
    base = request.build_absolute_uri(reverse("dicomweb_study", kwargs={"study_uid": study.study_instance_uid}))
    _audit(request, access, "metadata")
    key = None if access.level == policy.FULL else study_key_for(study)
    response = StreamingHttpResponse(_metadata_rows(rows, base=base, deidentify_key=key),
                                     content_type="application/dicom+json")
    response["Cache-Control"] = "private, no-store"
    return response


def _metadata_query(instances) -> Iterator[tuple[str, str, str]]:
    """One query, read in batches while the response streams."""
    yield from (instances.order_by(*INSTANCE_ORDER)
                .values_list("series__series_instance_uid", "sop_instance_uid", "dicom_json")
                .iterator(chunk_size=200))


@dicomweb_view(methods=["GET"])
def study_metadata(request, study_uid: str):
    access = _access(request, study_uid)
    return _metadata(request, access, _metadata_query(selectors.instance_list(access=access)))


@dicomweb_view(methods=["GET"])
def series_metadata(request, study_uid: str, series_uid: str):
    access = _access(request, study_uid)
    series = selectors.series_get(access=access, series_uid=series_uid)
    return _metadata(request, access, _metadata_query(selectors.instance_list(access=access).filter(series=series)))


@dicomweb_view(methods=["GET"])
def instance_metadata(request, study_uid: str, series_uid: str, sop_uid: str):
    access = _access(request, study_uid)
    instance = selectors.instance_get(access=access, series_uid=series_uid, sop_uid=sop_uid)
    return _metadata(request, access, [(series_uid, sop_uid, instance.dicom_json)])


# --- frames and bulk data ----------------------------------------------------------------------------

FRAME_LIST = re.compile(r"^\d{1,9}(,\d{1,9})*$")
PIXEL_DATA = "7FE00010"


def frame_numbers(text: str) -> list[int]:
    """ "1" or "1,3,5" → [1, 3, 5]; anything else is a 400."""
    text = (text or "").replace(" ", "").replace("%2C", ",").replace("%2c", ",")
    if not FRAME_LIST.match(text):
        raise ApplicationError.for_field("frames", f"Frame numbers must be a comma-separated list of positive "
                                         f"integers (e.g. 1 or 1,3,5), not {text[:40]!r}.", code="invalid_frames")
    numbers = [int(n) for n in text.split(",")]
    if len(numbers) > 10000:
        raise ApplicationError.for_field("frames", "Ask for at most 10000 frames at a time.", code="invalid_frames")
    return numbers


def _checked_frames(instance: Instance, numbers: list[int]) -> None:
    if not render.has_pixel_data(instance):
        raise NotFound(f"Instance {instance.sop_instance_uid} has no pixel data, so it has no frames.")
    count = instance.number_of_frames or 1
    for number in numbers:
        if number < 1 or number > count:
            raise NotFound(f"Frame {number} does not exist: this instance has {count} frame(s), numbered from 1 "
                           f"(instance {instance.sop_instance_uid}).")
    if instance.transfer_syntax_uid in render.NATIVE:
        frame_bits, _ = render.native_frame_geometry(instance)
        if -(-max(numbers) * frame_bits // 8) > (instance.pixel_data_length or 0):
            raise NotFound(f"Frame {max(numbers)} lies beyond the stored pixel data of instance "
                           f"{instance.sop_instance_uid} (the header announces more frames than the file holds).")


class _Spool:
    """Frames produced before the response starts, kept in memory up to a limit and on disk beyond it."""

    MEMORY = 32 * 1024 * 1024

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=self.MEMORY)  # noqa: SIM115 - lives with the response
        self.lock = threading.Lock()

    def add(self, data: bytes) -> tuple[int, int]:
        self.file.seek(0, io.SEEK_END)
        start = self.file.tell()
        self.file.write(data)
        return start, len(data)

    def read(self, start: int, length: int) -> Iterator[bytes]:
        with self.lock:
            self.file.seek(start)
            data = self.file.read(length)
        yield data


def _frame_parts(instance: Instance, numbers: list[int], answer: FrameAnswer) -> list[Part]:
    """Parts for the frames. Everything that can fail (a frame missing from the fragments, a decode) is done
    here, before the response starts: a failure is a 404/406/422 naming the frame, never a broken stream.
    Native frames stay byte ranges of the stored file, read while streaming (checked by ``_checked_frames``)."""
    decode = answer.mode == "decoded" or instance.transfer_syntax_uid == render.DEFLATED_LE
    if not decode and not render.is_encapsulated(instance):
        frame_bits, _ = render.native_frame_geometry(instance)
        length = frame_bits // 8 if frame_bits % 8 == 0 else None

        def native(index: int) -> Iterator[bytes]:
            with default_storage.open(instance.storage_key, "rb") as fh:
                yield from render.native_frame(fh, instance, index)

        return [Part(content_type=answer.part_type, length=length, body=partial(native, number - 1))
                for number in numbers]
    spool = _Spool()
    pieces = []
    if decode:
        for number in numbers:
            pieces.append(spool.add(render.decoded_frame(instance, number - 1)))
    else:
        with default_storage.open(instance.storage_key, "rb") as fh:
            for number in numbers:
                pieces.append(spool.add(render.encapsulated_frame(fh, instance, number - 1)))
    return [Part(content_type=answer.part_type, length=length, body=partial(spool.read, start, length))
            for start, length in pieces]


@dicomweb_view(methods=["GET"])
def instance_frames(request, study_uid: str, series_uid: str, sop_uid: str, frames: str):
    numbers = frame_numbers(frames)
    access, instance = _full_instance(request, study_uid, series_uid, sop_uid, "Frames")
    _checked_frames(instance, numbers)
    answer = negotiate_frames(request.headers.get("Accept", ""), instance)
    _audit(request, access, "frames")
    # The syntax is named in the response's type as well as in each part's: the shape OHIF was seen to get.
    return multipart_response(_frame_parts(instance, numbers, answer), part_type=answer.part_type,
                              what=f"frames of {sop_uid}")


def _bulk_tags(instance: Instance) -> set[str]:
    """The tags this instance serves by URI (top level or nested), from its stored DICOM JSON."""
    return set(re.findall(r"/bulkdata/([0-9A-F]{8})\"", instance.dicom_json))


def _bulk_stored(instance: Instance, tag: str) -> tuple[Iterator[bytes] | list[bytes], int | None]:
    """The element's value as stored (pixel data: a byte range of the file; others read with pydicom)."""
    if tag == PIXEL_DATA and instance.pixel_data_offset is not None \
            and instance.transfer_syntax_uid != render.DEFLATED_LE:
        if render.is_encapsulated(instance):
            with default_storage.open(instance.storage_key, "rb") as fh:
                length = render.encapsulated_value_length(fh, instance)
        else:
            length = instance.pixel_data_length
        return storage_chunks(instance.storage_key, start=instance.pixel_data_offset, length=length), length
    value = render.dataset_bulk_value(instance, int(tag, 16))
    if value is None:
        raise NotFound(f"No bulk data for tag {tag} in instance {instance.sop_instance_uid}.")
    return [value], len(value)


def _bulk_decoded(instance: Instance) -> tuple[list[bytes], int]:
    """Every frame decoded to native little endian, one bounded decode each, before the response starts."""
    spool = _Spool()
    total = 0
    for index in range(instance.number_of_frames or 1):
        total += spool.add(render.decoded_frame(instance, index))[1]
    return spool.read(0, total), total


def _bulk_answer(request, instance: Instance, tag: str) -> tuple[bool, bool]:
    """(single body?, decoded?) for the Accept header, or 406. PS3.18 8.7.3.5: an octet-stream range without
    a transfer-syntax means Explicit VR Little Endian, so compressed pixel data is decompressed for it;
    ``transfer-syntax=*``, the stored syntax, or a wildcard type take the value as stored."""
    encapsulated = tag == PIXEL_DATA and render.is_encapsulated(instance)
    stored = instance.transfer_syntax_uid
    for media_range in parse_accept(request.headers.get("Accept", "")):
        if media_range.type in ("*/*", "multipart/*", "application/*"):
            return media_range.type == "application/*", False
        if media_range.type == "multipart/related" and type_matches(media_range.inner_type(OCTET), OCTET):
            single = False
            wildcard = media_range.inner_type(OCTET) != OCTET
        elif media_range.type == OCTET:
            single, wildcard = True, False
        else:
            continue
        syntax = media_range.transfer_syntax
        if not encapsulated:
            if syntax in (None, "", "*", stored) or (syntax in render.NATIVE_LE and stored in render.NATIVE_LE
                                                     | {render.DEFLATED_LE}) or tag != PIXEL_DATA:
                return single, False
            continue
        if syntax in ("*", stored) or (wildcard and not syntax):
            return single, False
        if syntax in (None, "", render.EXPLICIT_LE) and render.can_decode(stored):
            return single, True
    raise NotAcceptable(f"Bulk data {tag} of instance {instance.sop_instance_uid} is stored as "
                        f"{syntax_name(stored)}. Ask for application/octet-stream (or multipart/related; "
                        f'type="application/octet-stream") with transfer-syntax=* (as stored) or '
                        f"{render.EXPLICIT_LE} (uncompressed); other syntaxes are not transcoded.")


@dicomweb_view(methods=["GET"])
def instance_bulkdata(request, study_uid: str, series_uid: str, sop_uid: str, tag: str):
    tag = (tag or "").upper()
    access, instance = _full_instance(request, study_uid, series_uid, sop_uid, "Bulk data")
    if not re.fullmatch(r"[0-9A-F]{8}", tag) or tag not in _bulk_tags(instance):
        raise NotFound(f"Instance {sop_uid} has no bulk data for tag {tag[:16]!r} (its bulk data: "
                       f"{', '.join(sorted(_bulk_tags(instance))) or 'none'}).")
    single, decoded = _bulk_answer(request, instance, tag)
    if decoded:
        body, length = _bulk_decoded(instance)
        content_type = f"{OCTET}; transfer-syntax={render.EXPLICIT_LE}"
    else:
        body, length = _bulk_stored(instance, tag)
        content_type = OCTET
    _audit(request, access, "bulkdata")
    if single:
        response = StreamingHttpResponse(body, content_type=content_type)
        if length is not None:
            response["Content-Length"] = str(length)
        response["Cache-Control"] = "private, no-store"
        return response
    return multipart_response([Part(content_type=content_type, length=length, body=lambda: body)],
                              part_type=OCTET, what=f"bulk data {tag} of {sop_uid}")


# --- rendered and thumbnails -------------------------------------------------------------------------

def _image_format(request) -> render.ImageFormat:
    for media_range in parse_accept(request.headers.get("Accept", "")):
        if media_range.type in ("*/*", "image/*", "image/jpeg"):
            return render.JPEG
        if media_range.type == "image/png":
            return render.PNG
    raise NotAcceptable("Rendered images and thumbnails are available as image/jpeg or image/png.")


def _ints(request, name: str, count: int, *, low: int, high: int) -> tuple[int, ...] | None:
    raw = request.GET.get(name)
    if raw in (None, ""):
        return None
    try:
        values = tuple(int(v) for v in raw.split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(low <= v <= high for v in values):
        raise ApplicationError.for_field(name, f"{name} must be {count} comma-separated integer(s) between {low} "
                                         f"and {high}.", code="invalid_parameter")
    return values


def _window(request) -> tuple[float, float] | None:
    raw = request.GET.get("window")
    if raw in (None, ""):
        return None
    pieces = raw.split(",")
    try:
        center, width = float(pieces[0]), float(pieces[1])
    except (ValueError, IndexError):
        center = width = float("nan")
    if len(pieces) not in (2, 3) or not (width > 0) or center != center \
            or (len(pieces) == 3 and pieces[2].strip().lower() not in ("linear", "")):
        raise ApplicationError.for_field("window", "window must be center,width[,linear] with a positive width.",
                                         code="invalid_parameter")
    return center, width


def _image_response(data: bytes, fmt: render.ImageFormat) -> HttpResponse:
    response = HttpResponse(data, content_type=fmt.content_type)
    response["Cache-Control"] = f"private, max-age={IMAGE_MAX_AGE}"
    return response


def _rendered(request, access: StudyAccess, instance: Instance | None, *, frame: int = 1):
    fmt = _image_format(request)
    viewport = _ints(request, "viewport", 2, low=1, high=render.MAX_VIEWPORT)
    quality = _ints(request, "quality", 1, low=1, high=100)
    window = _window(request)
    if instance is None:
        raise NotFound("There is no image to render here.")
    data = render.render_instance(instance, frame=frame, fmt=fmt, viewport=viewport,
                                  quality=quality[0] if quality else render.JPEG_QUALITY, window=window)
    _audit(request, access, "rendered")
    return _image_response(data, fmt)


def _thumbnail(request, access: StudyAccess, instances) -> HttpResponse:
    fmt = _image_format(request)
    viewport = _ints(request, "viewport", 2, low=16, high=1024) or render.THUMBNAIL_SIZE
    if access.level != policy.FULL:
        # Preview: only images declared free of burned-in annotation (empty or unknown counts as not free).
        instances = instances.filter(burned_in_annotation="NO")
    instance = render.representative_instance(instances)
    if instance is None:
        raise NotFound("No thumbnail: there is no image here" + (
            " whose Burned In Annotation is NO (images that may show patient details in their pixels are not "
            "previewed)." if access.level != policy.FULL else "."))
    data = render.thumbnail(instance, fmt=fmt, viewport=tuple(viewport))
    _audit(request, access, "thumbnail")
    return _image_response(data, fmt)


@dicomweb_view(methods=["GET"])
def study_rendered(request, study_uid: str):
    access = _access(request, study_uid)
    _require_full(access, "A full-size rendered image")
    return _rendered(request, access, render.representative_instance(selectors.instance_list(access=access)))


@dicomweb_view(methods=["GET"])
def series_rendered(request, study_uid: str, series_uid: str):
    access = _access(request, study_uid)
    _require_full(access, "A full-size rendered image")
    series = selectors.series_get(access=access, series_uid=series_uid)
    return _rendered(request, access,
                     render.representative_instance(selectors.instance_list(access=access).filter(series=series)))


@dicomweb_view(methods=["GET"])
def instance_rendered(request, study_uid: str, series_uid: str, sop_uid: str):
    access, instance = _full_instance(request, study_uid, series_uid, sop_uid, "A full-size rendered image")
    return _rendered(request, access, instance)


@dicomweb_view(methods=["GET"])
def frames_rendered(request, study_uid: str, series_uid: str, sop_uid: str, frames: str):
    numbers = frame_numbers(frames)
    if len(numbers) != 1:
        raise ApplicationError.for_field("frames", "Render one frame at a time.", code="invalid_frames")
    access, instance = _full_instance(request, study_uid, series_uid, sop_uid, "A full-size rendered image")
    _checked_frames(instance, numbers)
    return _rendered(request, access, instance, frame=numbers[0])


@dicomweb_view(methods=["GET"])
def study_thumbnail(request, study_uid: str):
    access = _access(request, study_uid)
    return _thumbnail(request, access, selectors.instance_list(access=access))


@dicomweb_view(methods=["GET"])
def series_thumbnail(request, study_uid: str, series_uid: str):
    access = _access(request, study_uid)
    series = selectors.series_get(access=access, series_uid=series_uid)
    return _thumbnail(request, access, selectors.instance_list(access=access).filter(series=series))


@dicomweb_view(methods=["GET"])
def instance_thumbnail(request, study_uid: str, series_uid: str, sop_uid: str):
    access = _access(request, study_uid)
    instance = selectors.instance_get(access=access, series_uid=series_uid, sop_uid=sop_uid)
    return _thumbnail(request, access, selectors.instance_list(access=access).filter(pk=instance.pk))
