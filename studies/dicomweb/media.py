"""Content negotiation for WADO-RS (PS3.18 8.7): which media type and transfer syntax to answer with.

DICOM files go out as stored when the client allows it (``transfer-syntax=*``, as OHIF, Orthanc and
dicomweb-client ask), else in the syntax asked for (Explicit VR Little Endian when none is named),
transcoded with the installed codecs (``studies.dicomweb.transcode``), else 406. Frames go out in their
stored syntax whenever the client allows it, else decompressed to explicit VR little endian when the
client asks for uncompressed pixels and a decoder is installed, else 406.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.uid import UID

from core.errors import ApplicationError
from studies import render
from studies.dicomweb import transcode
from studies.models import Instance

DICOM = "application/dicom"
OCTET = "application/octet-stream"

# PS3.18 Table 8.7.3-5: the media types of compressed frames, by transfer syntax (first: what we answer with).
COMPRESSED_FRAME_TYPES: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.1.2.5": ("image/x-dicom-rle", "image/dicom-rle"),
    "1.2.840.10008.1.2.4.50": ("image/jpeg",),
    "1.2.840.10008.1.2.4.51": ("image/jpeg",),
    "1.2.840.10008.1.2.4.57": ("image/jpeg",),
    "1.2.840.10008.1.2.4.70": ("image/jpeg",),
    "1.2.840.10008.1.2.4.80": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.81": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.90": ("image/jp2",),
    "1.2.840.10008.1.2.4.91": ("image/jp2",),
    "1.2.840.10008.1.2.4.92": ("image/jpx",),
    "1.2.840.10008.1.2.4.93": ("image/jpx",),
    "1.2.840.10008.1.2.4.201": ("image/jphc",),
    "1.2.840.10008.1.2.4.202": ("image/jphc",),
    "1.2.840.10008.1.2.4.203": ("image/jphc",),
}
# Plain application/octet-stream without a transfer-syntax parameter means uncompressed (PS3.18 8.7.3.5.2).
OCTET_DEFAULT_SYNTAX = render.EXPLICIT_LE
# application/dicom without a transfer-syntax parameter means Explicit VR Little Endian (PS3.18 8.7.3.5.2).
DEFAULT_INSTANCE_SYNTAX = render.EXPLICIT_LE


class NotAcceptable(ApplicationError):
    """None of the media types in the Accept header can be produced without transcoding."""

    status_code = 406

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_acceptable")


def syntax_name(uid: str) -> str:
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else uid


# --- Accept -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str]
    q: float

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    def inner_type(self, default: str) -> str:
        """The media type of the parts this range asks for (the range itself unless multipart)."""
        if self.type == "multipart/related":
            return self.params.get("type", default).lower()
        if self.type == "multipart/*":
            return "*/*"
        return self.type


def _split(text: str, separator: str) -> list[str]:
    """Split outside double quotes."""
    out, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return out


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header, most preferred first (q=0 ranges dropped)."""
    ranges = []
    for position, raw in enumerate(_split(header or "", ",")):
        pieces = _split(raw, ";")
        media_type = pieces[0].strip().lower()
        if not media_type:
            continue
        if media_type == "*":
            media_type = "*/*"
        params, q = {}, 1.0
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').strip()
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif name:
                params[name] = value
        if q > 0:
            ranges.append((-q, position, MediaRange(media_type, params, q)))
    return [r for _, _, r in sorted(ranges, key=lambda item: item[:2])] or [MediaRange("*/*", {}, 1.0)]


def type_matches(asked: str, offered: str) -> bool:
    if asked in ("*/*", offered):
        return True
    return asked.endswith("/*") and asked.split("/")[0] == offered.split("/")[0]


@dataclass(frozen=True)
class InstanceAnswer:
    """How DICOM files go out: ``single`` (a bare application/dicom body) or ``multipart``, and in which
    transfer syntax: ``None`` as stored (``transfer-syntax=*``), else that syntax (transcoded where the
    stored one differs)."""

    mode: str
    syntax: str | None


