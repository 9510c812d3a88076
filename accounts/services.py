"""Every write in accounts: one function per use case, transactional, taking the actor."""

from __future__ import annotations

import copy
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts import policy
from accounts.audit import audit_record
from accounts.models import (
    ApiCredential,
    Invitation,
    Membership,
    Organization,
    OrganizationApiKey,
    PersonalApiToken,
    Role,
    User,
)
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound, PermissionDenied
from core.links import absolute_url
from core.timefmt import local_time

TOKEN_PREFIX = "rrt"  # noqa: S105 - a label, not a secret
KEY_PREFIX = "rrk"  # organization API key
ASSIGNABLE_KEY_ROLES = frozenset({Role.TECHNOLOGIST, Role.VIEWER, Role.FINANCE})


def _validate_roles(roles: list[str], *, field: str = "roles") -> list[str]:
    if not roles:
        raise ApplicationError.for_field(field, "Choose at least one role.")
    unknown = [r for r in roles if r not in Role.values]
    if unknown:
        raise ApplicationError.for_field(field, f"Unknown role: {', '.join(unknown)}.")
    return sorted(set(roles))


# --- organizations and memberships ------------------------------------------------------------

def organization_switch_active(*, actor: Actor, request: HttpRequest, organization: Organization) -> None:
    """Make one of the actor's organizations the active one for this session."""
    if organization.pk not in actor.memberships:
        raise NotFound()
    request.session[policy.ACTIVE_ORG_SESSION_KEY] = organization.pk
    request._readroom_actor = None


@transaction.atomic
def membership_set_roles(*, actor: Actor, membership: Membership, roles: list[str],
                         request: HttpRequest | None = None) -> Membership:
    """Only an admin of the organization may change roles; the last admin cannot drop their own."""
    if not policy.can_view_members(actor, membership.organization):
        raise NotFound()
    if not policy.can_manage_members(actor, membership.organization):
        raise PermissionDenied("Only an admin of this organization can change roles.")
    roles = _validate_roles(roles)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if Role.ADMIN in membership.roles and Role.ADMIN not in roles and _admin_count(membership.organization) <= 1:
        raise ApplicationError.for_field("roles", "An organization must keep at least one admin.",
                                         code="last_admin")
    before = list(membership.roles)
    membership.roles = roles
    membership.save(update_fields=["roles", "updated_at"])
    audit_record(action="membership.roles_changed", actor=actor.audit_user, request=request, obj=membership,
                 organization=membership.organization, extra={"from": before, "to": roles,
                                                              "user": membership.user.email})
    return membership


@transaction.atomic
def membership_deactivate(*, actor: Actor, membership: Membership, request: HttpRequest | None = None) -> None:
    """Remove a member (kept as an inactive row for the record)."""
    if not policy.can_view_members(actor, membership.organization):
        raise NotFound()
    if not policy.can_manage_members(actor, membership.organization):
        raise PermissionDenied("Only an admin of this organization can remove members.")
    if Role.ADMIN in membership.roles and _admin_count(membership.organization) <= 1:
        raise ApplicationError("An organization must keep at least one admin.", code="last_admin")
    membership.is_active = False
    membership.save(update_fields=["is_active", "updated_at"])
    audit_record(action="membership.deactivated", actor=actor.audit_user, request=request, obj=membership,
                 organization=membership.organization, extra={"user": membership.user.email})


def _admin_count(organization: Organization) -> int:
    return sum(1 for roles in Membership.objects.filter(organization=organization, is_active=True)
               .values_list("roles", flat=True) if Role.ADMIN in roles)


# --- invitations ------------------------------------------------------------------------------

def _invitation_url(token: str, request: HttpRequest | None = None) -> str:
    return absolute_url(reverse("invitation_accept", args=[token]), request)


