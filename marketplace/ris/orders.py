"""Orders become read requests (issue 23, item 2): ``order_apply`` is the one entry for a new, cancelled or
changed order, from HL7 v2 (``marketplace.ris.hl7_in``) or FHIR (``marketplace.ris.fhir``).

An order and its study meet whichever comes first: a new order looks for a study of the center with its
accession number; a study that arrives later finds the waiting order through ``on_studies_received`` (the
studies app's hook). The same accession with another patient id holds the order for a person. The order's
states move only through ``ris_order_transition`` (table ``RIS_ORDER_TRANSITIONS``), each move audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.policy import ANONYMOUS, Actor
from core.errors import ApplicationError, PermissionDenied
from core.sql import insert_rows, quoted, sent_together
from marketplace.models import FINISHED_STATES, Audience, Kind, Priority, ReadRequest, Status
from marketplace.ris import amend
from marketplace.ris_models import RIS_ORDER_TRANSITIONS, Hl7Interface, RisOrder, RisOrderStatus
from marketplace.services.requests import PostData, center_settings, read_request_create, read_request_withdraw
from studies.models import Study

NEW, CANCEL, CHANGE = "NW", "CA", "XO"  # ORC-1 order control codes
SIGNED = frozenset({Status.REPORTED, Status.CLOSED})

# Where each OrderData field sits in the message, per source: errors name what the sender wrote.
LOCATIONS = {
    "hl7": {"control": "ORC-1", "placer_order_number": "ORC-2", "accession_number": "OBR-18", "patient_id": "PID-3",
            "priority": "ORC-7", "clinical_history": "OBR-13"},
    "fhir": {"control": "ServiceRequest.status", "placer_order_number": "ServiceRequest.identifier",
             "accession_number": "ServiceRequest.identifier", "patient_id": "ServiceRequest.subject",
             "priority": "ServiceRequest.priority", "clinical_history": "ServiceRequest.note"},
}
TEXT_LIMITS = {"patient_name": 200, "procedure_code": 64, "procedure_text": 200, "modality": 16,
               "ordering_physician": 200, "clinical_history": 4000}
KEY_LIMITS = {"placer_order_number": 64, "accession_number": 16, "patient_id": 64}


@dataclass
class OrderData:
    """What an order message says, already parsed (each field named as in the message for errors)."""

    control: str  # NW new, CA cancel, XO change
    placer_order_number: str  # ORC-2
    accession_number: str  # OBR-18 (or ORC-3 / IPC-1 for OMI)
    patient_id: str  # PID-3
    patient_name: str = ""  # PID-5, as text
    procedure_code: str = ""  # OBR-4.1
    procedure_text: str = ""  # OBR-4.2
    modality: str = ""  # OBR-24 or from the procedure
    priority: str = "routine"  # stat / urgent / routine, from ORC-7 / OBR-27 quantity-timing priority
    ordering_physician: str = ""  # ORC-12 / OBR-16, as text
    clinical_history: str = ""  # OBR-13 and NTE segments


def _where(source: str, name: str) -> str:
    return LOCATIONS.get(source, LOCATIONS["hl7"]).get(name, name)


def _refuse(source: str, name: str, message: str, code: str, status: int = 400) -> ApplicationError:
    return ApplicationError(message, code=code, status_code=status, fields={_where(source, name): [message]})


def _clean(data: OrderData, source: str) -> OrderData:
    """Trimmed values; a missing or over-long key, an unknown control code or priority is refused by name."""
    values = {name: str(getattr(data, name) or "").strip() for name in OrderData.__dataclass_fields__}
    values["control"] = values["control"].upper()
    if values["control"] not in (NEW, CANCEL, CHANGE):
        raise _refuse(source, "control", f"Order control {values['control'] or '(empty)'} is not supported: send "
                                         "NW (new), CA (cancel) or XO (change).", "unsupported_control")
    for name, limit in KEY_LIMITS.items():
        if not values[name]:
            raise _refuse(source, name, f"{_where(source, name)} is required.", "required")
        if len(values[name]) > limit:
            raise _refuse(source, name, f"{_where(source, name)} is longer than {limit} characters.", "too_long")
    values["priority"] = (values["priority"] or Priority.ROUTINE).lower()
    if values["priority"] not in Priority.values:
        raise _refuse(source, "priority", f"Priority {values['priority']!r} is not one of stat, urgent, routine.",
                      "invalid_priority")
    for name, limit in TEXT_LIMITS.items():
        values[name] = values[name][:limit]
    return OrderData(**values)


# --- the state machine ----------------------------------------------------------------------------

@transaction.atomic
def ris_order_transition(*, order: RisOrder, to: str, actor: Actor | None, reason: str = "",
                         fields: dict | None = None) -> RisOrder:
    """The one way an order changes state (table ``RIS_ORDER_TRANSITIONS``); each move is audited."""
    locked = RisOrder.objects.select_for_update().get(pk=order.pk)
    if to not in RIS_ORDER_TRANSITIONS.get(locked.status, frozenset()):
        raise ApplicationError(f"This order is {locked.get_status_display().lower()}: it cannot become "
                               f"{RisOrderStatus(to).label.lower()}.", code="invalid_transition", status_code=409,
                               fields={"status": [f"{locked.status} → {to} is not allowed"]})
    from_status, locked.status = locked.status, to
    changed = ["status", "updated_at"]
    for name, value in (fields or {}).items():
        setattr(locked, name, value)
        changed.append(name)
    locked.save(update_fields=changed)
    user = actor.user if actor is not None else None
    audit_record(action=f"ris_order.{to}", actor=user, organization_id=locked.center_id,
                 object_type="marketplace.risorder", object_id=str(locked.public_id), reason=reason[:500],
                 extra={"from": from_status, "to": to, "accession": locked.accession_number,
                        "placer_order_number": locked.placer_order_number})
    order.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


# --- applying an order message --------------------------------------------------------------------

def order_apply(*, center: Organization, data: OrderData, source: str, interface: Hl7Interface | None = None,
                actor=None, receipt_audited: bool = False, savepoint: bool = True) -> RisOrder:
    """Apply one order message to the center's orders: create (NW), cancel (CA) or amend (XO) it.

    ``receipt_audited``: the caller's own audit event records the message and names the orders it created (the
    HL7 listener's ``hl7.message_received``), so a new order's receipt is not recorded a second time.
    ``savepoint=False``: inside a caller's transaction that a failure rolls back whole (the HL7 listener's, one per
    message), the savepoint of this one would cost two round trips and save nothing.

    Raises ``core.errors.ApplicationError`` naming the field (``fields``: HL7 location such as "ORC-2" or
    the FHIR path) when the message cannot be applied; the listener answers AE with it.
    """
    with transaction.atomic(savepoint=savepoint):
        return _order_apply(center, data, source, interface, actor, receipt_audited)


def _order_apply(center: Organization, data: OrderData, source: str, interface: Hl7Interface | None, actor,
                 receipt_audited: bool) -> RisOrder:
    if center.kind != Organization.Kind.IMAGING_CENTER:
        raise ApplicationError("Orders are taken for imaging centers only.", code="not_a_center", status_code=422)
    data = _clean(data, source)
    if data.control == NEW:
        return _order_new(center, data, source, interface, actor, receipt_audited)
    order = RisOrder.objects.select_for_update().filter(center=center,
                                                        placer_order_number=data.placer_order_number).first()
    if order is None:
        raise _refuse(source, "placer_order_number", f"No order {data.placer_order_number} was received from this "
                                                     "center.", "unknown_order", 422)
    if data.control == CANCEL:
        return _order_cancel(order, source, actor)
    return _order_change(order, data, source, actor)


def _order_new(center, data: OrderData, source, interface, actor, receipt_audited: bool) -> RisOrder:
    fields = {name: getattr(data, name) for name in OrderData.__dataclass_fields__ if name != "control"}
    order = RisOrder(center=center, source=source, interface=interface, **fields)
    # The study is asked for first, and sent with the insert (and the transaction's BEGIN): one round trip. Both
    # come before the audit record: appending to the audit chain takes its lock until commit, which every listener
    # worker waits on (bench/hl7_orders.py), so the less that follows it the better.
    with sent_together(), connection.cursor() as cursor:
        cursor.execute(*_study_candidates_sql(center, order.accession_number))
        if not _inserted(order):  # a repeated NW (a resend, another message id, a concurrent copy): the order once
            return RisOrder.objects.get(center=center, placer_order_number=data.placer_order_number)
        candidates = cursor.fetchall()
    study = _chosen_study(candidates, order.patient_id)
    if not receipt_audited:
        _audit_receipt(order, center, source, actor)
    if study is not None:
        return order_match(order=order, study=study, actor=actor)
    return order


def _inserted(order: RisOrder) -> bool:
    """Insert a new order unless the center has one with its placer order number. Inserted first, not looked up
    first: a repeat is rare and every new order saves a query. ON CONFLICT DO NOTHING rather than an insert in a
    savepoint: one round trip instead of three, and a repeat does not fail the caller's transaction."""
    if connection.features.can_return_rows_from_bulk_insert:
        return bool(insert_rows([order], unique=("center_id", "placer_order_number")))
    try:
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        return False
    return True


