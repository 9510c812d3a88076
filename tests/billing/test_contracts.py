"""Contracts: drafted by the center, proposed, accepted by both sides (audited), active, ended."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.models import AuditEvent
from billing.models import Contract
from billing.services import contracts
from core.errors import ApplicationError, NotFound, PermissionDenied
from tests.marketplace.helpers import actor, make_radiologist

pytestmark = pytest.mark.django_db


def terms(cast, **changes):
    values = {"name": "Night CT cover", "starts_on": date(2026, 1, 1), "group": cast.group,
              "rates": [("CT", "routine", "night", 3200), ("CT", "stat", "night", 3600)],
              "service_levels": [("stat", 45, 500)]}
    return contracts.ContractTerms(**{**values, **changes})


def test_both_sides_accept_and_the_contract_is_active(cast, group_admin):
    contract = contracts.contract_draft(actor=actor(cast.center_admin), center=cast.center, terms=terms(cast))
    assert contract.status == Contract.Status.DRAFT
    assert contract.currency == "USD"
    assert contract.rates.count() == 2
    contracts.contract_propose(actor=actor(cast.center_admin), contract=contract)
    contracts.contract_accept(actor=actor(cast.center_admin), contract=contract)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.PROPOSED  # one side is not enough
    contracts.contract_accept(actor=actor(group_admin), contract=contract)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.ACTIVE
    assert contract.reader_accepted_by == group_admin
    sides = sorted(e.extra["side"] for e in AuditEvent.objects.filter(action="contract.accepted"))
    assert sides == ["center", "reader"]
    assert AuditEvent.objects.filter(action="contract.active").exists()
    contracts.contract_end(actor=actor(group_admin), contract=contract, reason="Group disbanded")
    contract.refresh_from_db()
    assert contract.status == Contract.Status.ENDED
    with pytest.raises(ApplicationError) as refused:
        contracts.contract_propose(actor=actor(cast.center_admin), contract=contract)
    assert refused.value.status_code == 409


def test_sending_back_to_draft_clears_acceptances(cast, group_admin):
    contract = contracts.contract_draft(actor=actor(cast.center_admin), center=cast.center, terms=terms(cast))
    contracts.contract_propose(actor=actor(cast.center_admin), contract=contract)
    contracts.contract_accept(actor=actor(group_admin), contract=contract)
    contracts.contract_withdraw(actor=actor(cast.center_admin), contract=contract, reason="new rates")
    contract.refresh_from_db()
    assert contract.status == Contract.Status.DRAFT
    assert contract.reader_accepted_at is None


def test_who_may_act(cast, group_admin):
    with pytest.raises(PermissionDenied):
        contracts.contract_draft(actor=actor(cast.technologist), center=cast.center, terms=terms(cast))
    contract = contracts.contract_draft(actor=actor(cast.center_admin), center=cast.center, terms=terms(cast))
    with pytest.raises(NotFound):
        contracts.contract_propose(actor=actor(cast.other_admin), contract=contract)
    contracts.contract_propose(actor=actor(cast.center_admin), contract=contract)
    with pytest.raises(NotFound):
        contracts.contract_accept(actor=actor(cast.other_admin), contract=contract)
    with pytest.raises(PermissionDenied):  # the center's finance sees the contract but does not sign it
        contracts.contract_accept(actor=actor(cast.center_finance), contract=contract)


@pytest.mark.parametrize(("changes", "field"), [
    ({"currency": "CAD"}, "currency"),
    ({"fee_basis_points": 10_001}, "fee_basis_points"),
    ({"fee_basis_points": 12.5}, "fee_basis_points"),
    ({"cancellation_fee_cents": -1}, "cancellation_fee_cents"),
    ({"ends_on": date(2025, 12, 31)}, "ends_on"),
    ({"rates": [("CT", "routine", "day", 0)]}, "rates[0].cents"),
    ({"rates": [("CT", "routine", "day", 10.5)]}, "rates[0].cents"),
    ({"rates": [("CT", "sometime", "day", 100)]}, "rates[0]"),
    ({"rates": [("CT", "routine", "day", 100), ("ct", "routine", "day", 200)]}, "rates[1]"),
    ({"service_levels": [("stat", 0, 0)]}, "service_levels[0].turnaround_minutes"),
    ({"name": " "}, "name"),
    ({"group": None}, "group"),
])
def test_bad_terms_are_refused_naming_the_field(cast, changes, field):
    with pytest.raises(ApplicationError) as refused:
        contracts.contract_draft(actor=actor(cast.center_admin), center=cast.center, terms=terms(cast, **changes))
    assert field in refused.value.fields
    assert not Contract.objects.exists()


def test_preferred_readers_belong_to_the_contracted_side(cast):
    member = make_radiologist(user=cast.radiologist)
    outsider = make_radiologist()
    contract = contracts.contract_draft(actor=actor(cast.center_admin), center=cast.center,
                                        terms=terms(cast, preferred_readers=[member]))
    assert list(contract.preferred_readers.all()) == [member]
    with pytest.raises(ApplicationError) as refused:
        contracts.contract_draft(actor=actor(cast.center_admin), center=cast.center,
                                 terms=terms(cast, name="Other", preferred_readers=[outsider]))
    assert "preferred_readers" in refused.value.fields
