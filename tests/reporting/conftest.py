"""Fixtures of the reporting tests: a template, a CT read claimed by the cast's radiologist, its open draft."""

from __future__ import annotations

import pytest

from accounts.models import License
from marketplace.models import Offer
from marketplace.services.offers import offer_claim
from reporting.models import ReportTemplate
from reporting.seed_templates import TEMPLATES as SEEDED
from reporting.services.reports import report_open
from tests.marketplace.helpers import actor, ingest_study, make_radiologist, post

CT_SECTIONS = [
    {"code": "clinical_information", "title": "Clinical information", "normal": ""},
    {"code": "technique", "title": "Technique", "normal": "Axial CT images of the head without contrast."},
    {"code": "findings", "title": "Findings", "normal": "No acute intracranial abnormality."},
    {"code": "impression", "title": "Impression", "normal": ""},
]


def make_template(name="Test CT head", modalities=("CT",), body_parts=("HEAD",), owner=None, fields=()):
    # The platform's seeded templates (migration 0003) step aside: a test's read gets the test's template.
    ReportTemplate.objects.filter(owner__isnull=True, name__in=[t["name"] for t in SEEDED]).update(active=False)
    return ReportTemplate.objects.create(name=name, owner=owner, modalities=list(modalities),
                                         body_parts=list(body_parts), sections=CT_SECTIONS, fields=list(fields))


def assigned_read(cast, study=None, **post_fields):
    """A read of ``study`` (a CT at the cast's center) posted by the center's admin and claimed by the
    cast's radiologist (licensed in TX, on shift)."""
    if not License.objects.filter(radiologist__user=cast.radiologist).exists():
        make_radiologist(user=cast.radiologist)
    study = study or ingest_study(cast.center, modality="CT")
    read_request = post(cast.center_admin, study, **post_fields)
    offer = Offer.objects.get(read_request=read_request, radiologist__user=cast.radiologist)
    offer_claim(actor=actor(cast.radiologist), offer=offer)
    read_request.refresh_from_db()
    return read_request


@pytest.fixture
def ct_template(db):
    return make_template()


@pytest.fixture
def draft(cast, ct_template):
    """The cast radiologist's open draft on a routine CT read (the request is in progress)."""
    read_request = assigned_read(cast)
    return report_open(actor=actor(cast.radiologist), read_request=read_request)
