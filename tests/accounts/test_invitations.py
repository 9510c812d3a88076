"""Invitations: chosen role, emailed token (only its hash kept), expiry, single use, own email only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import policy, services
from accounts.models import ApiCredential, AuditEvent, Invitation, Membership
from core.errors import ApplicationError, NotFound, PermissionDenied
from tests.factories import UserFactory


def _actor(user):
    return policy.actor_for_user(user)


def test_admin_invites_with_a_role_and_the_email_carries_a_single_use_link(
    cast, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = services.invitation_create(
            actor=_actor(cast.center_admin),
            organization=cast.center,
            email="New.Tech@Example.test",
            role="technologist",
        )
    assert invitation.email == "new.tech@example.test"
    assert invitation.token_hash == ApiCredential.hash_secret(token)
    assert token not in invitation.token_hash
    assert len(mailoutbox) == 1
    assert f"/invitations/{token}/" in mailoutbox[0].body
    assert AuditEvent.objects.filter(action="invitation.created", organization=cast.center).exists()

    newcomer = UserFactory(email="new.tech@example.test")
    membership = services.invitation_accept(token=token, user=newcomer)
    assert membership.organization == cast.center
    assert membership.roles == ["technologist"]
    with pytest.raises(NotFound):
        services.invitation_accept(token=token, user=newcomer)


@pytest.mark.parametrize("inviter", ["technologist", "center_viewer", "center_finance"])
def test_non_admins_cannot_invite(cast, inviter):
    with pytest.raises(PermissionDenied):
        services.invitation_create(
            actor=_actor(cast.users[inviter]), organization=cast.center, email="x@example.test", role="admin"
        )
    assert not Invitation.objects.exists()


def test_another_organizations_admin_cannot_even_see_the_organization(cast):
    with pytest.raises(NotFound):
        services.invitation_create(
            actor=_actor(cast.other_admin), organization=cast.center, email="x@example.test", role="viewer"
        )


def test_expired_invitation_is_refused(cast):
    invitation, token = services.invitation_create(
        actor=_actor(cast.center_admin), organization=cast.center, email="late@example.test", role="viewer"
    )
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(NotFound):
        services.invitation_accept(token=token, user=UserFactory(email="late@example.test"))
    assert not Membership.objects.filter(user__email="late@example.test").exists()


def test_invitation_for_someone_else_is_refused_without_confirming_it_exists(cast):
    _, token = services.invitation_create(
        actor=_actor(cast.center_admin), organization=cast.center, email="intended@example.test", role="admin"
    )
    with pytest.raises(NotFound):
        services.invitation_accept(token=token, user=cast.other_admin)
    assert not Membership.objects.filter(user=cast.other_admin, organization=cast.center).exists()


def test_unknown_and_revoked_tokens_are_refused(cast):
    invitation, token = services.invitation_create(
        actor=_actor(cast.center_admin), organization=cast.center, email="gone@example.test", role="viewer"
    )
    services.invitation_revoke(actor=_actor(cast.center_admin), invitation=invitation)
    user = UserFactory(email="gone@example.test")
    for bad in (token, "not-a-token", ""):
        with pytest.raises(NotFound):
            services.invitation_accept(token=bad, user=user)


def test_reinviting_the_same_email_revokes_the_older_link(cast):
    admin = _actor(cast.center_admin)
    _, old = services.invitation_create(
        actor=admin, organization=cast.center, email="twice@example.test", role="viewer"
    )
    _, new = services.invitation_create(actor=admin, organization=cast.center, email="twice@example.test", role="admin")
    user = UserFactory(email="twice@example.test")
    with pytest.raises(NotFound):
        services.invitation_accept(token=old, user=user)
    assert services.invitation_accept(token=new, user=user).roles == ["admin"]


def test_existing_member_cannot_be_invited_again(cast):
    with pytest.raises(ApplicationError) as info:
        services.invitation_create(
            actor=_actor(cast.center_admin), organization=cast.center, email=cast.technologist.email, role="admin"
        )
    assert info.value.fields == {"email": [f"{cast.technologist.email} is already a member of {cast.center}."]}


def test_new_person_registers_through_the_invitation_with_a_verified_email(cast):
    from allauth.account.models import EmailAddress

    _, token = services.invitation_create(
        actor=_actor(cast.center_admin), organization=cast.center, email="fresh@example.test", role="radiologist"
    )
    with pytest.raises(ApplicationError) as weak:
        services.invitation_register_and_accept(token=token, full_name="Dr Fresh", password="123")
    assert "password" in weak.value.fields
    user = services.invitation_register_and_accept(token=token, full_name="Dr Fresh", password="a-strong-password-991")
    assert user.kind == "professional"
    assert EmailAddress.objects.get(user=user).verified
    assert Membership.objects.get(user=user).roles == ["radiologist"]


def test_duplicate_email_cannot_register_twice(cast):
    _, token = services.invitation_create(
        actor=_actor(cast.center_admin), organization=cast.center, email="dupe@example.test", role="viewer"
    )
    UserFactory(email="dupe@example.test")
    with pytest.raises(ApplicationError) as info:
        services.invitation_register_and_accept(token=token, full_name="X", password="a-strong-password-991")
    assert info.value.code == "account_exists"


def test_role_escalation_by_a_technologist_is_refused(cast):
    own = Membership.objects.get(user=cast.technologist)
    with pytest.raises(PermissionDenied):
        services.membership_set_roles(actor=_actor(cast.technologist), membership=own, roles=["admin"])
    own.refresh_from_db()
    assert own.roles == ["technologist"]


def test_last_admin_keeps_the_admin_role(cast):
    own = Membership.objects.get(user=cast.center_admin)
    with pytest.raises(ApplicationError) as info:
        services.membership_set_roles(actor=_actor(cast.center_admin), membership=own, roles=["viewer"])
    assert info.value.code == "last_admin"


def test_admin_changes_roles_and_it_is_audited(cast):
    membership = Membership.objects.get(user=cast.technologist)
    services.membership_set_roles(
        actor=_actor(cast.center_admin), membership=membership, roles=["technologist", "viewer"]
    )
    membership.refresh_from_db()
    assert membership.roles == ["technologist", "viewer"]
    event = AuditEvent.objects.get(action="membership.roles_changed")
    assert event.extra["from"] == ["technologist"]
    assert event.extra["to"] == ["technologist", "viewer"]
