"""DICOMweb STOW-RS (PS3.18 10.5): ``POST /studies`` and ``POST /studies/{study}``.

The body (``multipart/related; type="application/dicom"; boundary=...``) is parsed as it arrives
(python-multipart's push parser, fed 1 MB at a time): each part streams straight into
``studies.ingest.ingest_stream``, so a request of several GB never sits in memory. The instances of
one request are indexed through one ``studies.ingest.IngestBatch``: at most one batch (50 instances
or 256 MB) is spooled on disk at a time, and each batch is stored in one transaction (one savepoint
per instance) while no transaction stays open during reads of the body. Each such transaction also
writes the ``study.ingested`` record of what it stored (and of the parts refused since the previous
one), so that no instance is committed without it. The request is capped by
``DICOM_MAX_UPLOAD_BYTES``, each instance by ``DICOM_MAX_FILE_BYTES``.

Instances go to the caller's active organization (an API key's own organization; for a person, the
active organization, or else their only center where they may send) and only if
``studies.policy.can_send_studies`` allows it (admins and technologists of an imaging center, and
its keys with the technologist role).

Response (``application/dicom+json``, the Store Instances Response Module of PS3.18 Annex I):
Retrieve URL (0008,1190) of the study when all stored instances belong to one; Referenced SOP
Sequence (0008,1199) of stored instances (the same data set already stored, whatever its file meta, counts
as stored) with
their Retrieve URL; Failed SOP Sequence (0008,1198) with a Failure Reason (0008,1197) per instance;
Other Failures Sequence (0008,119A) when the body broke off after some instances were stored.

Failure Reason codes (PS3.18 Table I.2-2; 0111 is an additional code as I.2.2 allows):

- ``0xC000`` cannot understand: not DICOM, no preamble, truncated, empty, unreadable, or a part
  whose media type is not ``application/dicom``;
- ``0xA900`` data set does not match: a missing or malformed UID, or an instance whose Study
  Instance UID differs from the study in the request path;
- ``0x0111`` duplicate SOP instance: the SOP Instance UID is already stored with other content
  (never overwritten);
- ``0xA700`` out of resources: the instance exceeds the per-file size limit;
- ``0x0110`` processing failure: anything else (e.g. storage unavailable), logged.

PS3.18 has no text attribute for the reason, so each Failed SOP Sequence item also carries the
human-readable reason in a private attribute: creator (0009,0010) = ``READROOM``, reason
(0009,1001) LT. Clients that do not know it ignore it, as DICOM requires of private attributes.

A stored instance with values that could not be read (an IS of ``1A``) is stored byte for byte; its
item carries Warning Reason (0008,1196) ``0xB006`` and the values left out of the index in (0009,1001).
A part whose file meta comes without the 128-byte preamble and ``DICM`` (pydicom's ``dcmwrite`` of a data set
built in memory, so dicomweb-client) is stored with them added, the rest byte for byte: ``0xB000``.
Any printable boundary up to ``MAX_BOUNDARY`` characters is accepted (Orthanc sends 73, past RFC 2046's 70).

Status: 200 all stored; 202 some failed or stored with warnings; 409 none stored; 415 the request (or every part) is not
``multipart/related; type="application/dicom"``; 400 malformed multipart or no part at all;
411 a chunked body the server cannot de-chunk; 413 over the request size limit.
"""

from __future__ import annotations

import functools
import io
import logging
import warnings
from collections import deque
from collections.abc import Iterator
from typing import BinaryIO

import pydicom
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import parse_header_parameters
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from accounts.models import Organization
from accounts.policy import Actor
from core.errors import ApplicationError, PermissionDenied
from studies import policy
from studies.dicom import uid_problem
from studies.dicomweb import qido, wado
from studies.dicomweb.auth import dicomweb_view, error_response, method_dispatch
from studies.dicomweb.dicomjson import dicom_json_response, element
from studies.ingest import (
    PREAMBLE_ADDED,
    PROCESSING_FAILURE_REASON,
    IngestBatch,
    IngestOutcome,
    Source,
    Status,
    audit_ingest,
    ingest_stream,
)

