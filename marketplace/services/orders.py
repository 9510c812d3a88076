"""A patient's second-opinion order: made, paid, posted, followed, cancelled and refunded (issue 17).

``order_transition`` is the one function that moves an order (``ORDER_TRANSITIONS``). Money is
billing's (``billing.services.checkout``): an order is paid through a Payment whose reference is
``order:<public id>``; when billing settles it, ``_order_paid`` (registered at start-up) moves the
order to paid and posts its read request, or answers "refund" if the order was cancelled meanwhile.
After payment the read request's own states say where the order is; the clock refunds an order that no
eligible reader claimed within half its turnaround.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.credentials.vocab import Subspecialty
from accounts.patients import patient_profile
from accounts.policy import Actor
from billing.models import Payment
from billing.services import checkout
from core.errors import ApplicationError, NotFound, PermissionDenied
from core.links import absolute_url
from marketplace import pricing
from marketplace.models import (
    ASSIGNED_STATES,
    Kind,
    Priority,
    ReadRequest,
    Status,
)
from marketplace.order_models import (
    ORDER_TRANSITIONS,
    TURNAROUND_HOURS,
    OrderStatus,
    Question,
    SecondOpinionOrder,
    Turnaround,
)
from marketplace.services import events
from marketplace.services.requests import PostData, imaging_modalities, read_request_create, read_request_withdraw
from studies import page_selectors
from studies import services as study_services
from studies.models import Study

PRIORITY_OF = {Turnaround.STANDARD: Priority.ROUTINE, Turnaround.EXPEDITED: Priority.URGENT}
# Subspecialty suggested from the modality and body part (the patient may choose another).
_BY_MODALITY = {"MG": Subspecialty.BREAST, "NM": Subspecialty.NUCLEAR, "PT": Subspecialty.NUCLEAR}
_BY_BODY_PART = (
    (("HEAD", "BRAIN", "SKULL", "SPINE", "CSPINE", "TSPINE", "LSPINE", "NECK"), Subspecialty.NEURO),
    (("KNEE", "SHOULDER", "HIP", "ANKLE", "WRIST", "ELBOW", "HAND", "FOOT", "EXTREMITY"), Subspecialty.MUSCULOSKELETAL),
    (("CHEST", "LUNG", "THORAX"), Subspecialty.CHEST),
    (("BREAST",), Subspecialty.BREAST),
    (("ABDOMEN", "PELVIS", "LIVER", "KIDNEY"), Subspecialty.BODY),
    (("HEART", "CARDIAC"), Subspecialty.CARDIAC),
)


def _err(field_name: str, message: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError.for_field(field_name, message, code=code)


def suggested_subspecialty(study: Study) -> str:
    """What kind of specialist usually reads this study (from its modality and body part)."""
    for modality in study.modalities:
        if modality in _BY_MODALITY:
            return _BY_MODALITY[modality]
    parts = " ".join(s.body_part_examined.upper() for s in study.series.all() if s.body_part_examined)
    text = f"{parts} {study.study_description.upper()}"
    for words, subspecialty in _BY_BODY_PART:
        if any(word in text for word in words):
            return subspecialty
    return Subspecialty.GENERAL


# --- the one state function ----------------------------------------------------------------------

def order_transition(*, order: SecondOpinionOrder, to: str, actor_user=None, reason: str = "",
                     fields: dict | None = None, request: HttpRequest | None = None) -> SecondOpinionOrder:
    locked = SecondOpinionOrder.objects.select_for_update().get(pk=order.pk)
    if to not in ORDER_TRANSITIONS.get(locked.status, frozenset()):
        raise ApplicationError(f"This order is {locked.get_status_display().lower()}: it cannot become "
                               f"{OrderStatus(to).label.lower()}.", code="invalid_transition", status_code=409,
                               fields={"status": [f"{locked.status} → {to} is not allowed"]})
    from_status, locked.status = locked.status, to
    for name, value in (fields or {}).items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", "updated_at", *(fields or {})])
    audit_record(action=f"opinion_order.{to}", actor=actor_user, request=request, organization_id=None,
                 object_type="marketplace.secondopinionorder", object_id=str(locked.public_id),
                 reason=reason[:500], extra={"from": from_status, "to": to})
    order.__dict__.update({k: v for k, v in locked.__dict__.items() if not k.startswith("_")})
    return locked


# --- making an order -----------------------------------------------------------------------------

@dataclass
class OrderData:
    study: Study
    question: str = Question.WHOLE_STUDY
    question_text: str = ""
    subspecialty: str = ""
    turnaround: str = Turnaround.STANDARD
    accept_terms: bool = False


def _patient(actor: Actor):
    if not actor.is_patient:
        raise NotFound()
    profile = patient_profile(actor.user)
    if profile is None:
        raise ApplicationError("Tell us your date of birth and where you live first: the specialist's license "
                               "must cover where you live.", code="details_required")
    return profile


def orderable_study(*, actor: Actor, public_id) -> Study:
    """A study the patient may order on: in their own space, or shared with them by a center (404 else)."""
    _patient(actor)
    access = page_selectors.study_get_for_page(actor=actor, public_id=public_id)
    if access.level != "full":
        raise NotFound("Study not found.")
    return access.study


def quote(study: Study, turnaround: str, space) -> pricing.Quote:
    return pricing.quote_for(center=space, modalities=imaging_modalities(study), priority=PRIORITY_OF[turnaround],
                             kind=Kind.SECOND_OPINION)


def eligible_reader_count(*, study: Study, subspecialty: str, turnaround: str, jurisdiction: str, space) -> int:
    """How many specialists could take this order now (never who: names are not shown before payment)."""
    from marketplace.services.matching import match

    probe = ReadRequest(center=space, study=study, kind=Kind.SECOND_OPINION, priority=PRIORITY_OF[turnaround],
                        subspecialty=subspecialty, modalities=imaging_modalities(study), jurisdiction=jurisdiction,
                        deadline=timezone.now() + timedelta(hours=TURNAROUND_HOURS[turnaround]), quoted_cents=0)
    return len(match(probe, eligible_only=True).candidates)


def _validate(data: OrderData) -> None:
    if data.question not in Question.values:
        raise _err("question", "Choose a second opinion on the whole study or a specific question.")
    if data.question == Question.SPECIFIC and not data.question_text.strip():
        raise _err("question_text", "Write the question you want the specialist to answer.", code="required")
    if len(data.question_text) > 2000:
        raise _err("question_text", "Keep the question under 2,000 characters.")
    if data.subspecialty not in Subspecialty.values:
        raise _err("subspecialty", "Choose the kind of specialist.")
    if data.turnaround not in Turnaround.values:
        raise _err("turnaround", "Choose standard (48 hours) or expedited (24 hours).")
    if not data.accept_terms:
        raise _err("accept_terms", "Read and accept the terms to order.", code="required")
    if not imaging_modalities(data.study):
        raise _err("study", "These files hold no images a radiologist reads: choose another study.")


@transaction.atomic
def order_create(*, actor: Actor, data: OrderData, request: HttpRequest | None = None) -> SecondOpinionOrder:
    """The patient's choices, with the price locked; nothing is offered to readers until it is paid."""
    profile = _patient(actor)
    _validate(data)
    if SecondOpinionOrder.objects.filter(patient=actor.user, study=data.study, status=OrderStatus.PAID,
                                         read_request__status__in=[Status.OPEN, *ASSIGNED_STATES]).exists():
        raise _err("study", "A second opinion on this study is already under way: follow it on its order page.",
                   code="duplicate")
    price = quote(data.study, data.turnaround, profile.space)
    order = SecondOpinionOrder.objects.create(
        patient=actor.user, study=data.study, question=data.question, question_text=data.question_text.strip(),
        subspecialty=data.subspecialty, turnaround=data.turnaround, jurisdiction=profile.jurisdiction,
        quoted_cents=price.cents, currency=price.currency, terms_accepted_at=timezone.now())
    audit_record(action="opinion_order.created", actor=actor.user, request=request, organization=profile.space,
                 object_type="marketplace.secondopinionorder", object_id=str(order.public_id),
                 extra={"study": data.study.study_instance_uid, "quoted_cents": price.cents,
                        "turnaround": data.turnaround, "terms_accepted": True})
    return order


