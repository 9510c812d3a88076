"""DRF authentication by ``Authorization: Bearer <secret>`` (personal tokens and organization keys)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from accounts.models import OrganizationApiKey, PersonalApiToken
from accounts.services import credential_for_secret


class ApiKeyUser:
    """What ``request.user`` is for an organization key: authenticated, but nobody in particular."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: OrganizationApiKey) -> None:
        self.key = key
        self.email = f"api-key:{key.prefix}"

    def __str__(self) -> str:
        return f"API key {self.key.name}"


def bearer_secret(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return secret.strip() or None


class BearerSecretAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = bearer_secret(request)
        if secret is None:
            return None
        credential = credential_for_secret(secret)
        if credential is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked API token."))
        if isinstance(credential, PersonalApiToken):
            if not credential.user.is_active:
                raise exceptions.AuthenticationFailed(_("This account is disabled."))
            return credential.user, credential
        return ApiKeyUser(credential), credential

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
