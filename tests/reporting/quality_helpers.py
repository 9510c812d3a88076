"""Builders of the quality tests: a signed primary read, an overread of it, a read written and signed by anyone."""

from __future__ import annotations

from marketplace.models import Kind, Offer, ReadRequest
from marketplace.services.offers import offer_claim
from reporting.models import Report
from reporting.services import reports
from tests.conftest import enroll_totp
from tests.marketplace.helpers import actor, make_radiologist, post
from tests.reporting.conftest import assigned_read


def write_and_sign(user, read_request: ReadRequest, *, sections: dict | None = None,
                   fields: dict | None = None) -> Report:
    """Open the read as its assignee, write the given text over the template's, and sign (fresh factor)."""
    reader = actor(user)
    report = reports.report_open(actor=reader, read_request=read_request)
    text = {**report.sections, "impression": "No acute abnormality.", **(sections or {})}
    report = reports.report_save(actor=reader, report=report, version=report.version, sections=text,
                                 fields={**report.fields, **(fields or {})})
    return reports.report_sign(actor=reader, report=report, version=report.version, second_factor_age=1)


def claim(user, read_request: ReadRequest) -> ReadRequest:
    offer = Offer.objects.get(read_request=read_request, radiologist__user=user)
    offer_claim(actor=actor(user), offer=offer)
    read_request.refresh_from_db()
    return read_request


def signed_primary(cast, **post_fields) -> Report:
    """A CT read at the cast's center, claimed and signed by the cast's radiologist (of the group)."""
    return write_and_sign(cast.radiologist, assigned_read(cast, **post_fields),
                          sections={"findings": "Small left frontal contusion, 4 mm."})


def outside_reader(**kwargs):
    """A radiologist in no group (unless given), licensed in TX, on shift and enrolled in MFA: eligible to
    overread the cast's reads and to sign in."""
    profile = make_radiologist(**kwargs)
    enroll_totp(profile.user)
    return profile


def overread_of(cast, original: Report, **post_fields) -> ReadRequest:
    return post(cast.center_admin, original.read_request.study, kind=Kind.OVERREAD,
                original_request=original.read_request, **post_fields)


__all__ = ["claim", "outside_reader", "overread_of", "signed_primary", "write_and_sign"]
