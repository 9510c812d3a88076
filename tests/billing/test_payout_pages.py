"""Payout pages: finance pays from the owed list (Stripe off) and traces a payment to its reads; a Stripe
payout's page traces every cent to transfers, postings and reads and lists each difference; a
radiologist sets up payouts from the earnings page."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from accounts.credentials.models import RadiologistProfile
from accounts.policy import actor_for_user
from billing.models import ManualPayout, StripePayout, Transfer
from billing.services import connect, transfers
from billing.services.webhooks import payout_refresh
from tests.billing.fake_stripe import earning

pytestmark = pytest.mark.django_db



@pytest.fixture
def reader(cast):
    return RadiologistProfile.objects.create(user=cast.radiologist, home_time_zone="America/Chicago")


def test_finance_pays_by_hand_from_the_owed_list_and_traces_the_payment(cast, login, finance, reader, stripe_off):
    reads = [earning(cast.center, reader, cents) for cents in (10_000, 4_000)]
    client = login(finance)
    page = client.get(reverse("payout_list"))
    owed = page.context["owed"]
    assert [(row.payee, row.amount_cents) for row in owed] == [(reader.name, 8_500 + 3_400)]
    exported = list(csv.DictReader(io.StringIO(client.get(reverse("payout_list"), {"format": "csv"}).content
                                               .decode())))
    assert exported[0]["amount_cents"] == "11900"
    row = owed[0]
    form = {"payee_type": row.payee_type, "payee_id": row.payee_id, "currency": "USD", "amount_cents": "11900",
            "as_of": page.context["as_of"].isoformat(), "reference": "BANK-2026-12-05"}
    assert client.post(reverse("payout_list"), {**form, "amount_cents": "11899"}).status_code == 302
    assert not ManualPayout.objects.exists()  # the wrong amount is refused with a message
    assert client.post(reverse("payout_list"), {**form, "as_of": "yesterday"}).status_code == 302
    assert not ManualPayout.objects.exists()
    client.post(reverse("payout_list"), form)
    payment = ManualPayout.objects.get()
    detail = client.get(reverse("manual_payout_detail", args=[payment.public_id])).content.decode()
    for read in reads:
        assert read.reference[:10] in detail
    traced = list(csv.DictReader(io.StringIO(client.get(reverse("manual_payout_detail", args=[payment.public_id]),
                                                        {"format": "csv"}).content.decode())))
    assert sorted(int(r["amount_cents"]) for r in traced) == [3_400, 8_500]
    assert {r["read_request"] for r in traced} == {read.reference for read in reads}
    assert login(cast.center_finance).get(reverse("payout_list")).status_code == 404
    # The reader's statement shows which payment carried each read.
    statement = list(csv.DictReader(io.StringIO(login(cast.radiologist).get(
        reverse("earnings"), {"format": "csv"}).content.decode())))
    reads_rows = [r for r in statement if r["kind"] == "read_signed"]
    assert {r["payout"] for r in reads_rows} == {"by hand: BANK-2026-12-05"}
    assert {r["transfer"] for r in reads_rows} == {"paid by hand"}


def test_a_stripe_payout_is_traced_to_its_reads_with_each_difference(cast, login, finance, reader, fake_stripe):
    account = connect.connected_account_create(actor=actor_for_user(reader.user),
                                               payee=connect.Payee(radiologist=reader))
    fake_stripe.set_account(account.stripe_account_id)
    connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
    reads = [earning(cast.center, reader, cents) for cents in (10_000, 2_000)]
    transfers.transfers_run()
    remote = fake_stripe.create_payout(account.stripe_account_id)
    fake_stripe.tamper(Transfer.objects.get(earning=reads[1]).stripe_transfer_id, -1)  # Stripe's cent short
    payout = payout_refresh(stripe_payout_id=remote["id"], stripe_account_id=account.stripe_account_id)
    client = login(finance)
    client.post(reverse("payout_detail", args=[payout.public_id]))  # reconcile against the fake Stripe
    payout.refresh_from_db()
    page = client.get(reverse("payout_detail", args=[payout.public_id])).content.decode()
    assert reads[0].reference[:10] in page
    assert "off by one cent" in page
    rows = list(csv.DictReader(io.StringIO(client.get(reverse("payout_detail", args=[payout.public_id]),
                                                      {"format": "csv"}).content.decode())))
    matched = [r for r in rows if not r["issue"]]
    assert [r["read_request"] for r in matched] == [reads[0].reference]
    assert any(r["read_request"] == reads[1].reference and r["issue"].startswith("amount_differs") for r in rows)
    listing = client.get(reverse("payout_list")).content.decode()
    assert "1 difference" in listing
    assert StripePayout.objects.get().reconciled_at is not None
    statement = {r["accession"]: r for r in csv.DictReader(io.StringIO(login(cast.radiologist).get(
        reverse("earnings"), {"format": "csv"}).content.decode())) if r["kind"] == "read_signed"}
    first = statement[reads[0].details["accession"]]
    assert first["transfer"].startswith("tr_")
    assert first["payout"] == remote["id"]


def test_a_radiologist_goes_to_stripe_to_set_up_payouts(cast, login, reader, fake_stripe):
    client = login(cast.radiologist)
    assert "Set up payouts" in client.get(reverse("earnings")).content.decode()
    response = client.post(reverse("payout_onboarding"))
    assert response.status_code == 302
    assert response["Location"].startswith(("http://", "https://"))
    assert connect.account_of(connect.Payee(radiologist=reader)) is not None
    assert "cannot receive payouts yet" in client.get(reverse("earnings")).content.decode()
    assert login(cast.center_admin).post(reverse("payout_onboarding")).status_code == 404
