"""Contracts between a center and a radiology group or an independent radiologist.

``contract_transition`` is the one function that changes a contract's state (``CONTRACT_TRANSITIONS``):
a center's admin drafts the terms and proposes them; each side accepts (audited); the contract is
active once both have accepted the same proposal; sending it back to draft clears both acceptances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Organization, RadiologistProfile
from accounts.policy import Actor
from billing import policy
from billing.models import CONTRACT_TRANSITIONS, DEFAULT_FEE_BASIS_POINTS, Band, Contract, Price, ServiceLevel
from billing.services import states
from billing.services.pricing import currency_of
from core.errors import ApplicationError, NotFound, PermissionDenied

PRIORITIES = ("stat", "urgent", "routine")


def _err(field_name: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(field_name, message, code="invalid_contract")


@dataclass
class ContractTerms:
    """What a center proposes: the other side, the rate card, the fee, service levels and dates."""

    name: str
    starts_on: date
    group: Organization | None = None
    radiologist: RadiologistProfile | None = None
    currency: str = ""
    ends_on: date | None = None
    fee_basis_points: int = DEFAULT_FEE_BASIS_POINTS
    cancellation_fee_cents: int = 0
    rates: list[tuple[str, str, str, int]] = field(default_factory=list)  # modality, priority, band, cents
    service_levels: list[tuple[str, int, int]] = field(default_factory=list)  # priority, minutes, credit cents
    preferred_readers: list[RadiologistProfile] = field(default_factory=list)


def _whole(value, name: str, *, positive: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (positive and value == 0):
        raise _err(name, "Amounts are whole minor units (e.g. cents), "
                   + ("above zero." if positive else "zero or more."))
    return value


def _check(center: Organization, terms: ContractTerms) -> str:
    if not terms.name.strip():
        raise _err("name", "Name the contract.")
    if (terms.group is None) == (terms.radiologist is None):
        raise _err("group", "A contract is with one radiology group or one independent radiologist.")
    if terms.group is not None and terms.group.kind != Organization.Kind.RADIOLOGY_GROUP:
        raise _err("group", f"{terms.group.name} is not a radiology group.")
    currency = terms.currency or currency_of(center)
    if currency != currency_of(center):
        raise _err("currency", f"{center.name} is billed in {currency_of(center)}, not {currency}.")
    if not 0 <= _whole(terms.fee_basis_points, "fee_basis_points") <= 10_000:
        raise _err("fee_basis_points", "The platform fee is between 0 and 100 % (0–10000 basis points).")
    _whole(terms.cancellation_fee_cents, "cancellation_fee_cents")
    if terms.ends_on is not None and terms.ends_on < terms.starts_on:
        raise _err("ends_on", "The contract ends before it starts.")
    seen = set()
    for i, (modality, priority, band, cents) in enumerate(terms.rates):
        if priority not in PRIORITIES or band not in Band.values or not modality:
            raise _err(f"rates[{i}]", "A rate names a modality, a priority (stat, urgent, routine) and a band "
                       "(day, night, weekend, holiday).")
        _whole(cents, f"rates[{i}].cents", positive=True)
        if (modality.upper(), priority, band) in seen:
            raise _err(f"rates[{i}]", "This modality, priority and band are priced twice.")
        seen.add((modality.upper(), priority, band))
    for i, (priority, minutes, credit) in enumerate(terms.service_levels):
        if priority not in PRIORITIES:
            raise _err(f"service_levels[{i}].priority", "Priority is stat, urgent or routine.")
        _whole(minutes, f"service_levels[{i}].turnaround_minutes", positive=True)
        _whole(credit, f"service_levels[{i}].credit_cents")
    readers = {r.pk for r in terms.preferred_readers}
    if terms.group is not None:
        members = set(Membership.objects.filter(organization=terms.group, is_active=True,
                                                user__radiologist_profile__pk__in=readers)
                      .values_list("user__radiologist_profile__pk", flat=True))
        if readers - members:
            raise _err("preferred_readers", f"Preferred readers must be radiologists of {terms.group.name}.")
    elif readers - {terms.radiologist.pk}:
        raise _err("preferred_readers", "A contract with one radiologist prefers only them.")
    return currency


@transaction.atomic
def contract_draft(*, actor: Actor, center: Organization, terms: ContractTerms,
                   request: HttpRequest | None = None) -> Contract:
    """A center's admin writes the terms (a draft, seen by the center alone until proposed)."""
    if not policy.can_draft_for(actor, center):
        raise PermissionDenied("Only the center's admins write its contracts.")
    currency = _check(center, terms)
    contract = Contract.objects.create(
        center=center, group=terms.group, radiologist=terms.radiologist, name=terms.name.strip()[:200],
        currency=currency, fee_basis_points=terms.fee_basis_points,
        cancellation_fee_cents=terms.cancellation_fee_cents, starts_on=terms.starts_on, ends_on=terms.ends_on)
    Price.objects.bulk_create([Price(contract=contract, modality=m.upper(), priority=p, band=b, cents=c)
                               for m, p, b, c in terms.rates])
    ServiceLevel.objects.bulk_create([ServiceLevel(contract=contract, priority=p, turnaround_minutes=m,
                                                   credit_cents=c) for p, m, c in terms.service_levels])
    contract.preferred_readers.set(terms.preferred_readers)
    audit_record(action="contract.drafted", actor=actor.user, request=request, organization_id=center.pk,
                 object_type="billing.contract", object_id=str(contract.public_id))
    return contract