def order_url(order: SecondOpinionOrder) -> str:
    return reverse("opinion_order_detail", args=[order.public_id])


def order_checkout(*, actor: Actor, order: SecondOpinionOrder, request: HttpRequest | None = None) -> Payment:
    """The payment to send the patient to (Stripe Checkout, or the test-payment page with Stripe off).
    Paying twice is refused by billing with the existing payment (``checkout.AlreadyPaid``)."""
    profile = _patient(actor)
    if order.patient_id != actor.user.pk:
        raise NotFound()
    if order.status != OrderStatus.DRAFT:
        raise ApplicationError(f"This order is {order.get_status_display().lower()}: there is nothing to pay.",
                               code="invalid_transition", status_code=409)
    page = absolute_url(order_url(order), request)  # back to the site the patient is on
    return checkout.checkout_start(
        payer=profile.space, reference=order.reference, amount_cents=order.quoted_cents, currency=order.currency,
        description=f"Second opinion ({order.get_subspecialty_display()}, {order.get_turnaround_display()})",
        success_url=f"{page}?paid=1", cancel_url=page, customer_email=actor.user.email)


def payment_of(order: SecondOpinionOrder) -> Payment | None:
    return Payment.objects.exclude(status=Payment.Status.EXPIRED).filter(reference=order.reference).first()


