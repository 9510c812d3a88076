"""The one API base class every ReadRoom endpoint builds on.

It resolves the actor (user or organization key, with memberships and roles), refuses PHI roles
without MFA, and makes subclasses fetch objects only through actor-scoped selectors: a subclass
supplies ``get_scoped_queryset(actor)`` and cannot replace ``get_queryset`` by accident (as in
PostHog's routing mixin). A foreign object is simply absent from the scoped queryset: 404.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser

from accounts import policy
from accounts.mfa import has_totp
from accounts.policy import Actor
from core.errors import NotFound
from core.errors import PermissionDenied as AppPermissionDenied


class MfaEnrolled(permissions.BasePermission):
    """PHI roles must have TOTP before using the API (session or personal token)."""

    def has_permission(self, request, view) -> bool:
        actor = policy.actor_from_request(request)
        if actor.user is not None and policy.requires_mfa(actor) and not has_totp(actor.user):
            raise AppPermissionDenied(
                "Your role gives access to patient data: set up two-factor authentication (TOTP) "
                "before using the API.", code="mfa_enrollment_required")
        return True


class ActorAPIView(GenericAPIView):
    """Base for every API view. Use ``self.actor``; implement ``get_scoped_queryset``."""

    permission_classes = [permissions.IsAuthenticated, MfaEnrolled]
    # Bodies are JSON (file uploads say so themselves): a form encoding cannot tell null from "" and drops
    # blank fields, so a body would not mean what the schema says. Anything else is answered 415.
    parser_classes = [JSONParser]
    lookup_field = "public_id"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides get_queryset; implement get_scoped_queryset(actor) "
                            "so that tenancy scoping cannot be skipped.")

    @property
    def actor(self) -> Actor:
        return policy.actor_from_request(self.request)

    def get_scoped_queryset(self, actor: Actor):
        raise NotImplementedError

    def get_queryset(self):
        return self.get_scoped_queryset(self.actor)

    def get_object(self):
        queryset = self.filter_queryset(self.get_queryset())
        obj = queryset.filter(**{self.lookup_field: self.kwargs[self.lookup_url_kwarg or self.lookup_field]}).first()
        if obj is None:
            raise NotFound()
        self.check_object_permissions(self.request, obj)
        return obj
