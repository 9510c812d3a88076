"""Small pieces the accounts API views share (on top of ``accounts.api_base.ActorAPIView``)."""

from __future__ import annotations

from functools import cached_property

from accounts import selectors
from accounts.mfa import has_totp
from accounts.models import Organization
from accounts.policy import Actor
from accounts.serializers import MeApiKeySerializer, MeUserSerializer


class OrganizationRouteMixin:
    """For routes under ``/organizations/{organization_id}/``: the organization, seen through the actor.

    A foreign or missing organization raises NotFound (404) before anything else happens.
    """

    @cached_property
    def organization(self) -> Organization:
        return selectors.organization_get(actor=self.actor, public_id=self.kwargs["organization_id"])


def me_data(actor: Actor) -> dict:
    """What /me/ answers: the person with their memberships, or the organization key's description."""
    if actor.api_key is not None:
        return MeApiKeySerializer(actor.api_key).data
    return MeUserSerializer({
        "user": actor.user,
        "is_platform_staff": actor.is_platform_staff,
        "mfa_enrolled": has_totp(actor.user),
        "active_organization": actor.active_organization,
        "memberships": selectors.my_memberships(actor=actor),
    }).data