def negotiate_instances(accept: str, stored_syntaxes: set[str], *, single_allowed: bool) -> InstanceAnswer:
    """Which form and transfer syntax to send instances in (PS3.18 8.7.3.5), or 406.

    ``transfer-syntax=*`` keeps the stored syntaxes (the fast path: what OHIF, Orthanc and dicomweb-client
    ask for); no transfer-syntax parameter means Explicit VR Little Endian, the default of application/dicom;
    a named syntax is sent as stored when every file already is in it, else produced by transcoding when an
    installed codec can produce it from every stored syntax (``transcode.can_produce``), else the next range
    is tried, and 406 when none fits.
    """
    refused: list[str] = []
    for media_range in parse_accept(accept):
        if media_range.type in ("*/*", "multipart/*", "application/*"):
            mode = "multipart"
        elif media_range.type == "multipart/related":
            if not type_matches(media_range.inner_type(DICOM), DICOM):
                continue
            mode = "multipart"
        elif media_range.type == DICOM and single_allowed:
            mode = "single"
        else:
            continue
        syntax = (media_range.transfer_syntax or "").strip() or DEFAULT_INSTANCE_SYNTAX
        if syntax == "*" or stored_syntaxes == {syntax}:
            return InstanceAnswer(mode, None)
        if all(transcode.can_produce(stored, syntax) for stored in stored_syntaxes):
            return InstanceAnswer(mode, syntax)
        refused.append(syntax)
    stored = ", ".join(syntax_name(s) for s in sorted(stored_syntaxes))
    if refused:
        asked = ", ".join(syntax_name(s) for s in dict.fromkeys(refused))
        raise NotAcceptable(f"Stored as {stored}; no codec installed here can transcode it to {asked}. Ask for "
                            f"transfer-syntax=* (as stored), {render.EXPLICIT_LE} (uncompressed) or the stored "
                            "syntax.")
    raise NotAcceptable('Supported: multipart/related; type="application/dicom" (with transfer-syntax=* for the '
                        f"stored syntax: {stored}, or a syntax to transcode to).")


@dataclass(frozen=True)
class FrameAnswer:
    """How frames go out: ``stored`` bytes, ``decoded`` to native, labelled ``media_type; transfer-syntax``."""

    mode: str
    media_type: str
    syntax: str

    @property
    def part_type(self) -> str:
        return f"{self.media_type}; transfer-syntax={self.syntax}"


def _frame_offers(instance: Instance) -> list[FrameAnswer]:
    """What we can send for this instance's frames, best first."""
    stored = instance.transfer_syntax_uid
    if stored in render.NATIVE_LE or stored == render.DEFLATED_LE:
        # Native little endian pixel bytes are the same in implicit and explicit VR.
        label = stored if stored in render.NATIVE_LE else render.EXPLICIT_LE
        others = [s for s in render.NATIVE_LE if s != label]
        return [FrameAnswer("stored", OCTET, label)] + [FrameAnswer("stored", OCTET, s) for s in others]
    if stored == render.EXPLICIT_BE:
        return [FrameAnswer("stored", OCTET, stored)]
    offers = [FrameAnswer("stored", media_type, stored) for media_type in COMPRESSED_FRAME_TYPES.get(stored, ())]
    offers.append(FrameAnswer("stored", OCTET, stored))
    if render.can_decode(stored):
        offers.append(FrameAnswer("decoded", OCTET, render.EXPLICIT_LE))
    return offers


def _offer_fits(asked_type: str, asked_syntax: str | None, offer: FrameAnswer) -> bool:
    if not type_matches(asked_type, offer.media_type):
        return False
    if asked_syntax == "*":
        return True
    if asked_syntax:
        return asked_syntax == offer.syntax
    if asked_type.endswith("/*"):
        return offer.mode == "stored"  # no syntax named and any type: as stored
    if offer.media_type == OCTET:
        return offer.syntax == OCTET_DEFAULT_SYNTAX
    return True  # a compressed media type names its own family of syntaxes


def negotiate_frames(accept: str, instance: Instance) -> FrameAnswer:
    """Stored syntax whenever the client allows it (``transfer-syntax=*``: OHIF), else decompressed, else 406."""
    offers = _frame_offers(instance)
    for media_range in parse_accept(accept):
        asked_type = media_range.inner_type(OCTET)
        for offer in offers:
            if _offer_fits(asked_type, media_range.transfer_syntax, offer):
                return offer
    stored = syntax_name(instance.transfer_syntax_uid)
    raise NotAcceptable(f"Frames of this instance are stored as {stored}. Ask for multipart/related; "
                        "type=application/octet-stream; transfer-syntax=* (as stored) or for transfer-syntax="
                        f"{render.EXPLICIT_LE} (uncompressed); other syntaxes are not transcoded.")