def _audit_receipt(order: RisOrder, center, source: str, actor) -> None:
    audit_record(action="ris_order.received", actor=getattr(actor, "user", None), organization=center,
                 object_type="marketplace.risorder", object_id=str(order.public_id),
                 extra={"source": source, "accession": order.accession_number,
                        "placer_order_number": order.placer_order_number, "priority": order.priority})


def _order_cancel(order: RisOrder, source: str, actor) -> RisOrder:
    """CA: the order and its read request end, unless the read is already reported (then AE)."""
    if order.status == RisOrderStatus.CANCELLED:
        return order  # already done: a resend
    read_request = order.read_request
    if read_request is not None:
        read_request = ReadRequest.objects.select_for_update().get(pk=read_request.pk)
        if read_request.status in SIGNED:
            raise _refuse(source, "control", "The read was already reported: the order can no longer be cancelled "
                                             "(ask the reader for an addendum).", "already_signed", 422)
        if read_request.status not in FINISHED_STATES:
            read_request_withdraw(actor=actor or ANONYMOUS, read_request=read_request,
                                  reason=f"Cancelled by the center's RIS (order {order.placer_order_number}).")
    return ris_order_transition(order=order, to=RisOrderStatus.CANCELLED, actor=actor,
                                reason="cancelled by the RIS (CA)",
                                fields={"cancelled_by": getattr(actor, "user", None)})


