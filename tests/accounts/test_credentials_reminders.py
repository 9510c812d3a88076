"""Expiry reminders: 60/30/7 days ahead, once per threshold, to the radiologist and their group admins."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail

from accounts import policy
from accounts.credentials import services
from accounts.models import CredentialReminder, Membership, Notification, User
from tests.accounts.credentials_fixtures import TODAY, add, license_data


def _group_admin(cast) -> User:
    admin = User.objects.create(email="group.admin@example.test", kind=User.Kind.PROFESSIONAL)
    Membership.objects.create(user=admin, organization=cast.group, roles=["admin"])
    return admin


def test_reminders_fire_once_per_threshold(cast, django_capture_on_commit_callbacks):
    admin = _group_admin(cast)
    expiry = TODAY + timedelta(days=90)
    add(cast.radiologist, "license", license_data(expires_on=expiry), verify_by=cast.platform_staff)
    sent_on = []
    for offset in range(0, 95):
        day = TODAY + timedelta(days=offset)
        with django_capture_on_commit_callbacks(execute=True):
            if services.credential_reminders_send(today=day):
                sent_on.append((expiry - day).days)
    assert sent_on == [60, 30, 7]
    assert sorted(CredentialReminder.objects.values_list("threshold_days", flat=True)) == [7, 30, 60]
    assert Notification.objects.filter(user=cast.radiologist).count() == 3
    assert Notification.objects.filter(user=admin).count() == 3
    recipients = [m.to[0] for m in mail.outbox]
    assert recipients.count(cast.radiologist.email) == 3
    assert recipients.count(admin.email) == 3
    assert "License US-TX" in Notification.objects.filter(user=cast.radiologist).first().title


def test_running_the_same_day_twice_sends_nothing_more(cast, django_capture_on_commit_callbacks):
    add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=20)))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.credential_reminders_send(today=TODAY) == 1
        assert services.credential_reminders_send(today=TODAY) == 0
    assert len(mail.outbox) == 1
    assert CredentialReminder.objects.get().threshold_days == 30  # first seen 20 days ahead: the 30-day warning only


def test_a_renewed_item_starts_its_thresholds_again(cast, django_capture_on_commit_callbacks):
    item = add(cast.radiologist, "license", license_data(expires_on=TODAY + timedelta(days=5)))
    assert services.credential_reminders_send(today=TODAY) == 1
    services.credential_update(actor=policy.actor_for_user(cast.radiologist), item=item,
                               data={"expires_on": TODAY + timedelta(days=60)})
    assert services.credential_reminders_send(today=TODAY) == 1
    assert sorted(CredentialReminder.objects.values_list("threshold_days", flat=True)) == [7, 60]


def test_rejected_and_far_off_items_get_no_reminder(cast):
    item = add(cast.radiologist, "license", license_data("FL", expires_on=TODAY + timedelta(days=10)))
    services.credential_reject(actor=policy.actor_for_user(cast.platform_staff), item=item, reason="wrong number")
    add(cast.radiologist, "license", license_data("TX", expires_on=TODAY + timedelta(days=61)))
    assert services.credential_reminders_send(today=TODAY) == 0
    assert not Notification.objects.exists()
