"""Marketplace objects for the access matrix (tests/test_access_matrix.py), built through the real services.

At ``center``, posted by ``poster``: ``read_request`` assigned to the cast's radiologist (with its
``assignment``), ``offered_request`` with an open ``offer`` to the cast's radiologist, and a ``webhook``
endpoint. The studies are their own, so that the study rows of the matrix keep their expectations.
"""

from __future__ import annotations

from accounts import policy
from accounts.models import Organization, RadiologistProfile, User
from marketplace.models import Offer, WebhookEndpoint
from marketplace.services.offers import offer_claim
from tests.marketplace.helpers import ingest_study, make_radiologist, post


def marketplace_objects(center: Organization, poster: User) -> dict:
    radiologist_user = User.objects.get(email="radiologist@example.test")
    profile = RadiologistProfile.objects.filter(user=radiologist_user).first()
    if profile is None or not profile.licenses.filter(region=center.region).exists():
        profile = make_radiologist(user=radiologist_user, regions=(center.region,))
    assigned = post(poster, ingest_study(center, modality="CT", patient=21))
    offer = Offer.objects.get(read_request=assigned, radiologist=profile)
    assignment = offer_claim(actor=policy.actor_for_user(radiologist_user), offer=offer)
    offered = post(poster, ingest_study(center, modality="CT", patient=22))
    return {
        "read_request": assigned,
        "assignment": assignment,
        "offered_request": offered,
        "offer": Offer.objects.get(read_request=offered, radiologist=profile),
        "webhook": WebhookEndpoint.objects.create(center=center, url="https://ris.example.test/hooks"),
    }
