"""The machinery of the blinding tests (test_quality_blinding): people with identifying details, a checklist
entry (a URL by name), and a walk that keeps every response one person receives as searchable text — headers,
HTML, JSON, PDF text, and every text value of DICOM Part 10 files (single or multipart)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pydicom
from django.core import mail
from django.urls import reverse
from pypdf import PdfReader

from accounts.models import RadiologistProfile

BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}  # pixel data and the like: no names in there


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    email: str
    npi: str

    @property
    def secrets(self) -> list[str]:
        """What would identify them: the name as written and in DICOM's PN form, the surname alone (as in
        "Dr Quenneville"), the email and the NPI."""
        return [f"{self.first} {self.last}", f"{self.last}^{self.first}", self.last, self.email, self.npi]


def become(profile: RadiologistProfile, person: Person) -> RadiologistProfile:
    user = profile.user
    user.full_name, user.email = f"{person.first} {person.last}", person.email
    user.save(update_fields=["full_name", "email"])
    profile.display_name, profile.credentials_line, profile.npi = "", "MD", person.npi
    profile.save(update_fields=["display_name", "credentials_line", "npi"])
    return profile


# --- what a response says, as text ----------------------------------------------------------------------

def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _dicom_text(data: bytes) -> str:
    """Every text value of a Part 10 file, sequences included (pixel data and other binary values left out)."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    elements = [*ds.file_meta.iterall(), *ds.iterall()] if hasattr(ds, "file_meta") else list(ds.iterall())
    return "\n".join(str(e.value) for e in elements if e.VR not in BINARY_VRS and e.VR != "SQ")


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join([str(reader.metadata or ""), *(page.extract_text() for page in reader.pages)])


def _parts(content_type: str, data: bytes) -> list[tuple[str, bytes]]:
    boundary = next(p.split("=", 1)[1].strip('"') for p in content_type.split(";") if p.strip().startswith("boundary="))
    parts = []
    for piece in data.split(b"--" + boundary.encode())[1:-1]:
        head, _, content = piece.strip(b"\r\n").partition(b"\r\n\r\n")
        part_type = next((line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-type:")), "")
        parts.append((part_type, content))
    return parts


def _text_of(content_type: str, data: bytes) -> str:
    if content_type.startswith("multipart/related"):
        return "\n".join(_text_of(part_type, content) for part_type, content in _parts(content_type, data))
    if content_type.startswith("application/dicom") and not content_type.startswith("application/dicom+"):
        return _dicom_text(data)
    if content_type.startswith("application/pdf"):
        return _pdf_text(data)
    if content_type.startswith(("image/", "application/octet-stream")):
        return ""  # pixels
    return data.decode("utf-8", errors="replace")


def readable(response) -> str:
    """The headers (Content-Disposition's file name among them) and the body as text."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return headers + "\n" + _text_of(response.get("Content-Type", ""), _body(response))


# --- the checklist and who walks it ---------------------------------------------------------------------

@dataclass(frozen=True)
class Visit:
    """One entry of a checklist: a URL by name; ``shown``: it must answer 200 (the walk reaches real content)."""

    name: str
    args: tuple = ()
    query: dict | None = None
    accept: str = ""
    htmx: bool = False
    shown: bool = False

    def url(self) -> str:
        return reverse(self.name, args=self.args)

    @property
    def label(self) -> str:
        return " ".join(filter(None, [self.name, self.url(), self.accept]))


class Walk:
    """Every response one person receives, kept as text to search."""

    def __init__(self, client):
        self.client = client
        self.seen: list[tuple[str, int, str]] = []

    def keep(self, label: str, response):
        self.seen.append((label, response.status_code, readable(response)))
        return response

    def get(self, visit: Visit):
        headers = {"HTTP_ACCEPT": visit.accept} if visit.accept else {}
        if visit.htmx:
            headers["HTTP_HX_REQUEST"] = "true"
        response = self.keep(visit.label, self.client.get(visit.url(), visit.query or {}, **headers))
        if visit.shown:
            assert response.status_code == 200, (visit.label, response.status_code, _body(response)[:300])
        return response

    def post(self, label: str, url: str, data=None, **extra):
        response = self.keep(label, self.client.post(url, data or {}, **extra))
        if 300 <= response.status_code < 400:
            self.keep(f"{label} → {response['Location']}", self.client.get(response["Location"]))
        return response

    def walk(self, visits: list[Visit]) -> None:
        for visit in visits:
            self.get(visit)

    def answered_badly(self) -> list[tuple[str, int]]:
        return [(label, status) for label, status, _ in self.seen if not (200 <= status < 400 or status == 404)]

    def leaks(self, person: Person) -> list[tuple[str, str]]:
        return [(label, secret) for label, _, text in self.seen for secret in person.secrets
                if secret.lower() in text.lower()]


def keep_mail(walk: Walk, person: Person) -> None:
    """The emails sent to ``person`` are responses they receive too."""
    for message in mail.outbox:
        if person.email in message.to:
            text = "\n".join([message.subject, message.body, *(str(body) for body, _ in message.alternatives)])
            walk.seen.append((f"email {message.subject}", 200, text))


__all__ = ["Person", "Visit", "Walk", "become", "keep_mail", "readable"]