def _order_change(order: RisOrder, data: OrderData, source: str, actor) -> RisOrder:
    """XO: a waiting or held order takes the new values (and looks for its study again); a posted one amends its
    open read request's clinical history and priority. Refused once cancelled or once the read is reported."""
    if order.status == RisOrderStatus.CANCELLED:
        raise _refuse(source, "control", "This order was cancelled: send a new order (NW).", "order_cancelled", 422)
    read_request = order.read_request
    if read_request is not None and read_request.status in SIGNED:
        raise _refuse(source, "control", "The read was already reported: the order can no longer change (ask the "
                                         "reader for an addendum).", "already_signed", 422)
    if order.status == RisOrderStatus.POSTED:
        for key in ("accession_number", "patient_id"):
            if getattr(data, key) != getattr(order, key):
                raise _refuse(source, key, f"The read request of this order is posted: its {_where(source, key)} "
                                           "cannot change (cancel the order and send a new one).", "order_posted", 422)
    changed = [name for name in OrderData.__dataclass_fields__
               if name != "control" and getattr(order, name) != getattr(data, name)]
    if changed:
        for name in changed:
            setattr(order, name, getattr(data, name))
        order.save(update_fields=[*changed, "updated_at"])
        audit_record(action="ris_order.changed", actor=getattr(actor, "user", None), organization_id=order.center_id,
                     object_type="marketplace.risorder", object_id=str(order.public_id), extra={"fields": changed})
    if order.status == RisOrderStatus.POSTED and read_request is not None and read_request.status not in \
            FINISHED_STATES:
        amend.read_request_amend(read_request=read_request, clinical_history=order.clinical_history,
                                 priority=order.priority, actor=actor,
                                 reason=f"changed by the center's RIS (order {order.placer_order_number})")
    elif order.status == RisOrderStatus.WAITING or (order.status == RisOrderStatus.HELD and order.study_id is None):
        study = study_for_accession(order.center, order.accession_number, order.patient_id)
        if study is not None:
            return order_match(order=order, study=study, actor=actor)
    elif order.status == RisOrderStatus.HELD and order.study_id is not None:
        # A held mismatch corrected by the RIS (the right patient id now) is posted.
        study = order.study
        if study.patient_id.strip() == order.patient_id and study.accession_number == order.accession_number:
            return order_post(order=order, study=study, actor=actor)
    return order


