"""The printable report: a PDF made with reportlab (pure Python, no system libraries).

Report text is plain text. reportlab's ``Paragraph`` reads a small XML markup, so every piece of
report text is XML-escaped before it reaches one: ``<script>`` prints as written.

Fonts: DejaVu Sans from Debian's ``fonts-dejavu-core`` (embedded, subset) covers Latin, Greek,
Cyrillic and more; Chinese, Japanese and Korean runs switch to reportlab's built-in Adobe CID fonts
(not embedded: the reader's viewer supplies the glyphs). Without DejaVu the PDF falls back to
Helvetica, which shows only Latin-1.

Output is deterministic (reportlab's invariant mode: no creation date or random document id),
so the same document always yields the same bytes.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.pdf import CJK_FONTS, fonts
from core.timefmt import zone_abbreviation, zone_of
from reporting.delivery import AMENDED, PRELIMINARY, check_document, display_name
from reporting.document import Person, ReportDocument

CRITICAL_CATEGORY = {1: "immediate", 2: "urgent", 3: "non-urgent"}
CHUNK = 3000  # characters per Paragraph: keeps reportlab's line breaking fast on very long lines
MARGIN = 18 * mm


def render_pdf(doc: ReportDocument) -> bytes:
    """The report as a PDF: letterhead, patient and study, sections, fields, critical result,
    signature (or a PRELIMINARY marking), addenda, and "Page n of m" on every page."""
    check_document(doc)
    styles = _styles()
    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 6 * mm,
        title=f"Radiology report {doc.study.accession_number}".strip(),
        author=doc.radiologist.name,
        subject=doc.template_name,
        creator="ReadRoom",
        invariant=True,
    )
    footer = _footer_text(doc)
    template.build(_story(doc, styles), canvasmaker=lambda *a, **k: _NumberedCanvas(*a, footer=footer, **k))
    return buffer.getvalue()


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=9.5, leading=12.5)
    return {
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor=colors.HexColor("#444444")),
        "center": ParagraphStyle("center", parent=body, fontName=bold, fontSize=15, leading=19),
        "right": ParagraphStyle("right", parent=body, alignment=TA_RIGHT),
        "title": ParagraphStyle("title", parent=body, fontName=bold, fontSize=12.5, leading=16, spaceBefore=6),
        "heading": ParagraphStyle("heading", parent=body, fontName=bold, fontSize=10.5, leading=14, spaceBefore=8),
        "label": ParagraphStyle("label", parent=body, fontName=bold),
        "banner": ParagraphStyle(
            "banner", parent=body, fontName=bold, fontSize=11, leading=14, textColor=colors.white, alignment=1
        ),
    }


def _story(doc: ReportDocument, styles) -> list:
    story = [*_letterhead(doc, styles)]
    if doc.status == PRELIMINARY:
        story.append(_banner("PRELIMINARY REPORT — NOT SIGNED, SUBJECT TO CHANGE", colors.HexColor("#b45309"), styles))
    elif doc.status == AMENDED:
        story.append(
            _banner(f"FINAL REPORT — AMENDED ({len(doc.addenda)} ADDENDA BELOW)", colors.HexColor("#1e3a8a"), styles)
        )
    story += _patient_block(doc, styles)
    if doc.clinical_history:
        story.append(Paragraph("Clinical history", styles["heading"]))
        story += _text(doc.clinical_history, styles["body"])
    for section in doc.sections:
        story.append(Paragraph(_markup(section.title), styles["heading"]))
        story += _text(section.text, styles["body"])
    if doc.fields:
        story.append(Paragraph("Structured fields", styles["heading"]))
        rows = [
            [
                Paragraph(_markup(f.label), styles["label"]),
                Paragraph(_markup(f"{f.value} {f.unit}".strip()), styles["body"]),
            ]
            for f in doc.fields
        ]
        story.append(_grid(rows, [60 * mm, None]))
    if doc.critical is not None:
        story.append(_critical(doc, styles))
    story += _signature(doc, styles)
    for addendum in doc.addenda:
        story.append(Paragraph(f"Addendum {addendum.number}", styles["heading"]))
        story += _text(addendum.text, styles["body"])
        story.append(Paragraph(_markup(_signed_line(addendum.signer, addendum.signed_at, doc)), styles["small"]))
    return story


def _letterhead(doc: ReportDocument, styles) -> list:
    center = doc.center
    contact = " · ".join(part for part in (center.address, center.phone) if part)
    reader = ", ".join(part for part in (doc.radiologist.name, doc.radiologist.credentials) if part)
    left = [Paragraph(_markup(center.name), styles["center"])]
    if contact:
        left.append(Paragraph(_markup(contact), styles["small"]))
    right = [Paragraph(_markup(reader), styles["right"])]
    if doc.radiologist.npi:
        right.append(Paragraph(_markup(f"NPI {doc.radiologist.npi}"), styles["right"]))
    head = Table([[left, right]], colWidths=[None, 70 * mm])
    head.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 1, colors.black),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
            ]
        )
    )
    title = f"Radiology report — {doc.template_name}" if doc.template_name else "Radiology report"
    return [head, Paragraph(_markup(title), styles["title"])]


def _patient_block(doc: ReportDocument, styles) -> list:
    patient, study = doc.patient, doc.study
    identifier = f"{patient.patient_id} ({patient.issuer})" if patient.issuer else patient.patient_id
    pairs = [
        ("Patient", display_name(patient.name)),
        ("Patient ID", identifier),
        ("Birth date", patient.birth_date.isoformat() if patient.birth_date else ""),
        ("Sex", patient.sex),
        ("Accession", study.accession_number),
        ("Study date", study.study_date.isoformat() if study.study_date else ""),
        ("Modality", study.modality),
        ("Study", study.description),
        ("Ordering physician", doc.ordering_physician),
        ("Status", doc.status.upper()),
        ("Signed", _local(doc.signed_at, doc) if doc.signed_at else "not signed"),
        ("Study UID", study.study_instance_uid),
    ]
    cells = [
        [Paragraph(_markup(label), styles["label"]), Paragraph(_markup(value or "—"), styles["body"])]
        for label, value in pairs
    ]
    half = (len(cells) + 1) // 2
    rows = [left + (cells[half + i] if half + i < len(cells) else ["", ""]) for i, left in enumerate(cells[:half])]
    return [_grid(rows, [30 * mm, None, 32 * mm, None], lines=False), Spacer(1, 4)]


def _critical(doc: ReportDocument, styles):
    critical = doc.critical
    label = CRITICAL_CATEGORY.get(critical.category, "unknown")
    lines = [
        Paragraph(f"CRITICAL RESULT — category {critical.category} ({label})", styles["label"]),
        Paragraph(
            _markup(
                f"Communicated to {critical.contacted} by {critical.method} at "
                f"{_local(critical.contacted_at, doc)}. Read back: {'yes' if critical.read_back else 'no'}."
            ),
            styles["body"],
        ),
    ]
    box = Table([[lines]], colWidths=[None])
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, colors.HexColor("#b91c1c")),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fef2f2")),
            ]
        )
    )
    return KeepTogether([Spacer(1, 8), box])


def _signature(doc: ReportDocument, styles) -> list:
    if doc.status == PRELIMINARY or doc.signed_at is None:
        line = Paragraph("PRELIMINARY — not signed. This report may change before it is final.", styles["label"])
        return [Spacer(1, 10), line]
    parts = [
        Spacer(1, 12),
        Paragraph("_" * 48, styles["body"]),
        Paragraph(_markup(_signed_line(doc.radiologist, doc.signed_at, doc)), styles["label"]),
    ]
    if doc.content_hash:
        parts.append(Paragraph(_markup(f"Content SHA-256: {doc.content_hash}"), styles["small"]))
    return [KeepTogether(parts)]


def _signed_line(signer: Person, when: datetime, doc: ReportDocument) -> str:
    who = ", ".join(part for part in (signer.name, signer.credentials) if part)
    return f"Electronically signed by {who} on {_local(when, doc)}"


def _banner(text: str, color, styles) -> Table:
    banner = Table([[Paragraph(text, styles["banner"])]], colWidths=[None])
    banner.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), color)]))
    return banner


def _grid(rows, widths, *, lines: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=0)
    commands = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, -1), 0)]
    if lines:
        commands.append(("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")))
    table.setStyle(TableStyle(commands))
    return table


def _text(text: str, style) -> list:
    """Plain text as paragraphs: one per line (blank lines kept), very long lines cut at spaces."""
    flowables = []
    for line in text.splitlines() or [""]:
        if not line.strip():
            flowables.append(Spacer(1, style.leading / 2))
            continue
        flowables += [Paragraph(_markup(chunk), style) for chunk in _chunks(line)]
    return flowables


def _chunks(line: str) -> list[str]:
    chunks = []
    while len(line) > CHUNK:
        cut = line.rfind(" ", CHUNK // 2, CHUNK)
        cut = cut if cut > 0 else CHUNK
        chunks.append(line[:cut])
        line = line[cut:]
    return [*chunks, line]


_CJK = re.compile(
    r"(?P<hangul>[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+)"
    r"|(?P<kana>[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]+)"
    r"|(?P<han>[\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uff65]+)"
)


def _markup(text: str) -> str:
    """Plain text as Paragraph markup: XML-escaped, CJK runs switched to a CID font."""
    out, position = [], 0
    for match in _CJK.finditer(text):
        out.append(escape(text[position : match.start()]))
        out.append(f'<font face="{CJK_FONTS[match.lastgroup]}">{escape(match.group())}</font>')
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _local(moment: datetime, doc: ReportDocument) -> str:
    """``2024-11-05 16:15 CST``: a time in the center's zone with the zone's abbreviation."""
    local = moment.astimezone(zone_of(doc.center.timezone))
    return f"{local:%Y-%m-%d %H:%M} {zone_abbreviation(local)}"


def _footer_text(doc: ReportDocument) -> str:
    who = display_name(doc.patient.name)
    parts = [who, f"Accession {doc.study.accession_number}" if doc.study.accession_number else "", doc.status.upper()]
    return " · ".join(part for part in parts if part)


class _NumberedCanvas(Canvas):
    """Holds each page until the end so the footer can say "Page n of m"."""

    def __init__(self, *args, footer: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._pages: list[dict] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._draw_footer(number, total)
            super().showPage()
        super().save()

    def _draw_footer(self, number: int, total: int) -> None:
        regular, _ = fonts()
        width, _ = self._pagesize
        self.setFont(regular, 7.5)
        self.setFillColor(colors.HexColor("#444444"))
        self.drawString(MARGIN, 10 * mm, self._footer[:110])
        self.drawRightString(width - MARGIN, 10 * mm, f"Page {number} of {total}")
