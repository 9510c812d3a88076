"""The finance pages through the Django client: contracts drafted and accepted by both sides, invoices
drafted, issued, paid and downloaded (audited), earnings statements, and the finance dashboard."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from billing.models import Contract, Invoice
from billing.services import ledger
from tests.marketplace.helpers import make_radiologist

pytestmark = pytest.mark.django_db




@pytest.fixture
def reader(cast):
    return make_radiologist(user=cast.radiologist)


def _reads(cast, reader, n, at=None):
    for i in range(n):
        ledger.post_read_signed(reference=f"read-{i}", center=cast.center, radiologist=reader, group=None,
                                gross_cents=3500 + i, fee_basis_points=1500, currency="USD",
                                details={"accession": f"ACC{i:04d}", "modality": "CT", "priority": "routine",
                                         "study": "<b>CT HEAD</b>"})


def test_a_contract_is_drafted_proposed_and_accepted_through_the_pages(cast, login, group_admin):
    admin = login(cast.center_admin)
    form = {"name": "Night CT", "group": cast.group.pk, "fee_percent": "12.5", "cancellation_fee": "15.00",
            "starts_on": "2026-01-01", "rates": "CT stat night 42.00\nCT routine night 36.50",
            "service_levels": "stat 45 5.00"}
    bad = admin.post(reverse("contract_create"), {**form, "rates": "CT sometimes night 42"})
    assert bad.status_code == 200
    assert "priority is stat, urgent or routine" in bad.content.decode()
    assert not Contract.objects.exists()
    response = admin.post(reverse("contract_create"), form)
    contract = Contract.objects.get()
    assert response.url == reverse("contract_detail", args=[contract.public_id])
    assert (contract.fee_basis_points, contract.cancellation_fee_cents) == (1250, 1500)
    assert sorted(contract.rates.values_list("cents", flat=True)) == [3650, 4200]
    page = admin.get(response.url).content.decode()
    assert "$42.00" in page
    assert "$36.75" in page  # what the reader earns of $42.00 at 12.5 %
    admin.post(reverse("contract_action", args=[contract.public_id, "propose"]))
    admin.post(reverse("contract_action", args=[contract.public_id, "accept"]))
    login(group_admin).post(reverse("contract_action", args=[contract.public_id, "accept"]))
    contract.refresh_from_db()
    assert contract.status == Contract.Status.ACTIVE
    assert login(cast.technologist).get(reverse("contract_detail", args=[contract.public_id])).status_code == 404


def test_finance_drafts_issues_and_records_payment(cast, login, finance, reader):
    _reads(cast, reader, 3)
    client = login(finance)
    now = timezone.localtime(timezone=ZoneInfo(cast.center.time_zone))
    assert client.post(reverse("invoice_list"), {"month": "2026-13"}).status_code == 200  # refused, shown again
    client.post(reverse("invoice_list"), {"month": f"{now:%Y-%m}"})
    invoice = Invoice.objects.get(center=cast.center)
    assert invoice.total_cents == 3500 + 3501 + 3502
    client.post(reverse("invoice_action", args=[invoice.public_id, "issue"]))
    client.post(reverse("invoice_action", args=[invoice.public_id, "paid"]), {"reference": "WIRE-77"})
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_reference) == (Invoice.Status.PAID, "WIRE-77")
    # The center's finance sees it, downloads it (audited), cannot act on it.
    center_finance = login(cast.center_finance)
    page = center_finance.get(reverse("invoice_detail", args=[invoice.public_id])).content.decode()
    assert "&lt;b&gt;CT HEAD&lt;/b&gt;" in page  # text from the ledger is escaped
    download = center_finance.get(reverse("invoice_download", args=[invoice.public_id, "csv"]))
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [r["accession"] for r in rows[:-1]] == ["ACC0000", "ACC0001", "ACC0002"]
    assert AuditEvent.objects.filter(action="invoice.downloaded", actor=cast.center_finance).exists()
    assert center_finance.post(reverse("invoice_action", args=[invoice.public_id, "void"]),
                               {"reason": "x"}).status_code == 403
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert login(cast.other_admin).get(reverse("invoice_detail", args=[invoice.public_id])).status_code == 404


def test_an_invoice_page_takes_a_constant_number_of_queries(cast, login, finance, reader,
                                                              django_assert_max_num_queries):
    _reads(cast, reader, 40)
    client = login(finance)
    now = timezone.localtime(timezone=ZoneInfo(cast.center.time_zone))
    client.post(reverse("invoice_list"), {"month": f"{now:%Y-%m}"})
    invoice = Invoice.objects.get()
    with django_assert_max_num_queries(25):
        assert client.get(reverse("invoice_detail", args=[invoice.public_id])).status_code == 200


def test_a_radiologist_reads_their_earnings_statement(cast, login, reader):
    _reads(cast, reader, 2)
    other = make_radiologist()
    ledger.post_read_signed(reference="theirs", center=cast.center, radiologist=other, group=None, gross_cents=9999,
                            fee_basis_points=1500, currency="USD")
    client = login(cast.radiologist)
    month = timezone.localtime().strftime("%Y-%m")
    page = client.get(reverse("earnings"), {"month": month}).content.decode()
    assert "ACC0000" in page
    assert "$99.99" not in page
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("earnings"), {"month": month,
                                                                             "format": "csv"}).content.decode())))
    assert sum(int(r["net"]) for r in rows) == -ledger.balance(
        ledger.account("reader_payable", "USD", radiologist=reader))
    assert sum(int(r["gross"]) for r in rows) == 7001
    # A group's statement is for the group's money people, not its readers.
    assert client.get(reverse("earnings"), {"group": cast.group.slug}).status_code == 404


def test_the_finance_dashboard_draws_the_weeks(cast, login, finance, reader):
    _reads(cast, reader, 2)
    page = login(finance).get(reverse("finance_dashboard")).content.decode()
    assert page.count("<svg") == 5
    assert "$70.01" in page  # billed this week
    weeks = login(finance).get(reverse("finance_dashboard"), {"export": "weeks"}).content.decode()
    assert weeks.splitlines()[0] == "week_starting,billed,fees,paid_out,outstanding"
    assert login(cast.platform_staff).get(reverse("finance_dashboard")).status_code == 404


def test_month_boundaries_follow_the_readers_zone(cast, login, reader):
    moment = datetime(2026, 11, 30, 23, 30, tzinfo=ZoneInfo("America/New_York"))  # 1 December in UTC
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("billing.services.ledger.timezone.now", lambda: moment)
        _reads(cast, reader, 1)
    cast.radiologist.time_zone = "America/New_York"
    cast.radiologist.save()
    client = login(cast.radiologist)
    assert "ACC0000" in client.get(reverse("earnings"), {"month": "2026-11"}).content.decode()
    assert "ACC0000" not in client.get(reverse("earnings"), {"month": "2026-12"}).content.decode()