logger = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
HEAD_BYTES = 64 * 1024  # kept from each part to name a refused instance in the failure report
MAX_PARTS = 100_000
MAX_BOUNDARY = 256
DICOM_PART_TYPE = "application/dicom"
PRIVATE_CREATOR = "READROOM"

FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_DOES_NOT_MATCH = 0xA900
FAILURE_DUPLICATE = 0x0111
FAILURE_OUT_OF_RESOURCES = 0xA700
FAILURE_PROCESSING = 0x0110
WARNING_ELEMENTS_DISCARDED = 0xB006  # PS3.18 Table I.2-3: stored, but some values are not in the index
WARNING_COERCED = 0xB000  # PS3.18 Table I.2-3: coercion of data elements (here: the Part 10 preamble added)
_REASON_BY_CODE = {
    "invalid_uid": FAILURE_DOES_NOT_MATCH,
    "study_mismatch": FAILURE_DOES_NOT_MATCH,
    "conflict": FAILURE_DUPLICATE,
    "too_large": FAILURE_OUT_OF_RESOURCES,
    "processing_failure": FAILURE_PROCESSING,
}
UNSUPPORTED_PART = "unsupported_media_type"


class MalformedBody(Exception):
    """The multipart body cannot be parsed (broken boundary, truncated, too many parts)."""


class BodyTooLarge(Exception):
    """The body passed ``DICOM_MAX_UPLOAD_BYTES``."""


class BodyUnreadable(Exception):
    """Reading the request failed (the client went away)."""


# --- the request's media type --------------------------------------------------------------------

def parse_content_type(value: str) -> bytes:
    """The boundary of a ``multipart/related; type="application/dicom"`` body, or an error (415/400)."""
    try:
        media_type, params = parse_header_parameters(value or "")
    except ValueError:
        media_type, params = "", {}
    wanted = 'multipart/related; type="application/dicom"; boundary=...'
    if media_type.strip().lower() != "multipart/related":
        raise ApplicationError(f"Send the instances as {wanted} (got {(value or 'no Content-Type')[:100]!r}).",
                               code="unsupported_media_type", status_code=415)
    part_type = (params.get("type") or "").strip().lower()
    if part_type != DICOM_PART_TYPE:
        found = f"type={part_type!r}" if part_type else "no type parameter"
        raise ApplicationError(f"Only DICOM instances can be stored: the Content-Type needs "
                               f'type="application/dicom" ({found}).', code="unsupported_media_type",
                               status_code=415)
    boundary = params.get("boundary") or ""
    # RFC 2046 says at most 70 characters, but real senders go past it (Orthanc's DICOMweb plugin sends
    # two UUIDs: 73): any printable ASCII boundary up to MAX_BOUNDARY is taken.
    if not 1 <= len(boundary) <= MAX_BOUNDARY or any(not 32 <= ord(c) < 127 for c in boundary) \
            or boundary.endswith(" "):
        raise ApplicationError(f"The multipart boundary parameter is missing or invalid (1–{MAX_BOUNDARY} printable "
                               "ASCII characters, not ending with a space).", code="malformed_multipart")
    return boundary.encode("ascii")


def _body_stream(request: HttpRequest) -> BinaryIO:
    """The request body as a stream; refuses what is too large before reading any of it."""
    limit = settings.DICOM_MAX_UPLOAD_BYTES
    length = request.META.get("CONTENT_LENGTH")
    if length:
        try:
            declared = int(length)
        except ValueError:
            raise ApplicationError("The Content-Length header is not a number.", code="bad_request") from None
        if declared > limit:
            raise ApplicationError(f"The request is larger than the limit of {limit // (1024 * 1024)} MB: send "
                                   "fewer instances per request.", code="too_large", status_code=413)
        return request
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # The WSGI server de-chunks the body and says so (gunicorn does); Django's own stream would
        # read nothing without a Content-Length.
        if request.META.get("wsgi.input_terminated"):
            return request.META["wsgi.input"]
        raise ApplicationError("This server cannot read a chunked request body: send a Content-Length.",
                               code="length_required", status_code=411)
    return request