# --- matching an order and a study ----------------------------------------------------------------

def study_for_accession(center: Organization, accession: str, patient_id: str) -> Study | None:
    """The center's study with this accession number (the patient's own first, then the newest)."""
    with connection.cursor() as cursor:
        cursor.execute(*_study_candidates_sql(center, accession))
        return _chosen_study(cursor.fetchall(), patient_id)


def _study_candidates_sql(center: Organization, accession: str) -> tuple[str, list]:
    """(id, patient id) of the center's newest studies with this accession number. Two columns first, written by
    hand: a new order usually comes before its images, so the study's many columns are read only when there is
    one, and the listener's hot path does not build a query each time. Sent with the order's insert in one round
    trip (bench/hl7_orders.py, 4 senders: 181-302 orders/s over 8 runs with the ORM's query and round trips of its
    own, 225-417/s over 10 runs this way; the target is 200/s)."""
    table = quoted(Study._meta.db_table)
    return (f"SELECT id, patient_id FROM {table} WHERE organization_id = %s AND accession_number = %s "  # noqa: S608
            "AND deleted_at IS NULL ORDER BY received_at DESC LIMIT 10", [center.pk, accession])


def _chosen_study(candidates: list[tuple[int, str]], patient_id: str) -> Study | None:
    if not candidates:
        return None
    chosen = next((pk for pk, patient in candidates if patient.strip() == patient_id), candidates[0][0])
    return Study.objects.get(pk=chosen)


@transaction.atomic
def order_match(*, order: RisOrder, study: Study, actor=None) -> RisOrder:
    """An order and a study with its accession number met: post the read, or hold a patient mismatch."""
    order = RisOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != RisOrderStatus.WAITING:
        return order  # matched meanwhile (another batch of the same study)
    if study.patient_id.strip() != order.patient_id:
        found = study.patient_id.strip() or "(no patient id)"
        reason = (f"accession {order.accession_number} arrived for patient {found}, the order is for patient "
                  f"{order.patient_id}")
        return ris_order_transition(order=order, to=RisOrderStatus.HELD, actor=actor, reason=reason,
                                    fields={"held_reason": reason[:500], "study": study})
    return order_post(order=order, study=study, actor=actor)


