"""What a read request's life owes, posted to billing's ledger at the moment it is owed.

- Reported: the center owes the locked quote, the reader (or the contracted group) earns it minus the
  locked fee, the platform earns the fee; reported after the deadline under a contract with a
  service level for that priority: the contract's credit to the center.
- Cancelled after a reader claimed it: the contract's cancellation fee, to that reader.
Each posting is once per request (billing's natural keys), so a retried caller cannot post twice.
"""

from __future__ import annotations

from billing.models import Contract
from billing.services import ledger
from billing.services.contracts import service_level
from marketplace.models import ReadRequest


def _payee_group(contract: Contract | None):
    return contract.group if contract is not None and contract.group_id else None


def details(read_request: ReadRequest, reader) -> dict:
    """What an invoice line and an earnings statement print about the read (fixed when posted)."""
    study = read_request.study
    return {"read_request": str(read_request.public_id), "accession": study.accession_number,
            "modality": "/".join(read_request.modalities), "priority": read_request.priority,
            "kind": read_request.kind, "study": study.study_description,
            "reader": reader.name if reader is not None else "", "reader_id": reader.pk if reader is not None else None,
            "reported_at": read_request.reported_at.isoformat() if read_request.reported_at else ""}


def post_reported(read_request: ReadRequest) -> None:
    """Called in the transaction that moves the request to ``reported``."""
    contract = read_request.contract
    reference = str(read_request.public_id)
    about = details(read_request, read_request.assignee)
    payer = read_request.payer or read_request.center  # a group's own peer-review programme pays itself
    ledger.post_read_signed(reference=reference, center=payer, radiologist=read_request.assignee,
                            group=_payee_group(contract), gross_cents=read_request.quoted_cents,
                            fee_basis_points=read_request.fee_basis_points, currency=read_request.currency,
                            details=about)
    level = service_level(contract, read_request.priority)
    if level is not None and read_request.reported_at > read_request.deadline:
        ledger.post_sla_credit(reference=reference, center=read_request.center, credit_cents=level.credit_cents,
                               currency=read_request.currency, details=about)


def post_cancelled_after_claim(read_request: ReadRequest, assignee) -> None:
    """Called when a claimed request is cancelled by the center."""
    contract = read_request.contract
    if contract is None or not contract.cancellation_fee_cents:
        return
    ledger.post_cancellation_fee(reference=str(read_request.public_id), center=read_request.center,
                                 radiologist=assignee, group=_payee_group(contract),
                                 fee_cents_due=contract.cancellation_fee_cents, currency=read_request.currency,
                                 details=details(read_request, assignee))
