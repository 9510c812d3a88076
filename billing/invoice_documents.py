"""An invoice as a PDF and as CSV (what the center's accounts payable file and import)."""

from __future__ import annotations

import csv
import io
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.models import Invoice
from core.pdf import fonts

CSV_HEADER = ["invoice", "posted_at_utc", "kind", "accession", "modality", "priority", "reader", "description",
              "amount_minor_units", "currency"]


def money(cents: int, currency: str) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{currency} {abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def invoice_csv(invoice: Invoice, lines) -> str:
    """One row per line, amounts in integer minor units (no rounding on import), times in UTC."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    label = invoice.number or f"draft-{invoice.public_id}"
    for line in lines:
        writer.writerow([label, line.posted_at.isoformat(), line.kind, line.accession, line.modality, line.priority,
                         line.reader, line.description, line.amount_cents, invoice.currency])
    writer.writerow([label, "", "total", "", "", "", "", "", invoice.total_cents, invoice.currency])
    return out.getvalue()


def invoice_pdf(invoice: Invoice, lines) -> bytes:
    """The printable invoice: who owes whom, the period, one row per line, the total, page numbers."""
    regular, bold = fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=11)
    heading = ParagraphStyle("heading", fontName=bold, fontSize=14, leading=18)
    zone = ZoneInfo(invoice.center.time_zone)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=LETTER, leftMargin=16 * mm, rightMargin=16 * mm,
                                 title=f"Invoice {invoice.number or 'draft'}", author="ReadRoom")
    title = f"Invoice {escape(invoice.number)}" if invoice.number else "Draft invoice"
    story = [Paragraph(f"ReadRoom — {title}", heading), Spacer(1, 4 * mm),
             Paragraph(f"Billed to: {escape(invoice.center.legal_name or invoice.center.name)}", body),
             Paragraph(f"Period: {invoice.period_start:%d %b %Y} – {invoice.period_end:%d %b %Y}", body)]
    if invoice.due_on:
        story.append(Paragraph(f"Due: {invoice.due_on:%d %b %Y}", body))
    story.append(Spacer(1, 5 * mm))
    rows = [["Date", "Accession", "Modality", "Priority", "Reader", "Description", "Amount"]]
    for line in lines:
        rows.append([f"{line.posted_at.astimezone(zone):%Y-%m-%d}", Paragraph(escape(line.accession), body),
                     line.modality, line.priority, Paragraph(escape(line.reader), body),
                     Paragraph(escape(line.description), body), money(line.amount_cents, invoice.currency)])
    rows.append(["", "", "", "", "", Paragraph("<b>Total</b>", body), money(invoice.total_cents, invoice.currency)])
    table = Table(rows, repeatRows=1, colWidths=[20 * mm, 24 * mm, 17 * mm, 16 * mm, 30 * mm, 50 * mm, 26 * mm])
    table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), regular, 8), ("FONT", (0, 0), (-1, 0), bold, 8),
                               ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
                               ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.grey),
                               ("ALIGN", (-1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(table)

    def page_number(canvas, doc):
        canvas.setFont(regular, 8)
        canvas.drawRightString(LETTER[0] - 16 * mm, 10 * mm, f"Page {doc.page}")

    document.build(story, onFirstPage=page_number, onLaterPages=page_number)
    return buffer.getvalue()