# --- the streaming multipart/related reader --------------------------------------------------------

class MultipartReader:
    """Pull-style reader over python-multipart's push parser: yields one part at a time.

    Each part is a file-like object (``read(n)``) streaming that part's body; the next part is only
    reached once the previous one was read to its end (``drain``).
    """

    def __init__(self, stream: BinaryIO, boundary: bytes, *, max_bytes: int) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self.bytes_read = 0
        self._events: deque = deque()
        self._finished = False
        self._field = bytearray()
        self._value = bytearray()
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": lambda: self._events.append(("begin", None)),
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self._events.append(("headers", None)),
            "on_part_data": lambda data, start, end: self._events.append(("data", bytes(data[start:end]))),
            "on_part_end": lambda: self._events.append(("end", None)),
            "on_end": self._end,
        })

    def _header_end(self) -> None:
        self._events.append(("header", (bytes(self._field).decode("latin-1").strip().lower(),
                                        bytes(self._value).decode("latin-1").strip())))
        self._field.clear()
        self._value.clear()

    def _end(self) -> None:
        self._finished = True
        self._events.append(("finished", None))

    def next_event(self) -> tuple[str, object]:
        while not self._events:
            if self._finished:
                return ("finished", None)
            try:
                chunk = self._stream.read(READ_CHUNK)
            except OSError as exc:  # UnreadablePostError, a reset connection
                raise BodyUnreadable(str(exc)) from exc
            if not chunk:
                raise MalformedBody("the body ended before the closing boundary (truncated, or the boundary in the "
                                    "body does not match the Content-Type)")
            self.bytes_read += len(chunk)
            if self.bytes_read > self._max_bytes:
                raise BodyTooLarge()
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise MalformedBody(f"the multipart body is malformed ({exc})") from exc
        return self._events.popleft()

    def parts(self) -> Iterator[Part]:
        count = 0
        while True:
            kind, _ = self.next_event()
            if kind == "finished":
                return
            if kind != "begin":
                raise MalformedBody(f"unexpected {kind!r} outside a part")
            headers: dict[str, str] = {}
            while True:
                kind, value = self.next_event()
                if kind == "header":
                    name, text = value
                    headers[name] = text
                elif kind == "headers":
                    break
                else:
                    raise MalformedBody("a part ended inside its headers")
            count += 1
            if count > MAX_PARTS:
                raise MalformedBody(f"more than {MAX_PARTS} parts in one request")
            part = Part(self, headers, count)
            yield part
            part.drain()


class Part:
    """One body part, read as a stream (what ``ingest_stream`` consumes)."""

    def __init__(self, reader: MultipartReader, headers: dict[str, str], number: int) -> None:
        self._reader = reader
        self.headers = headers
        self.number = number
        self._buffer = b""
        self._done = False

    @property
    def media_type(self) -> str:
        value = self.headers.get("content-type", "")
        if not value:
            return DICOM_PART_TYPE  # the root type named by the request's type parameter
        try:
            return parse_header_parameters(value)[0].strip().lower()
        except ValueError:
            return value.lower()

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._done:
            kind, value = self._reader.next_event()
            if kind == "data":
                self._buffer = value
            elif kind == "end":
                self._done = True
            else:
                raise MalformedBody(f"unexpected {kind!r} inside part {self.number}")
        if size is None or size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass


# --- storing ------------------------------------------------------------------------------------------

def receiving_organization(actor: Actor) -> Organization:
    """Where a STOW request stores: the active organization, or else the only one the actor may send to."""
    active = actor.active_organization
    if active is not None and policy.can_send_studies(actor, active):
        return active
    senders = [m.organization for m in actor.memberships.values() if policy.can_send_studies(actor, m.organization)]
    if len(senders) == 1:
        return senders[0]
    if senders:
        raise PermissionDenied("You may send studies to several centers: switch your active organization to the "
                               "one to store into, or use that center's API key.", code="ambiguous_organization")
    raise PermissionDenied("Your role may not store studies: only admins and technologists of an imaging center "
                           "(or its API keys with the technologist role) can.", code="permission_denied")