@transaction.atomic
def invitation_create(*, actor: Actor, organization: Organization, email: str, role: str,
                      request: HttpRequest | None = None) -> tuple[Invitation, str]:
    """An admin invites someone by email with a role; the token is emailed, only its hash is kept."""
    if not policy.can_view_organization(actor, organization):
        raise NotFound()
    if not policy.can_manage_members(actor, organization):
        raise PermissionDenied("Only an admin of this organization can invite members.")
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        raise ApplicationError.for_field("email", "Enter a valid email address.")
    if role not in Role.values:
        raise ApplicationError.for_field("role", f"Unknown role: {role}.")
    if Membership.objects.filter(organization=organization, user__email__iexact=email, is_active=True).exists():
        raise ApplicationError.for_field("email", f"{email} is already a member of {organization}.",
                                         code="already_member")
    now = timezone.now()
    Invitation.objects.filter(organization=organization, email=email, accepted_at__isnull=True,
                              revoked_at__isnull=True).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization, email=email, role=role, token_hash=ApiCredential.hash_secret(token),
        invited_by=actor.user, expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    audit_record(action="invitation.created", actor=actor.audit_user, request=request, obj=invitation,
                 organization=organization, extra={"email": email, "role": role})
    url = _invitation_url(token, request)
    # The invitee's own zone when they already have an account, else the organization's they are joining.
    invitee = User.objects.filter(email__iexact=email).only("time_zone").first()
    expires = local_time(invitation.expires_at, invitee.time_zone if invitee else organization.time_zone)
    transaction.on_commit(lambda: send_mail(
        subject=f"[ReadRoom] {actor.user.display_name} invited you to {organization.name}",
        message=(f"You have been invited to join {organization.name} on ReadRoom as {Role(role).label}.\n\n"
                 f"Accept the invitation: {url}\n\nThe link works once and expires on {expires}."),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    ))
    return invitation, token


