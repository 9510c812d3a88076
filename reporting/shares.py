"""A patient shares their signed second opinion with their doctor (issue 17, item 5): the patient's side.

The patient makes a share for a reported order: a link (a random token) and a 6-digit code, shown once,
to pass on separately (by phone; by a second email only if the patient asks). The link is read-only,
expires after 1-30 days (14 unless chosen), can be revoked, and locks after five wrong codes. What the
doctor then reads is ``reporting.share_access``. Only hashes of the token and the code are kept. Every
move of a share goes through ``doctor_share_transition`` (``DoctorShare.TRANSITIONS``) and is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.audit import audit_record
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from core.links import absolute_url
from marketplace.models import SecondOpinionOrder
from reporting.models import Report
from reporting.share_models import DoctorShare

DEFAULT_DAYS = 14
MIN_DAYS, MAX_DAYS = 1, 30
MAX_LABEL_CHARS = 120
TOKEN_LOOKUP_CHARS = 12
Status = DoctorShare.Status


# --- secrets: made here, kept only as hashes ------------------------------------------------------

def _token_hash(token: str) -> str:
    # The token is 256 random bits: a plain SHA-256 is enough (nothing to guess from it).
    return hashlib.sha256(token.encode()).hexdigest()


def _code_hash(share: DoctorShare, code: str) -> str:
    # A million codes are quick to try against a plain hash: keyed with SECRET_KEY and salted by the share.
    return salted_hmac("reporting.doctor_share.code", f"{share.token_lookup}:{code}", algorithm="sha256").hexdigest()


def token_matches(share: DoctorShare, token: str) -> bool:
    return constant_time_compare(share.token_hash, _token_hash(token))


def code_matches(share: DoctorShare, code: str) -> bool:
    return constant_time_compare(share.code_hash, _code_hash(share, code))


# --- reads ----------------------------------------------------------------------------------------

def _check_patient(actor: Actor, order: SecondOpinionOrder | None) -> None:
    """Only the patient who ordered it; anyone else (another patient, the reader, a center) gets 404."""
    if actor.user is None or order is None or order.patient_id != actor.user.pk:
        raise NotFound("Order not found.")


def final_report_of(order: SecondOpinionOrder) -> Report | None:
    if order.read_request_id is None:
        return None
    return Report.objects.filter(read_request_id=order.read_request_id, status=Report.Status.FINAL).first()


def doctor_shares_of(*, actor: Actor, order: SecondOpinionOrder) -> QuerySet[DoctorShare]:
    """The order's shares, newest first (its patient only; anyone else 404)."""
    _check_patient(actor, order)
    return DoctorShare.objects.filter(order=order).order_by("-created_at", "-id")


def doctor_share_get(*, actor: Actor, order: SecondOpinionOrder, public_id) -> DoctorShare:
    """One share of the patient's own order; another order's or another patient's: 404."""
    share = doctor_shares_of(actor=actor, order=order).filter(public_id=public_id).first()
    if share is None:
        raise NotFound("Share not found.")
    return share


# --- the one workflow service ---------------------------------------------------------------------

@transaction.atomic
def doctor_share_transition(*, share: DoctorShare, to: str, actor: Actor | None, reason: str = "",
                            request: HttpRequest | None = None) -> DoctorShare:
    """Move a share along DoctorShare.TRANSITIONS (row locked), stamp when, and audit who/from/to/why (the
    audit log is the share's status history; ``actor`` None: the share locked itself after wrong codes)."""
    share = DoctorShare.objects.select_for_update().select_related("order__study").get(pk=share.pk)
    if not share.can_move_to(to):
        raise ApplicationError(f"This share is {share.get_status_display().lower()}: it cannot become "
                               f"{Status(to).label.lower()}.", code="invalid_transition", status_code=409)
    before, now = share.status, timezone.now()
    share.status = to
    stamped = {Status.REVOKED: "revoked_at", Status.LOCKED: "locked_at"}[to]
    setattr(share, stamped, now)
    share.save(update_fields=["status", stamped, "updated_at"])
    audit_record(action=f"doctor_share.{to}", actor=actor.user if actor else None, request=request, obj=share,
                 organization_id=share.order.study.organization_id, reason=reason[:500],
                 extra={"from": before, "order": str(share.order.public_id), "label": share.label})
    return share


# --- the patient's use cases ----------------------------------------------------------------------

@dataclass(frozen=True)
class NewShare:
    """What the patient sees once, right after making a share: the link and the code are nowhere else."""

    share: DoctorShare
    url: str
    code: str