class _Head:
    """Reads through a part, keeping its first bytes: enough to name the instance if it is refused."""

    def __init__(self, part: Part) -> None:
        self._part = part
        self.head = bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self._part.read(size)
        if len(self.head) < HEAD_BYTES:
            self.head += data[:HEAD_BYTES - len(self.head)]
        return data


def _raw_uid(dataset, keyword: str) -> str:
    """A UID read from a possibly cut-off header: only if its whole value was there and it is well formed."""
    try:
        raw = dataset.get_item(keyword)
    except (KeyError, ValueError):
        return ""
    if raw is None:
        return ""
    value = raw.value
    if isinstance(value, bytes):
        if getattr(raw, "length", len(value)) != len(value):
            return ""
        value = value.decode("ascii", "replace")
    uid = str(value or "").strip("\x00 ")
    return uid if uid_problem(uid) is None else ""


def identify(head: bytes) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) of a refused instance from its first bytes, or empty strings.

    Best effort for the failure report only: never ``force``, never more than ``HEAD_BYTES`` read,
    any parsing error simply means "unknown".
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True,
                                      specific_tags=["SOPClassUID", "SOPInstanceUID"])
        meta = dataset.file_meta
        return (_raw_uid(dataset, "SOPClassUID") or _raw_uid(meta, "MediaStorageSOPClassUID"),
                _raw_uid(dataset, "SOPInstanceUID") or _raw_uid(meta, "MediaStorageSOPInstanceUID"))
    except Exception:  # an unreadable header is exactly the case where we name nothing
        return "", ""


def _store_part(part: Part, *, organization: Organization, study_uid: str | None,
                batch: IngestBatch) -> IngestOutcome:
    name = f"part {part.number}"
    if part.media_type != DICOM_PART_TYPE:
        outcome = IngestOutcome(filename=name, status=Status.REJECTED, code=UNSUPPORTED_PART,
                                reason=f"the part's media type is {part.media_type!r}, not application/dicom")
        batch.settled(outcome)
        return outcome
    stream = _Head(part)
    try:
        outcome = ingest_stream(organization=organization, stream=stream, filename=name, source=Source.STOW,
                                expected_study_uid=study_uid, batch=batch)
        if not outcome.sop_instance_uid:
            outcome.sop_class_uid, outcome.sop_instance_uid = identify(bytes(stream.head))
        return outcome
    except (MalformedBody, BodyTooLarge, BodyUnreadable):
        raise  # the request itself broke: handled for the whole request
    except Exception:
        # One instance that could not be stored (storage down, a database error) is that instance's
        # failure, reported with its reason; the others are still tried.
        logger.exception("STOW-RS: storing %s failed", name)
        outcome = IngestOutcome(filename=name, status=Status.REJECTED, code="processing_failure",
                                reason=PROCESSING_FAILURE_REASON)
        batch.settled(outcome)
        return outcome


def _failure_item(outcome: IngestOutcome) -> dict:
    code = FAILURE_CANNOT_UNDERSTAND
    if outcome.status == Status.CONFLICT:
        code = FAILURE_DUPLICATE
    elif outcome.code in _REASON_BY_CODE:
        code = _REASON_BY_CODE[outcome.code]
    return {
        "00081150": element("UI", outcome.sop_class_uid),
        "00081155": element("UI", outcome.sop_instance_uid),
        "00081197": element("US", code),
        "00090010": element("LO", PRIVATE_CREATOR),
        "00091001": element("LT", f"{outcome.filename}: {outcome.reason}"),
    }


def _stored_item(outcome: IngestOutcome, studies_url: str) -> dict:
    item = {
        "00081150": element("UI", outcome.sop_class_uid),
        "00081155": element("UI", outcome.sop_instance_uid),
        "00081190": element("UR", f"{studies_url}/{outcome.study_instance_uid}/series/"
                                  f"{outcome.series_instance_uid}/instances/{outcome.sop_instance_uid}"),
    }
    if outcome.warnings:
        # Values left out of the index (QIDO, metadata): elements discarded. A file meta sent without the
        # preamble: stored with it added (the data set as sent), a coercion.
        discarded = [w for w in outcome.warnings if w != PREAMBLE_ADDED]
        item["00081196"] = element("US", WARNING_ELEMENTS_DISCARDED if discarded else WARNING_COERCED)
        item["00090010"] = element("LO", PRIVATE_CREATOR)
        as_sent = "" if PREAMBLE_ADDED in outcome.warnings else "stored as sent; "
        item["00091001"] = element("LT", f"{outcome.filename}: {as_sent}" + "; ".join(outcome.warnings))
    return dict(sorted(item.items()))