def invitation_for_token(token: str) -> Invitation:
    """The pending invitation a token names. Unknown, used, revoked and expired all look the same."""
    invitation = (Invitation.objects.select_related("organization", "invited_by")
                  .filter(token_hash=ApiCredential.hash_secret(token or "")).first())
    if invitation is None or invitation.status != "pending":
        raise NotFound("This invitation link is not valid: it may have expired or been used already.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User, request: HttpRequest | None = None) -> Membership:
    """Join the organization. The invitation works once, before its expiry, for its own email only."""
    invitation = invitation_for_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status != "pending":
        raise NotFound("This invitation link is not valid: it may have expired or been used already.")
    if user.email.lower() != invitation.email.lower():
        # Someone else's invitation: do not confirm that it exists.
        raise NotFound("This invitation link is not valid for your account.")
    membership, created = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"roles": [invitation.role]})
    if not created:
        membership.roles = sorted(set(membership.roles) | {invitation.role}) if membership.is_active \
            else [invitation.role]
        membership.is_active = True
        membership.save(update_fields=["roles", "is_active", "updated_at"])
    if user.kind != User.Kind.PROFESSIONAL:
        user.kind = User.Kind.PROFESSIONAL
        user.save(update_fields=["kind"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    audit_record(action="invitation.accepted", actor=user, request=request, obj=invitation,
                 organization=invitation.organization, extra={"role": invitation.role})
    return membership


@transaction.atomic
def invitation_register_and_accept(*, token: str, full_name: str, password: str,
                                   request: HttpRequest | None = None) -> User:
    """A new person accepts: their account is created with the invited (thereby verified) email."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    invitation = invitation_for_token(token)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ApplicationError.for_field("email", "An account with this email exists: sign in to accept.",
                                         code="account_exists")
    try:
        validate_password(password, User(email=invitation.email, full_name=full_name))
    except ValidationError as exc:
        raise ApplicationError("Choose a stronger password.", fields={"password": list(exc.messages)}) from exc
    try:
        user = User.objects.create_user(invitation.email, password, full_name=full_name.strip(),
                                        kind=User.Kind.PROFESSIONAL)
    except IntegrityError as exc:
        raise ApplicationError.for_field("email", "An account with this email exists: sign in to accept.",
                                         code="account_exists") from exc
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    invitation_accept(token=token, user=user, request=request)
    return user


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation, request: HttpRequest | None = None) -> None:
    if not policy.can_view_organization(actor, invitation.organization):
        raise NotFound()
    if not policy.can_manage_members(actor, invitation.organization):
        raise PermissionDenied("Only an admin of this organization can revoke invitations.")
    if invitation.status != "pending":
        raise ApplicationError(f"This invitation is already {invitation.status}.", code="not_pending")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at", "updated_at"])
    audit_record(action="invitation.revoked", actor=actor.audit_user, request=request, obj=invitation,
                 organization=invitation.organization)


# --- API credentials --------------------------------------------------------------------------

def _new_secret(kind: str) -> tuple[str, str]:
    prefix = secrets.token_hex(6)
    return prefix, f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"


@transaction.atomic
def api_key_create(*, actor: Actor | None, organization: Organization, name: str,
                   roles: list[str] | None = None, request: HttpRequest | None = None,
                   reason: str = "") -> tuple[OrganizationApiKey, str]:
    """Create an organization API key; the secret is returned once and never stored.

    ``actor=None`` is the operator at the server's console (management command).
    """
    if actor is not None:
        if not policy.can_view_organization(actor, organization):
            raise NotFound()
        if not policy.can_manage_api_keys(actor, organization):
            raise PermissionDenied("Only an admin of this organization can create API keys.")
    name = (name or "").strip()
    if not name:
        raise ApplicationError.for_field("name", "Give the key a name, e.g. the integration it is for.")
    roles = _validate_roles(roles or [Role.TECHNOLOGIST])
    if not set(roles) <= ASSIGNABLE_KEY_ROLES:
        raise ApplicationError.for_field("roles", "API keys may have the technologist, viewer or finance role.")
    prefix, secret = _new_secret(KEY_PREFIX)
    key = OrganizationApiKey.objects.create(
        organization=organization, name=name, roles=roles, prefix=prefix,
        secret_hash=ApiCredential.hash_secret(secret), created_by=actor.user if actor else None)
    audit_record(action="api_key.created", actor=actor.audit_user if actor else None, request=request, obj=key,
                 organization=organization, reason=reason, extra={"name": name, "roles": roles})
    return key, secret


@transaction.atomic
def api_key_revoke(*, actor: Actor, key: OrganizationApiKey, request: HttpRequest | None = None) -> None:
    if not policy.can_view_organization(actor, key.organization):
        raise NotFound()
    if not policy.can_manage_api_keys(actor, key.organization):
        raise PermissionDenied("Only an admin of this organization can revoke API keys.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(action="api_key.revoked", actor=actor.audit_user, request=request, obj=key,
                     organization=key.organization)


@transaction.atomic
def personal_token_create(*, actor: Actor, name: str, expires_in_days: int | None = None,
                          request: HttpRequest | None = None) -> tuple[PersonalApiToken, str]:
    """A user's own bearer token; shown once."""
    if actor.user is None:
        raise PermissionDenied("Only a signed-in person can create a personal token.")
    name = (name or "").strip()
    if not name:
        raise ApplicationError.for_field("name", "Give the token a name.")
    if expires_in_days is not None and not 1 <= expires_in_days <= 365:
        raise ApplicationError.for_field("expires_in_days", "Choose between 1 and 365 days.")
    prefix, secret = _new_secret(TOKEN_PREFIX)
    token = PersonalApiToken.objects.create(
        user=actor.user, name=name, prefix=prefix, secret_hash=ApiCredential.hash_secret(secret),
        expires_at=timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None)
    audit_record(action="api_token.created", actor=actor.user, request=request, obj=token,
                 extra={"name": name})
    return token, secret


@transaction.atomic
def personal_token_revoke(*, actor: Actor, token: PersonalApiToken, request: HttpRequest | None = None) -> None:
    if actor.user is None or token.user_id != actor.user.pk:
        raise NotFound()
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(action="api_token.revoked", actor=actor.user, request=request, obj=token)


def credential_for_secret(secret: str, *, max_age: float = 0) -> PersonalApiToken | OrganizationApiKey | None:
    """Find the usable token or key a bearer secret names (constant-time comparison of hashes).

    ``max_age`` (seconds, organization API keys only): a key found usable at most that long ago in this
    process is answered without a query (DICOMweb clients send hundreds of requests a second). Saving or
    deleting a key or an organization through the ORM (``api_key_revoke`` does) drops the cached keys of
    this process at once; other processes, and changes made with ``QuerySet.update``, take effect
    within ``max_age``. Expiry is checked on every call.
    """
    parts = (secret or "").split("_", 2)
    if len(parts) != 3:
        return None
    kind, prefix, _ = parts
    model = {TOKEN_PREFIX: PersonalApiToken, KEY_PREFIX: OrganizationApiKey}.get(kind)
    if model is None:
        return None
    secret_hash = ApiCredential.hash_secret(secret)
    cacheable = max_age > 0 and model is OrganizationApiKey
    if cacheable:
        cached = _recent_keys.get(secret_hash)
        if cached is not None and time.monotonic() - cached[0] <= max_age and cached[1].is_usable():
            return copy.copy(cached[1])
    related = "user" if model is PersonalApiToken else "organization"
    credential = model.objects.select_related(related).filter(prefix=prefix).first()
    if credential is None or not secrets.compare_digest(credential.secret_hash, secret_hash):
        return None
    if not credential.is_usable():
        return None
    now = timezone.now()
    # Write last-used at most once a minute: a busy integration must not write on every request.
    if credential.last_used_at is None or now - credential.last_used_at > timedelta(minutes=1):
        model.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now
    if cacheable:
        if len(_recent_keys) >= _RECENT_KEYS_MAX:
            _recent_keys.clear()
        _recent_keys[secret_hash] = (time.monotonic(), copy.copy(credential))
    return credential


# Organization API keys recently found usable in this process: secret hash -> (when, key). Never the secret.
_recent_keys: dict[str, tuple[float, OrganizationApiKey]] = {}
_RECENT_KEYS_MAX = 1000


def _forget_recent_keys(**_kwargs) -> None:
    _recent_keys.clear()
    transaction.on_commit(_recent_keys.clear)  # again once the change is visible to other connections


for _sender in (OrganizationApiKey, Organization):
    post_save.connect(_forget_recent_keys, sender=_sender, dispatch_uid=f"forget_recent_keys_{_sender.__name__}_save")
    post_delete.connect(_forget_recent_keys, sender=_sender,
                        dispatch_uid=f"forget_recent_keys_{_sender.__name__}_delete")


# --- profile ----------------------------------------------------------------------------------

@transaction.atomic
def user_update_profile(*, actor: Actor, full_name: str | None = None, time_zone: str | None = None,
                        request: HttpRequest | None = None) -> User:
    """A person edits their own display name and time zone; the zone must be a known IANA name."""
    from accounts.models import TIME_ZONE_CHOICES

    if actor.user is None:
        raise PermissionDenied("Only a signed-in person has a profile to edit.", code="user_required")
    user = actor.user
    changes: dict[str, str] = {}
    if full_name is not None:
        full_name = full_name.strip()
        if len(full_name) > User._meta.get_field("full_name").max_length:
            raise ApplicationError.for_field("full_name", "Use at most 200 characters.")
        changes["full_name"] = full_name
    if time_zone is not None:
        time_zone = time_zone.strip()
        # TIME_ZONE_CHOICES is zoneinfo's list of region/city zones: what the pages offer too.
        if time_zone not in {value for value, _ in TIME_ZONE_CHOICES}:
            raise ApplicationError.for_field(
                "time_zone", f"Unknown time zone {time_zone!r}: use an IANA name such as America/Chicago.")
        changes["time_zone"] = time_zone
    changes = {field: value for field, value in changes.items() if getattr(user, field) != value}
    if changes:
        for field, value in changes.items():
            setattr(user, field, value)
        user.save(update_fields=list(changes))
        audit_record(action="user.profile_updated", actor=user, request=request, obj=user,
                     extra={"fields": sorted(changes)})
    return user


# --- audit log access (pages) -----------------------------------------------------------------

AUDIT_LOG_ACCESS_ACTIONS = frozenset({"audit_log.viewed", "audit_log.exported", "audit_log.verified"})


def audit_log_access_record(*, actor: Actor, action: str, request: HttpRequest | None = None,
                            extra: dict | None = None) -> None:
    """Reading the audit log is itself audited: who looked, with which filters, what they took away."""
    if not policy.can_view_audit_log(actor):
        raise NotFound()
    if action not in AUDIT_LOG_ACCESS_ACTIONS:
        raise ApplicationError(f"Unknown audit-log access action {action!r}.", code="invalid_action")
    audit_record(action=action, actor=actor.audit_user, request=request, object_type="accounts.auditevent",
                 extra=extra or {})


@transaction.atomic
def independent_radiologist_register(*, user: User, full_name: str, country: str = "US",
                                     request: HttpRequest | None = None) -> Membership:
    """A radiologist who signs up on their own gets a one-person radiology group they administer.

    That membership (admin + radiologist) is what makes them a professional who must enroll in MFA,
    keeps credentials, and can later be offered reads; a practice can invite colleagues into it.
    """
    country = (country or "US").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ApplicationError.for_field("country", "Use the two-letter country code, e.g. US.")
    full_name = (full_name or "").strip()
    if not full_name:
        raise ApplicationError.for_field("full_name", "Enter your full name as licensed.")
    base = slugify(full_name)[:60] or "radiologist"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    organization = Organization.objects.create(
        name=f"{full_name} (independent)", legal_name=full_name, slug=slug,
        kind=Organization.Kind.RADIOLOGY_GROUP, country=country, region="", time_zone=user.time_zone)
    user.full_name = full_name
    user.kind = User.Kind.PROFESSIONAL
    user.save(update_fields=["full_name", "kind"])
    membership = Membership.objects.create(user=user, organization=organization,
                                           roles=[Role.ADMIN, Role.RADIOLOGIST])
    audit_record(action="radiologist.signed_up", actor=user, request=request, obj=organization,
                 organization=organization)
    return membership
