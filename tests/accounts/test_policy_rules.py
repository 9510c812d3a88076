"""accounts.policy as its users state it (issue 22 item 6): who needs MFA and the idle timeout, who opens the
admin site, what an anonymous or deactivated user is, who is a patient, and what each role may see."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from accounts import policy, services
from accounts.models import Membership, OrganizationApiKey, PatientProfile, User
from accounts.patients import patient_details_save
from tests.factories import MembershipFactory, UserFactory


def _platform_member(cast, roles: list[str], **user_fields) -> User:
    return MembershipFactory(organization=cast.platform, roles=roles, user__kind=User.Kind.PROFESSIONAL,
                             **{f"user__{k}": v for k, v in user_fields.items()}).user


def actor(user):
    return policy.actor_for_user(user)


def test_mfa_and_the_idle_timeout_apply_to_patient_data_roles_and_to_every_platform_member(cast):
    platform_finance = _platform_member(cast, ["finance"])
    platform_viewer = _platform_member(cast, ["viewer"])
    needs = {cast.center_admin, cast.technologist, cast.radiologist, cast.platform_staff, platform_finance,
             platform_viewer}
    needs_not = {cast.center_finance, cast.center_viewer, cast.patient}
    for user in needs:
        assert policy.requires_mfa(actor(user)), user.email
        assert policy.has_idle_timeout(actor(user)), user.email
    for user in needs_not:
        assert not policy.requires_mfa(actor(user)), user.email
        assert not policy.has_idle_timeout(actor(user)), user.email
    assert not policy.requires_mfa(policy.ANONYMOUS)
    key, _ = services.api_key_create(actor=None, organization=cast.center, name="modality", roles=["technologist"])
    assert not policy.requires_mfa(policy.actor_for_api_key(key))  # a key has no person to enrol


def test_the_admin_site_opens_to_platform_operations_with_is_staff_only(cast):
    ops_staff = _platform_member(cast, ["admin"], is_staff=True)
    ops_no_staff = _platform_member(cast, ["admin"])
    finance_staff = _platform_member(cast, ["finance"], is_staff=True)
    center_admin_staff = MembershipFactory(organization=cast.center, roles=["admin"], user__is_staff=True).user
    assert policy.can_use_admin_site(actor(ops_staff))
    for user in (ops_no_staff, finance_staff, center_admin_staff, cast.platform_staff):
        assert not policy.can_use_admin_site(actor(user)), user.email
    assert not policy.can_use_admin_site(policy.ANONYMOUS)


@pytest.mark.parametrize("who", ["none", "anonymous", "inactive"])
def test_nobody_signed_in_is_the_anonymous_actor(cast, who):
    user = {"none": None, "anonymous": AnonymousUser()}.get(who)
    if who == "inactive":
        user = cast.center_admin
        user.is_active = False
        user.save()
    result = policy.actor_for_user(user, active_org_id=cast.center.pk)
    assert result is policy.ANONYMOUS
    assert not result.is_authenticated
    assert result.memberships == {}
    assert result.active_organization is None
    assert result.audit_user is None


def test_a_patient_is_a_patient_account_without_memberships(cast):
    assert actor(cast.patient).is_patient
    assert not actor(cast.radiologist).is_patient
    assert not actor(UserFactory(kind=User.Kind.PROFESSIONAL)).is_patient  # no membership, not a patient
    Membership.objects.create(user=cast.patient, organization=cast.center, roles=["viewer"])
    assert not actor(cast.patient).is_patient
    assert not policy.ANONYMOUS.is_patient


def test_roles_are_read_per_organization_from_active_memberships_only(cast):
    MembershipFactory(user=cast.center_admin, organization=cast.other_center, roles=["finance", "viewer"],
                      is_active=False)
    admin = actor(cast.center_admin)
    assert admin.is_authenticated
    assert admin.audit_user == cast.center_admin
    assert admin.roles_in(cast.center) == admin.roles_in(cast.center.pk) == frozenset({"admin"})
    assert admin.roles_in(cast.other_center) == frozenset()
    assert admin.roles_in(None) == frozenset()
    assert admin.has_role(cast.center, "viewer", "admin")
    assert not admin.has_role(cast.center, "finance")
    assert not admin.has_role(cast.other_center, "finance")
    assert admin.all_roles == admin.active_roles == frozenset({"admin"})


def test_the_active_organization_is_the_chosen_one_else_the_first_by_name(cast):
    MembershipFactory(user=cast.center_admin, organization=cast.other_center, roles=["viewer"])
    assert actor(cast.center_admin).active_organization == cast.other_center  # "Harbor…" before "Lakeside…"
    chosen = policy.actor_for_user(cast.center_admin, active_org_id=cast.center.pk)
    assert chosen.active_organization == cast.center
    assert chosen.active_roles == frozenset({"admin"})
    assert actor(cast.patient).active_organization is None


def test_platform_roles_decide_and_membership_alone_grants_nothing(cast):
    finance, viewer = _platform_member(cast, ["finance"]), _platform_member(cast, ["viewer"])
    ops = actor(cast.platform_staff)
    assert ops.is_platform_staff
    assert ops.is_platform_operations
    assert not ops.is_platform_finance
    assert actor(finance).is_platform_finance
    assert not actor(finance).is_platform_operations
    assert actor(viewer).is_platform_staff
    assert not actor(viewer).is_platform_operations
    assert not actor(viewer).is_platform_finance
    center_finance = actor(cast.center_finance)
    assert not center_finance.is_platform_finance
    assert not center_finance.is_platform_staff
    for user, sees_all in ((cast.platform_staff, True), (finance, True), (viewer, False), (cast.center_admin, False)):
        a = actor(user)
        assert policy.can_view_every_organization(a) is sees_all, user.email
        assert policy.can_view_audit_log(a) is sees_all, user.email
        assert policy.can_view_organization(a, cast.other_center) is sees_all, user.email
        assert policy.can_view_members(a, cast.other_center) is sees_all, user.email
    assert policy.can_view_organization(actor(cast.center_admin), cast.center)
    assert policy.can_view_members(actor(cast.center_viewer), cast.center)


def test_only_a_person_who_is_admin_of_the_organization_manages_members_and_keys(cast):
    for user, may in ((cast.center_admin, True), (cast.technologist, False), (cast.other_admin, False),
                      (cast.platform_staff, False)):
        assert policy.can_manage_members(actor(user), cast.center) is may, user.email
        assert policy.can_manage_api_keys(actor(user), cast.center) is may, user.email
    # Keys cannot be given the admin role (services refuse it); were one to hold it, it still manages nothing.
    key = OrganizationApiKey(organization=cast.center, name="admin key", roles=["admin"])
    key_actor = policy.actor_for_api_key(key)
    assert key_actor.is_authenticated
    assert key_actor.has_role(cast.center, "admin")
    assert not policy.can_manage_members(key_actor, cast.center)
    assert not policy.can_manage_api_keys(key_actor, cast.center)
    assert not policy.can_view_audit_log(key_actor)
    assert key_actor.active_organization == cast.center
    assert key_actor.audit_user is None


def test_the_request_actor_follows_the_session_choice_and_the_current_user(cast):
    MembershipFactory(user=cast.center_admin, organization=cast.other_center, roles=["viewer"])
    request = RequestFactory().get("/")
    request.user = cast.center_admin
    request.session = SessionStore()
    request.session[policy.ACTIVE_ORG_SESSION_KEY] = cast.center.pk
    first = policy.actor_from_request(request)
    assert first.active_organization == cast.center
    assert policy.actor_from_request(request) is first  # computed once per request
    request.user = cast.technologist  # authentication replaced the user: computed again
    assert policy.actor_from_request(request).user == cast.technologist
    key, _ = services.api_key_create(actor=None, organization=cast.center, name="k", roles=["viewer"])
    request.auth = key
    assert policy.actor_from_request(request).api_key == key
    bare = RequestFactory().get("/")
    bare.user = AnonymousUser()
    assert policy.actor_from_request(bare) is policy.ANONYMOUS


def test_a_platform_person_who_also_belongs_to_a_center_keeps_their_platform_role(cast):
    MembershipFactory(user=cast.platform_staff, organization=cast.center, roles=["viewer"])
    finance = _platform_member(cast, ["finance"])
    MembershipFactory(user=finance, organization=cast.other_center, roles=["viewer"])
    ops = actor(cast.platform_staff)
    assert ops.is_platform_staff
    assert ops.is_platform_operations
    assert policy.can_view_every_organization(ops)
    assert actor(finance).is_platform_finance
    assert policy.can_view_audit_log(actor(finance))


def test_a_patient_acts_in_their_own_private_space_and_nobody_else_has_one(cast):
    assert actor(cast.patient).personal_space_id is None  # no details yet: no space
    other_patient = UserFactory(kind=User.Kind.PATIENT)
    for user in (other_patient, cast.patient):
        patient_details_save(actor=actor(user), date_of_birth=dt.date(1980, 5, 1), country="US", region="TX")
    for user in (cast.patient, other_patient):
        assert actor(user).personal_space_id == PatientProfile.objects.get(user=user).space_id, user.email
    assert actor(cast.patient).personal_space_id != actor(other_patient).personal_space_id
    assert actor(cast.radiologist).personal_space_id is None
    assert policy.actor_for_api_key(OrganizationApiKey(organization=cast.center, name="k")).personal_space_id is None