def store_response(outcomes: list[IngestOutcome], *, studies_url: str, study_uid: str | None,
                   other_failure: str | None = None) -> HttpResponse:
    """The Store Instances Response Module and its status code (PS3.18 10.5.3, Annex I)."""
    stored = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    stored_studies = {o.study_instance_uid for o in stored}
    target = study_uid or (next(iter(stored_studies)) if len(stored_studies) == 1 else None)
    body: dict = {"00081190": element("UR", f"{studies_url}/{target}" if target else None)}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [_failure_item(o) for o in failed]}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [_stored_item(o, studies_url) for o in stored]}
    if other_failure:
        body["0008119A"] = {"vr": "SQ", "Value": [{
            "00081197": element("US", FAILURE_CANNOT_UNDERSTAND),
            "00090010": element("LO", PRIVATE_CREATOR),
            "00091001": element("LT", other_failure)}]}
    if stored:
        warned = any(o.warnings for o in stored)
        status = 202 if failed or other_failure or warned else 200
    elif failed and all(o.code == UNSUPPORTED_PART for o in failed):
        status = 415
    else:
        status = 409
    return dicom_json_response(dict(sorted(body.items())), status=status)


@dicomweb_view(methods=["POST"])
def store(request: HttpRequest, study_uid: str | None = None) -> HttpResponse:
    """Store the instances of a multipart/related body, each through the one ingest service."""
    organization = receiving_organization(request.actor)
    boundary = parse_content_type(request.META.get("CONTENT_TYPE", ""))
    stream = _body_stream(request)
    reader = MultipartReader(stream, boundary, max_bytes=settings.DICOM_MAX_UPLOAD_BYTES)
    studies_url = request.build_absolute_uri(reverse("dicomweb_studies"))
    outcomes: list[IngestOutcome] = []
    audit = functools.partial(audit_ingest, organization=organization, source=Source.STOW,
                              actor=request.actor.user, request=request, api_key=request.actor.api_key)
    try:
        # Leaving the batch (even on a broken body) stores what was received in full, with its audit
        # record, before the outcomes are read below.
        with IngestBatch(audit=audit) as batch:
            for part in reader.parts():
                outcomes.append(_store_part(part, organization=organization, study_uid=study_uid, batch=batch))
    except MalformedBody as exc:
        if not any(o.ok for o in outcomes):
            return error_response(400, "malformed_multipart", f"The request body could not be read as "
                                  f"multipart/related: {exc}.")
        return store_response(outcomes, studies_url=studies_url, study_uid=study_uid,
                              other_failure=f"after part {len(outcomes)}: {exc}; the parts listed as stored are "
                                            "stored, send the rest again")
    except BodyTooLarge:
        limit = settings.DICOM_MAX_UPLOAD_BYTES // (1024 * 1024)
        stored = sum(1 for o in outcomes if o.ok)
        return error_response(413, "too_large", f"The request is larger than the limit of {limit} MB; {stored} "
                              "instance(s) received before the limit are stored: send the rest in smaller requests.")
    except BodyUnreadable as exc:
        return error_response(400, "unreadable_body", f"The request body could not be read ({exc}).")
    if not outcomes:
        return error_response(400, "no_instances", "The multipart body holds no part: send one DICOM instance per "
                              "part.")
    return store_response(outcomes, studies_url=studies_url, study_uid=study_uid)


# The collection and the study share their URLs with QIDO-RS search and WADO-RS retrieve.
studies_collection = method_dispatch(GET=qido.search_studies, POST=store)
study_resource = method_dispatch(GET=wado.study_retrieve, POST=store)
