"""Sharing a second opinion with the patient's doctor (issue 17, item 5): the services.

A share is made only by the ordering patient and only for a signed report; its token and code are kept as
hashes; bad input names its field and writes nothing; the code opens it and five wrong codes lock it; an
expired, revoked or locked share refuses; every move and every read is audited.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from core.errors import ApplicationError, NotFound
from reporting import share_access, shares
from reporting.share_models import MAX_FAILED_CODES, DoctorShare
from tests.marketplace.helpers import actor
from tests.reporting.patient_helpers import SUMMARY, claimed_order, new_patient, signed_order

pytestmark = pytest.mark.django_db


def _share(cast, order=None, **kwargs) -> shares.NewShare:
    order = order or signed_order(cast)
    return shares.doctor_share_create(actor=actor(order.patient), order=order,
                                      **{"label": "Dr Rivera", **kwargs})


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_share_lasts_fourteen_days_and_keeps_only_hashes_of_its_link_and_code(cast, mailoutbox):
    before = timezone.now()
    new = _share(cast)
    share = DoctorShare.objects.get(pk=new.share.pk)
    token = new.url.rstrip("/").rsplit("/", 1)[-1]
    assert len(token) == share_access.TOKEN_CHARS
    assert len(new.code) == 6
    assert new.code.isdigit()
    assert token not in (share.token_hash, share.token_lookup)
    assert new.code not in share.code_hash
    assert timedelta(days=14) <= share.expires_at - before < timedelta(days=14, minutes=1)
    assert share.state == "active"
    assert share.failed_attempts == 0
    assert share_access.share_for_token(token) == share
    assert mailoutbox == []  # no doctor's email given: nothing is sent
    event = AuditEvent.objects.get(action="doctor_share.created")
    assert event.actor == cast.patient
    assert event.object_id == str(share.public_id)
    assert event.extra["days"] == 14
    assert new.code not in str(event.extra)
    assert token not in str(event.extra)


def test_the_link_and_the_code_are_emailed_separately_and_the_code_only_when_asked(
        cast, mailoutbox, django_capture_on_commit_callbacks):
    order = signed_order(cast)
    with django_capture_on_commit_callbacks(execute=True):
        new = _share(cast, order, doctor_email="Rivera@Clinic.example", days=3)
    assert [m.to for m in mailoutbox] == [["rivera@clinic.example"]]
    assert new.url in mailoutbox[0].body
    assert new.code not in mailoutbox[0].body
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        other = _share(cast, order, doctor_email="rivera@clinic.example", email_code=True)
    link_mail, code_mail = mailoutbox
    assert other.url in link_mail.body
    assert other.code not in link_mail.body
    assert other.code in code_mail.body
    assert other.url not in code_mail.body
    assert SUMMARY not in link_mail.body + code_mail.body  # no clinical content in email


def test_sharing_before_the_report_is_signed_is_refused(cast):
    order = claimed_order(cast)
    with pytest.raises(ApplicationError) as refused:
        _share(cast, order)
    assert refused.value.code == "report_not_ready"
    assert refused.value.status_code == 409
    assert not DoctorShare.objects.exists()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"label": "   "}, "label"),
    ({"label": "x" * 121}, "label"),
    ({"label": "Dr\x00Rivera"}, "label"),
    ({"label": ["Dr Rivera"]}, "label"),
    ({"days": 0}, "days"),
    ({"days": 31}, "days"),
    ({"days": "a fortnight"}, "days"),
    ({"doctor_email": "rivera at clinic"}, "doctor_email"),
    ({"email_code": True, "doctor_email": ""}, "doctor_email"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
        cast, mailoutbox, django_capture_on_commit_callbacks, kwargs, field):
    order = signed_order(cast)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationError) as refused:
        _share(cast, order, **{"doctor_email": "rivera@clinic.example", **kwargs})
    assert field in refused.value.fields
    assert not DoctorShare.objects.exists()
    assert mailoutbox == []
    assert not AuditEvent.objects.filter(action="doctor_share.created").exists()


def test_another_patient_can_neither_share_nor_list_nor_revoke(cast):
    order = signed_order(cast)
    share = _share(cast, order).share
    stranger = actor(new_patient("stranger@example.test"))
    for outsider in (stranger, actor(cast.radiologist), actor(cast.center_admin)):
        with pytest.raises(NotFound):
            shares.doctor_share_create(actor=outsider, order=order, label="Dr Who")
        with pytest.raises(NotFound):
            shares.doctor_shares_of(actor=outsider, order=order)
        with pytest.raises(NotFound):
            shares.doctor_share_revoke(actor=outsider, share=share)
    assert DoctorShare.objects.get().status == DoctorShare.Status.ACTIVE


def test_the_right_code_opens_and_wrong_codes_count_down_then_lock(cast):
    new = _share(cast)
    share = new.share
    assert share_access.doctor_share_unlock(share=share, code=f" {new.code[:3]} {new.code[3:]} ") == share
    for attempt in range(1, MAX_FAILED_CODES):
        with pytest.raises(ApplicationError) as refused:
            share_access.doctor_share_unlock(share=share, code=_wrong(new.code))
        assert "code" in refused.value.fields
        assert f"{MAX_FAILED_CODES - attempt} tr" in refused.value.message
        share.refresh_from_db()
        assert share.failed_attempts == attempt  # counted although the call was refused
    with pytest.raises(share_access.ShareClosed):
        share_access.doctor_share_unlock(share=share, code=_wrong(new.code))
    share.refresh_from_db()
    assert share.status == DoctorShare.Status.LOCKED
    assert share.locked_at is not None
    with pytest.raises(share_access.ShareClosed):  # the right code no longer helps
        share_access.doctor_share_unlock(share=share, code=new.code)
    with pytest.raises(share_access.ShareClosed):
        share_access.shared_report(share=share)
    actions = list(AuditEvent.objects.filter(object_id=str(share.public_id)).values_list("action", flat=True))
    assert actions.count("doctor_share.code_refused") == MAX_FAILED_CODES
    assert "doctor_share.locked" in actions


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", None])
def test_a_code_that_cannot_be_right_is_refused_without_counting(cast, code):
    share = _share(cast).share
    with pytest.raises(ApplicationError) as refused:
        share_access.doctor_share_unlock(share=share, code=code)
    assert "code" in refused.value.fields
    share.refresh_from_db()
    assert share.failed_attempts == 0


def test_a_revoked_share_refuses_everything_and_cannot_be_revoked_twice(cast):
    new = _share(cast)
    shares.doctor_share_revoke(actor=actor(cast.patient), share=new.share)
    share = DoctorShare.objects.get()
    assert share.state == "revoked"
    assert share.revoked_at is not None
    for read in (lambda: share_access.shared_report(share=share), lambda: share_access.shared_series(share=share),
                 lambda: share_access.doctor_share_unlock(share=share, code=new.code)):
        with pytest.raises(share_access.ShareClosed):
            read()
    with pytest.raises(ApplicationError) as refused:
        shares.doctor_share_revoke(actor=actor(cast.patient), share=share)
    assert refused.value.code == "invalid_transition"
    assert AuditEvent.objects.filter(action="doctor_share.revoked", actor=cast.patient).count() == 1


def test_an_expired_share_refuses_and_reads_as_expired(cast):
    new = _share(cast, days=1)
    share = new.share
    DoctorShare.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    share.refresh_from_db()
    assert share.state == "expired"
    with pytest.raises(share_access.ShareClosed) as refused:
        share_access.doctor_share_unlock(share=share, code=new.code)
    assert "expired" in refused.value.message
    with pytest.raises(share_access.ShareClosed):
        share_access.shared_report(share=share)


def test_a_token_with_the_right_start_but_the_wrong_rest_is_not_found(cast):
    new = _share(cast)
    token = new.url.rstrip("/").rsplit("/", 1)[-1]
    forged = token[:shares.TOKEN_LOOKUP_CHARS] + ("A" if token[-1] != "A" else "B") * (len(token) - 12)
    for bad in (forged, token[:-1], token + "x", "", "../" + token):
        with pytest.raises(NotFound):
            share_access.share_for_token(bad)


def test_the_report_read_is_audited_as_a_phi_read_and_counted(cast):
    share = _share(cast).share
    opinion = share_access.shared_report(share=share)
    assert opinion.summary == SUMMARY
    assert opinion.agreement_sentence.startswith("The specialist agrees")
    assert [s.title for s in opinion.sections][:1]
    assert all(s.text for s in opinion.sections)
    event = AuditEvent.objects.get(action="report.viewed_by_doctor")
    assert event.actor is None
    assert event.extra["share"] == str(share.public_id)
    assert event.object_id == str(opinion.report.public_id)
    share.refresh_from_db()
    assert share.times_opened == 1
    assert share.last_opened_at is not None


def test_images_are_only_the_orders_own_study_and_each_fetch_is_audited(cast):
    order = signed_order(cast)
    share = _share(cast, order).share
    series = share_access.shared_series(share=share)
    assert len(series) == 1
    assert len(series[0].images) == 1
    data = share_access.shared_image(share=share, sop_uid=series[0].images[0])
    assert data[:3] == b"\xff\xd8\xff"  # a JPEG
    event = AuditEvent.objects.get(action="study.accessed", extra__via="doctor_share")
    assert event.object_id == order.study.study_instance_uid
    assert event.extra["sop"] == series[0].images[0]
    other_order = signed_order(cast)  # the same patient's other study
    other = share_access.shared_series(share=_share(cast, other_order).share)[0].images[0]
    with pytest.raises(NotFound):
        share_access.shared_image(share=share, sop_uid=other)
    with pytest.raises(NotFound):
        share_access.shared_image(share=share, sop_uid=series[0].images[0], frame=2)


def test_the_database_refuses_a_revoked_share_without_its_time(cast):
    share = _share(cast).share
    with pytest.raises(IntegrityError), transaction.atomic():
        DoctorShare.objects.filter(pk=share.pk).update(status="revoked")