@transaction.atomic
def order_post(*, order: RisOrder, study: Study, actor=None) -> RisOrder:
    """Post the order's read request for ``study`` (or adopt one the center posted by hand for that study);
    a refusal of the marketplace (no jurisdiction, no imaging modality...) holds the order with its reason."""
    adopted = (ReadRequest.objects.filter(center_id=order.center_id, study=study, kind=Kind.PRIMARY,
                                          ris_order__isnull=True).exclude(status__in=FINISHED_STATES - SIGNED)
               .order_by("-created_at").first())
    if adopted is not None:
        return ris_order_transition(order=order, to=RisOrderStatus.POSTED, actor=actor,
                                    reason="the center had posted this study's read by hand",
                                    fields={"study": study, "read_request": adopted, "held_reason": ""})
    settings_row = center_settings(order.center)
    preferred = list(settings_row.preferred_radiologists.all())
    data = PostData(study=study, kind=Kind.PRIMARY, priority=order.priority, clinical_history=order.clinical_history,
                    reason_for_exam=order.procedure_text or order.procedure_code,
                    special_instructions=_instructions(order),
                    audience=Audience.PREFERRED if preferred else Audience.MARKETPLACE,
                    preferred_radiologists=preferred,
                    widen_after_minutes=settings_row.preferred_widen_minutes if preferred else None)
    try:
        with transaction.atomic():
            read_request, _ = read_request_create(actor=actor or ANONYMOUS, center=order.center, data=data)
    except ApplicationError as error:
        reason = f"the read request could not be posted: {error.message}"
        target = RisOrderStatus.HELD if order.status != RisOrderStatus.HELD else None
        if target is None:
            RisOrder.objects.filter(pk=order.pk).update(held_reason=reason[:500], study=study)
            order.held_reason, order.study = reason[:500], study
            return order
        return ris_order_transition(order=order, to=target, actor=actor, reason=reason,
                                    fields={"held_reason": reason[:500], "study": study})
    return ris_order_transition(order=order, to=RisOrderStatus.POSTED, actor=actor, reason="read request posted",
                                fields={"study": study, "read_request": read_request, "held_reason": ""})


def _instructions(order: RisOrder) -> str:
    parts = [f"RIS order {order.placer_order_number}"]
    if order.ordering_physician:
        parts.append(f"ordered by {order.ordering_physician}")
    return ", ".join(parts) + "."


@transaction.atomic
def ris_order_release(*, actor: Actor, order: RisOrder) -> RisOrder:
    """A person looked at a held order and posts it with the study it was held on."""
    from marketplace import policy

    if not policy.can_post(actor, order.center):
        raise PermissionDenied("Only the center's admins and technologists post read requests.")
    if order.status != RisOrderStatus.HELD or order.study_id is None:
        raise ApplicationError("Only an order held on a study can be posted.", code="invalid_transition",
                               status_code=409)
    return order_post(order=order, study=order.study, actor=actor)


# --- the studies' hook ----------------------------------------------------------------------------

def waiting_orders_for(organization_id: int, study_ids: list[int]) -> list[tuple[int, int]]:
    """(order id, study id) of the center's waiting orders whose accession number one of these studies has:
    one indexed query (a STOW-RS request waits for it)."""
    rows = (RisOrder.objects.filter(center_id=organization_id, status=RisOrderStatus.WAITING,
                                    accession_number__in=Study.objects.filter(pk__in=study_ids)
                                    .exclude(accession_number="").values("accession_number"))
            .values_list("pk", "accession_number"))
    rows = list(rows)
    if not rows:
        return []
    by_accession = dict(Study.objects.filter(pk__in=study_ids).values_list("accession_number", "pk"))
    return [(order_id, by_accession[accession]) for order_id, accession in rows if accession in by_accession]


def on_studies_received(*, organization_id: int, study_ids: list[int], source: str) -> None:
    """Images arrived (any door): a waiting order with their accession number is matched by a task."""
    pairs = waiting_orders_for(organization_id, study_ids)
    if pairs:
        from marketplace import tasks

        for order_id, study_id in pairs:
            tasks.ris_order_match.delay(order_id, study_id)


def order_match_by_ids(order_id: int, study_id: int) -> str:
    """The task's body: match one order with one study (idempotent: a matched order is left alone)."""
    order = RisOrder.objects.filter(pk=order_id).first()
    study = Study.objects.filter(pk=study_id, deleted_at__isnull=True).first()
    if order is None or study is None:
        return "gone"
    return order_match(order=order, study=study).status