# --- paid: post the read request -----------------------------------------------------------------

def _order_for(payment: Payment) -> SecondOpinionOrder | None:
    public_id = payment.reference.removeprefix("order:")
    return SecondOpinionOrder.objects.filter(public_id=public_id).select_related("patient", "study").first()


def _order_paid(payment: Payment) -> str | None:
    """Billing settled a payment for an order (inside its transaction)."""
    order = _order_for(payment)
    if order is None or order.status == OrderStatus.CANCELLED:
        return checkout.REFUND
    if order.status == OrderStatus.PAID:
        return None  # settled twice (webhook and return page): the first one posted
    now = timezone.now()
    profile = patient_profile(order.patient)
    read_request, _ = read_request_create(
        actor=Actor(user=order.patient), center=profile.space, data=PostData(
            study=order.study, kind=Kind.SECOND_OPINION, priority=PRIORITY_OF[order.turnaround],
            subspecialty=order.subspecialty, clinical_history=_clinical_history(order),
            deadline=now + timedelta(hours=order.turnaround_hours), jurisdiction=order.jurisdiction,
            original_request=_original_request(order.study)), now=now)
    order_transition(order=order, to=OrderStatus.PAID, actor_user=order.patient, reason="paid",
                     fields={"paid_at": now, "read_request": read_request})
    events.notify([order.patient], title="Your second opinion is paid and offered to specialists",
                  body=f"We will tell you as soon as a specialist takes it; it is due within {order.turnaround_hours} "
                       "hours.", url=order_url(order))
    return None


def _clinical_history(order: SecondOpinionOrder) -> str:
    asked = order.question_text if order.question == Question.SPECIFIC else "A second opinion on the whole study."
    return f"Patient-ordered second opinion. Question: {asked}"


def _original_request(study: Study) -> ReadRequest | None:
    """The center's signed read of a shared study: its reader and group are excluded (a conflict)."""
    return (ReadRequest.objects.filter(study=study, kind=Kind.PRIMARY, status__in=[Status.REPORTED, Status.CLOSED])
            .order_by("-reported_at").first())


def _order_refunded(payment: Payment) -> None:
    order = _order_for(payment)
    if order is not None:
        events.notify([order.patient], title="Your payment was refunded",
                      body=payment.refund_reason or "The full amount goes back to your card.", url=order_url(order))