def contract_transition(*, contract: Contract, to: str, actor: Actor | None, reason: str = "",
                        fields: dict | None = None, request: HttpRequest | None = None) -> Contract:
    """The one way a contract changes state (``CONTRACT_TRANSITIONS``)."""
    return states.move(contract, to=to, table=CONTRACT_TRANSITIONS, noun="contract", actor=actor, reason=reason,
                       fields=fields, request=request)


def contract_propose(*, actor: Actor, contract: Contract, request: HttpRequest | None = None) -> Contract:
    if not policy.can_accept_for_center(actor, contract):
        raise NotFound("Contract not found.")
    return contract_transition(contract=contract, to=Contract.Status.PROPOSED, actor=actor, request=request)


def contract_withdraw(*, actor: Actor, contract: Contract, reason: str = "",
                      request: HttpRequest | None = None) -> Contract:
    """Back to draft to change the terms: both acceptances are cleared."""
    if not policy.can_accept_for_center(actor, contract):
        raise NotFound("Contract not found.")
    return contract_transition(contract=contract, to=Contract.Status.DRAFT, actor=actor, reason=reason,
                               request=request, fields={"center_accepted_at": None, "center_accepted_by": None,
                                                        "reader_accepted_at": None, "reader_accepted_by": None})


@transaction.atomic
def contract_accept(*, actor: Actor, contract: Contract, request: HttpRequest | None = None) -> Contract:
    """One side accepts the proposed terms (audited); with both, the contract is active."""
    center_side, reader_side = policy.can_accept_for_center(actor, contract), policy.can_accept_for_reader(
        actor, contract)
    if not (center_side or reader_side):
        if policy.can_see_contract(actor, contract):
            raise PermissionDenied("Only an admin of either side accepts a contract.")
        raise NotFound("Contract not found.")
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if contract.status != Contract.Status.PROPOSED:
        raise ApplicationError(f"This contract is {contract.get_status_display().lower()}: only a proposed "
                               "contract is accepted.", code="invalid_transition", status_code=409)
    now, side = timezone.now(), "center" if center_side else "reader"
    if center_side and contract.center_accepted_at is None:
        contract.center_accepted_at, contract.center_accepted_by = now, actor.user
    elif reader_side and contract.reader_accepted_at is None:
        contract.reader_accepted_at, contract.reader_accepted_by = now, actor.user
    contract.save(update_fields=["center_accepted_at", "center_accepted_by", "reader_accepted_at",
                                 "reader_accepted_by", "updated_at"])
    audit_record(action="contract.accepted", actor=actor.user, request=request, organization_id=contract.center_id,
                 object_type="billing.contract", object_id=str(contract.public_id), extra={"side": side})
    if contract.center_accepted_at and contract.reader_accepted_at:
        return contract_transition(contract=contract, to=Contract.Status.ACTIVE, actor=actor, request=request)
    return contract


def contract_end(*, actor: Actor, contract: Contract, reason: str, request: HttpRequest | None = None) -> Contract:
    if not (policy.can_accept_for_center(actor, contract) or policy.can_accept_for_reader(actor, contract)):
        raise NotFound("Contract not found.")
    if not reason.strip():
        raise _err("reason", "Say why the contract ends.")
    return contract_transition(contract=contract, to=Contract.Status.ENDED, actor=actor, reason=reason.strip(),
                               request=request, fields={"ended_at": timezone.now()})


def service_level(contract: Contract | None, priority: str) -> ServiceLevel | None:
    if contract is None:
        return None
    return contract.service_levels.filter(priority=priority).first()


__all__ = ["ContractTerms", "contract_accept", "contract_draft", "contract_end", "contract_propose",
           "contract_transition", "contract_withdraw", "service_level"]
