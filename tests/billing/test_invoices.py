"""Invoices: a month of a center's receivable, issued, paid (posted to the ledger once) or void."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from accounts.models import AuditEvent
from billing.invoice_documents import invoice_csv, invoice_pdf
from billing.models import Invoice, JournalTransaction, LedgerAccount
from billing.services import invoices, ledger
from core.errors import ApplicationError, NotFound, PermissionDenied
from tests.marketplace.helpers import actor, make_radiologist

Purpose = LedgerAccount.Purpose
pytestmark = pytest.mark.django_db
CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def reader(cast):
    return make_radiologist(name="Ana María Núñez")


def _read_at(cast, reader, reference, moment, gross=3500):
    """A signed read posted at ``moment`` (the ledger's rows are frozen: its clock is patched)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("billing.services.ledger.timezone.now", lambda: moment)
        return ledger.post_read_signed(reference=reference, center=cast.center, radiologist=reader, group=None,
                                       gross_cents=gross, fee_basis_points=1500, currency="USD",
                                       details={"accession": f"ACC-{reference}", "modality": "CT",
                                                "priority": "stat", "reader": reader.name, "study": "CT HEAD"})


@pytest.fixture
def november(cast, reader):
    """Two reads in November in Chicago (one at 23:30 on the 30th, already 1 December in UTC) and one in December."""
    moments = {"a": datetime(2026, 11, 3, 9, 0, tzinfo=CHICAGO), "b": datetime(2026, 11, 30, 23, 30, tzinfo=CHICAGO),
               "c": datetime(2026, 12, 1, 0, 30, tzinfo=CHICAGO)}
    return {key: _read_at(cast, reader, key, moment) for key, moment in moments.items()}


def test_the_month_is_the_centers_month(cast, november):
    invoice = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    assert sorted(line.accession for line in invoice.lines.all()) == ["ACC-a", "ACC-b"]
    assert invoice.total_cents == 7000
    assert (invoice.period_start.isoformat(), invoice.period_end.isoformat()) == ("2026-11-01", "2026-11-30")
    december = invoices.invoice_generate(center=cast.center, year=2026, month=12)
    assert [line.accession for line in december.lines.all()] == ["ACC-c"]


def test_regenerating_a_draft_rebuilds_it_and_an_issued_one_stays(cast, november, finance, reader):
    first = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    again = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    assert first.pk == again.pk
    assert again.lines.count() == 2
    invoices.invoice_issue(actor=actor(finance), invoice=again)
    assert again.number.startswith("RR-202611-")
    _read_at(cast, reader, "late", datetime(2026, 11, 15, tzinfo=CHICAGO))  # posted after November was issued
    issued = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    assert issued.lines.count() == 2
    assert "ACC-late" in [line.accession for line in invoices.invoice_generate(center=cast.center, year=2026,
                                                                                 month=12).lines.all()]


def test_paying_posts_cash_against_the_receivable_once(cast, november, finance):
    invoice = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    invoices.invoice_issue(actor=actor(finance), invoice=invoice)
    with pytest.raises(ApplicationError) as refused:
        invoices.invoice_mark_paid(actor=actor(finance), invoice=invoice, reference=" ")
    assert "reference" in refused.value.fields
    invoices.invoice_mark_paid(actor=actor(finance), invoice=invoice, reference="WIRE 2026-12-04 #881")
    receivable = ledger.account(Purpose.CENTER_RECEIVABLE, "USD", organization=cast.center)
    assert ledger.balance(receivable) == 3500  # December's read is still owed
    with pytest.raises(ApplicationError) as again:
        invoices.invoice_mark_paid(actor=actor(finance), invoice=invoice, reference="twice")
    assert again.value.status_code == 409
    assert JournalTransaction.objects.filter(kind="invoice_paid").count() == 1
    assert AuditEvent.objects.filter(action="invoice.paid", object_id=str(invoice.public_id)).exists()


def test_a_void_invoice_releases_its_lines(cast, november, finance):
    invoice = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    invoices.invoice_issue(actor=actor(finance), invoice=invoice)
    invoices.invoice_void(actor=actor(finance), invoice=invoice, reason="Wrong legal name")
    replacement = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    assert replacement.pk != invoice.pk
    assert replacement.lines.count() == 2
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.VOID


def test_who_may_act_on_invoices(cast, november, finance):
    invoice = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    with pytest.raises(PermissionDenied):  # the center's finance sees its invoice but does not issue it
        invoices.invoice_issue(actor=actor(cast.center_finance), invoice=invoice)
    with pytest.raises(NotFound):
        invoices.invoice_issue(actor=actor(cast.other_admin), invoice=invoice)
    empty = invoices.invoice_generate(center=cast.center, year=2026, month=10)
    with pytest.raises(ApplicationError) as refused:
        invoices.invoice_issue(actor=actor(finance), invoice=empty)
    assert "lines" in refused.value.fields


def test_csv_and_pdf_carry_every_line_and_the_total(cast, november, finance):
    invoice = invoices.invoice_generate(center=cast.center, year=2026, month=11)
    invoices.invoice_issue(actor=actor(finance), invoice=invoice)
    lines = list(invoice.lines.all())
    rows = list(csv.DictReader(io.StringIO(invoice_csv(invoice, lines))))
    assert [r["accession"] for r in rows] == ["ACC-a", "ACC-b", ""]
    assert rows[-1]["amount_minor_units"] == "7000"
    assert sum(int(r["amount_minor_units"]) for r in rows[:-1]) == 7000
    pages = PdfReader(io.BytesIO(invoice_pdf(invoice, lines))).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())  # a cell's text may wrap
    assert invoice.number in text
    assert "ACC-a" in text
    assert "Ana María Núñez" in text
    assert "USD 70.00" in text
    assert "Page 1" in text