def _keep_ordered_images(study: Study) -> str | None:
    """A study whose second opinion is still under way cannot be deleted (studies asks before deleting)."""
    if SecondOpinionOrder.objects.filter(study=study, status=OrderStatus.PAID,
                                         read_request__status__in=[Status.OPEN, *ASSIGNED_STATES]).exists():
        return "A specialist is reading these images for your second opinion: delete them once it is reported."
    return None


def register() -> None:
    """At start-up (MarketplaceConfig.ready): billing tells us when an order's payment settles or refunds;
    studies asks before deleting images an open order needs."""
    checkout.on_payment_settled(_order_paid, prefix="order:")
    checkout.on_payment_refunded(_order_refunded, prefix="order:")
    study_services.register_delete_guard(_keep_ordered_images)


# --- cancelling and refunds ----------------------------------------------------------------------

def _cancel(order: SecondOpinionOrder, *, reason: str, actor_user=None, request=None) -> SecondOpinionOrder:
    payment = payment_of(order)
    if order.read_request is not None and order.read_request.status not in (Status.CANCELLED, Status.EXPIRED):
        read_request_withdraw(actor=Actor(user=actor_user), read_request=order.read_request, reason=reason,
                              request=request)
    order = order_transition(order=order, to=OrderStatus.CANCELLED, actor_user=actor_user, reason=reason,
                             fields={"cancelled_at": timezone.now(), "cancel_reason": reason[:500]}, request=request)
    if payment is not None and payment.status == Payment.Status.PAID:
        checkout.payment_refund(payment=payment, reason=reason)
    return order


@transaction.atomic
def order_cancel(*, actor: Actor, order: SecondOpinionOrder, request: HttpRequest | None = None) -> SecondOpinionOrder:
    """The patient cancels: a full refund until a specialist has taken it."""
    if not actor.is_patient or order.patient_id != actor.user.pk:
        raise NotFound()
    locked = SecondOpinionOrder.objects.select_for_update(of=("self",)).select_related("read_request").get(pk=order.pk)
    if locked.status == OrderStatus.CANCELLED:
        return locked
    if locked.read_request is not None and locked.read_request.status != Status.OPEN:
        raise PermissionDenied("A specialist has already taken this order: it can no longer be cancelled.")
    return _cancel(locked, reason="Cancelled by the patient before a specialist took it: refunded in full.",
                   actor_user=actor.user, request=request)


def unclaimed_refund_due(read_request: ReadRequest, at: datetime) -> bool:
    """A paid order whose read nobody claimed within half its turnaround (the clock refunds it)."""
    return (read_request.kind == Kind.SECOND_OPINION and read_request.status == Status.OPEN
            and read_request.fraction_elapsed(at) >= 0.5
            and SecondOpinionOrder.objects.filter(read_request=read_request, status=OrderStatus.PAID).exists())


@transaction.atomic
def order_refund_unclaimed(read_request: ReadRequest) -> SecondOpinionOrder:
    order = SecondOpinionOrder.objects.select_for_update(of=("self",)).select_related("read_request", "patient").get(
        read_request=read_request)
    hours = order.turnaround_hours // 2
    return _cancel(order, reason=f"No eligible specialist took your order within {hours} hours, half its "
                                 "turnaround: we cancelled it and refunded you in full.")


def on_request_moved(read_request: ReadRequest, to: str) -> None:
    """Plain-words email updates for the patient as their order's read moves."""
    order = SecondOpinionOrder.objects.filter(read_request=read_request).select_related("patient").first()
    if order is None:
        return
    if to == Status.ASSIGNED:
        events.notify([order.patient], title="A specialist is reading your images",
                      body="Your second opinion is with a specialist.", url=order_url(order))
    elif to == Status.REPORTED:
        events.notify([order.patient], title="Your second opinion is ready",
                      body="Sign in to read the specialist's report and its summary in plain words.",
                      url=order_url(order))