def _clean_label(label) -> str:
    if not isinstance(label, str) or "\x00" in label:
        raise ApplicationError.for_field("label", "The label must be plain text.")
    label = " ".join(label.split())
    if not label:
        raise ApplicationError.for_field("label", "Give the share a label, such as your doctor's name.",
                                         code="required")
    if len(label) > MAX_LABEL_CHARS:
        raise ApplicationError.for_field("label", f"The label can be at most {MAX_LABEL_CHARS} characters "
                                                  f"(this one has {len(label)}).", code="too_long")
    return label


def _clean_email(email) -> str:
    email = (email or "").strip() if isinstance(email, str) else None
    if email is None:
        raise ApplicationError.for_field("doctor_email", "The doctor's email must be text.")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ApplicationError.for_field("doctor_email", f"{email[:80]!r} is not an email address.") from None
    return email.lower()


def _clean_days(days) -> int:
    if days in (None, ""):
        return DEFAULT_DAYS
    try:
        days = int(days)
    except (TypeError, ValueError):
        raise ApplicationError.for_field("days", "The number of days must be a whole number.") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ApplicationError.for_field("days", f"The link can last from {MIN_DAYS} to {MAX_DAYS} days "
                                                 f"(not {days}).", code="out_of_range")
    return days


def share_url(token: str, request: HttpRequest | None = None) -> str:
    return absolute_url(reverse("shared_report", args=[token]), request)


def _utc(moment: datetime) -> str:
    return f"{moment:%B} {moment.day}, {moment:%Y at %H:%M} UTC"


def _send_link(share: DoctorShare, url: str, patient_name: str) -> None:
    send_mail(subject=f"[ReadRoom] {patient_name} shared a second opinion with you",
              message=(f"{patient_name} has shared a specialist's signed second opinion, and the images it is "
                       f"about, with you on ReadRoom.\n\nOpen it: {url}\n\nYou need the 6-digit code "
                       f"{patient_name} gives you separately. The link works until "
                       f"{_utc(share.expires_at)}; no account is needed."),
              from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[share.doctor_email])


def _send_code(share: DoctorShare, code: str, patient_name: str) -> None:
    # A separate email: whoever reads only one of the two messages cannot open the report.
    send_mail(subject="[ReadRoom] Your code for a shared second opinion",
              message=(f"The code for the second opinion {patient_name} shared with you on ReadRoom is {code}.\n\n"
                       "The link was sent in another email. Five wrong codes lock the link."),
              from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[share.doctor_email])


@transaction.atomic
def doctor_share_create(*, actor: Actor, order: SecondOpinionOrder, label, doctor_email="", days=None,
                        email_code: bool = False, request: HttpRequest | None = None,
                        now: datetime | None = None) -> NewShare:
    """The ordering patient shares a signed second opinion: a link that lasts ``days`` (1-30, default 14) and
    a 6-digit code. With the doctor's email the link is emailed; the code too, in a second email, only when
    the patient asks (``email_code``). Refused until the report is signed."""
    _check_patient(actor, order)
    label, doctor_email, days = _clean_label(label), _clean_email(doctor_email), _clean_days(days)
    if email_code and not doctor_email:
        raise ApplicationError.for_field("doctor_email", "Give your doctor's email to send them the code.",
                                         code="required")
    if final_report_of(order) is None:
        message = "You can share your second opinion once the specialist has signed it."
        raise ApplicationError(message, code="report_not_ready", status_code=409, fields={"order": [message]})
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(1_000_000):06d}"
    share = DoctorShare(order=order, label=label, doctor_email=doctor_email, token_lookup=token[:TOKEN_LOOKUP_CHARS],
                        token_hash=_token_hash(token), expires_at=(now or timezone.now()) + timedelta(days=days))
    share.code_hash = _code_hash(share, code)
    share.save()
    audit_record(action="doctor_share.created", actor=actor.user, request=request, obj=share,
                 organization_id=order.study.organization_id,
                 extra={"order": str(order.public_id), "label": label, "days": days,
                        "expires_at": share.expires_at.isoformat(), "emailed_link": bool(doctor_email),
                        "emailed_code": bool(email_code)})
    url = share_url(token, request)
    if doctor_email:
        name = actor.user.display_name
        transaction.on_commit(lambda: _send_link(share, url, name))
        if email_code:
            transaction.on_commit(lambda: _send_code(share, code, name))
    return NewShare(share=share, url=url, code=code)


def doctor_share_revoke(*, actor: Actor, share: DoctorShare, request: HttpRequest | None = None) -> DoctorShare:
    """The patient ends a share at once (an expired or locked one too: it then reads as revoked)."""
    _check_patient(actor, share.order)
    return doctor_share_transition(share=share, to=Status.REVOKED, actor=actor, reason="revoked by the patient",
                                   request=request)
