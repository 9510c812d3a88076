"""What an uploaded credential document may be: a PDF or an image, judged by its bytes, and not too large."""

from __future__ import annotations

from django.conf import settings

# (magic bytes at offset 0, detected content type)
SIGNATURES: list[tuple[bytes, str]] = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]
IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})


def max_document_bytes() -> int:
    return getattr(settings, "CREDENTIAL_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024)


def sniff_content_type(head: bytes) -> str | None:
    """The content type the first bytes prove, or None (the upload's own claim is never trusted)."""
    for magic, content_type in SIGNATURES:
        if head.startswith(magic):
            return content_type
    return None
