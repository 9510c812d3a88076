"""The share pages (issue 17, item 5): the patient makes, lists and revokes links; the doctor, without an
account, opens one with its code and reads the report and the images; after revocation, expiry or lock-out
the link answers a plain refusal and never the report; nobody else reaches a patient's shares (404).
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from reporting.share_models import MAX_FAILED_CODES, DoctorShare
from reporting.views.share import SHARE_SESSION_KEY
from studies.models import Instance
from tests.marketplace.helpers import ingest_study
from tests.reporting.patient_helpers import SUMMARY, new_patient, signed_order

pytestmark = pytest.mark.django_db


def _list_url(order) -> str:
    return reverse("doctor_share_list", args=[order.public_id])


def _make(login, order, **fields) -> tuple[str, str]:
    """The patient makes a share through the page: (the link's path, the code), read off the one page
    that shows them."""
    response = login(order.patient).post(_list_url(order), {"label": "Dr Rivera", "days": "14", **fields})
    assert response.status_code == 200, response.content.decode()[:500]
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    url = re.search(r'id="share-url" readonly value="([^"]+)"', page).group(1)
    code = re.search(r'id="share-code" readonly value="(\d{6})"', page).group(1)
    return url.split("testserver", 1)[-1], code


def _opened(path: str, code: str) -> Client:
    doctor = Client()
    response = doctor.post(path, {"code": code})
    assert response.status_code == 302
    assert response["Location"] == path
    return doctor


def _image_path(path: str, page: str) -> str:
    return re.search(r'id="share-image" src="([^"]+)"', page).group(1).replace("&amp;", "&")


def test_the_share_lifecycle_from_making_to_revoking(cast, login):
    order = signed_order(cast)
    path, code = _make(login, order)
    doctor = Client()
    asked = doctor.get(path)
    assert asked.status_code == 200
    assert 'id="share-code-form"' in asked.content.decode()
    assert SUMMARY not in asked.content.decode()
    doctor = _opened(path, code)
    page = doctor.get(path)
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    body = page.content.decode()
    assert SUMMARY in body
    assert "No intracranial hemorrhage." in body
    assert "agrees with the original report" in body
    image = doctor.get(_image_path(path, body))
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"
    assert image["Cache-Control"].startswith("private, max-age=")
    reads = AuditEvent.objects.filter(actor__isnull=True)
    assert reads.filter(action="report.viewed_by_doctor").count() == 1
    assert reads.filter(action="study.accessed", extra__via="doctor_share").count() == 1
    listed = login(order.patient).get(_list_url(order)).content.decode()
    share = DoctorShare.objects.get()
    assert 'data-state="active"' in listed
    assert "last opened" in listed
    assert "(1 time)" in listed

    revoked = login(order.patient).post(reverse("doctor_share_revoke", args=[order.public_id, share.public_id]))
    assert revoked.status_code == 302
    assert revoked["Location"] == _list_url(order)
    refused = doctor.get(path)
    assert refused.status_code == 410
    assert "withdrawn" in refused.content.decode()
    assert SUMMARY not in refused.content.decode()
    assert doctor.get(_image_path(path, body)).status_code == 410
    assert 'data-state="revoked"' in login(order.patient).get(_list_url(order)).content.decode()
    assert AuditEvent.objects.filter(action="doctor_share.revoked", actor=order.patient).exists()


def test_an_expired_link_is_refused_even_in_an_opened_session(cast, login):
    order = signed_order(cast)
    path, code = _make(login, order, days="1")
    doctor = _opened(path, code)
    DoctorShare.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    refused = doctor.get(path)
    assert refused.status_code == 410
    assert "expired" in refused.content.decode()
    assert SUMMARY not in refused.content.decode()
    assert 'data-state="expired"' in login(order.patient).get(_list_url(order)).content.decode()


def test_five_wrong_codes_lock_the_link_and_the_patient_sees_it(cast, login):
    order = signed_order(cast)
    path, code = _make(login, order)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    doctor = Client()
    for attempt in range(1, MAX_FAILED_CODES):
        response = doctor.post(path, {"code": wrong})
        assert response.status_code == 400
        assert f"{MAX_FAILED_CODES - attempt} tr" in response.content.decode()
    locked = doctor.post(path, {"code": wrong})
    assert locked.status_code == 410
    assert "locked" in locked.content.decode()
    assert Client().post(path, {"code": code}).status_code == 410  # the right code, too late
    assert 'data-state="locked"' in login(order.patient).get(_list_url(order)).content.decode()


def test_the_opening_lasts_for_the_session_and_opens_only_that_share(cast, login):
    order = signed_order(cast)
    path, code = _make(login, order)
    other_path, _ = _make(login, order, label="Dr Okafor")
    doctor = _opened(path, code)
    assert 'id="share-code-form"' in doctor.get(other_path).content.decode()
    session = doctor.session
    session[SHARE_SESSION_KEY] = {k: time.time() - 1 for k in session[SHARE_SESSION_KEY]}
    session.save()
    assert 'id="share-code-form"' in doctor.get(path).content.decode()


def test_an_image_needs_the_code_and_belongs_to_the_orders_study(cast, login):
    order = signed_order(cast)
    path, code = _make(login, order)
    own = Instance.objects.get(study=order.study).sop_instance_uid
    own_url = reverse("shared_image", args=[path.strip("/").split("/")[-1], own])
    assert Client().get(own_url).status_code == 404  # no code entered in this browser
    doctor = _opened(path, code)
    assert doctor.get(own_url).status_code == 200
    elsewhere = Instance.objects.get(study=ingest_study(cast.center, modality="CT")).sop_instance_uid
    theirs = Instance.objects.get(study=signed_order(cast, new_patient("p2@example.test")).study).sop_instance_uid
    for sop in (elsewhere, theirs, "1.2.3.4"):
        response = doctor.get(reverse("shared_image", args=[path.strip("/").split("/")[-1], sop]))
        assert response.status_code == 404, sop
    assert doctor.get(own_url + "?frame=x").status_code == 400
    assert doctor.get(own_url + "?frame=9").status_code == 404


@pytest.mark.parametrize("token", ["x" * 43, "short", "A" * 200])
def test_an_unknown_link_answers_a_plain_404(db, token):
    response = Client().get(reverse("shared_report", args=[token]))
    assert response.status_code == 404
    assert 'id="share-closed"' in response.content.decode()
    assert Client().post(reverse("shared_report", args=[token]), {"code": "123456"}).status_code == 404


def test_nobody_but_the_ordering_patient_reaches_the_share_pages(cast, login):
    order = signed_order(cast)
    share = DoctorShare.objects.get(pk=_make_share(login, order))
    revoke = reverse("doctor_share_revoke", args=[order.public_id, share.public_id])
    for name in ("center_admin", "technologist", "radiologist", "other_admin", "platform_staff"):
        client = login(cast.users[name])
        assert client.get(_list_url(order)).status_code == 404, name
        assert client.post(_list_url(order), {"label": "Mine", "days": "3"}).status_code == 404, name
        assert client.post(revoke).status_code == 404, name
    stranger = login(new_patient("stranger@example.test"))
    assert stranger.get(_list_url(order)).status_code == 404
    assert stranger.post(revoke).status_code == 404
    own_order_of_stranger = signed_order(cast, new_patient("p3@example.test"))
    foreign_revoke = reverse("doctor_share_revoke", args=[own_order_of_stranger.public_id, share.public_id])
    assert login(own_order_of_stranger.patient).post(foreign_revoke).status_code == 404  # another order's share
    assert Client().get(_list_url(order)).status_code == 302  # sign in first
    share.refresh_from_db()
    assert share.status == DoctorShare.Status.ACTIVE
    assert DoctorShare.objects.count() == 1


def _make_share(login, order) -> int:
    _make(login, order)
    return DoctorShare.objects.get(order=order).pk


def test_bad_form_input_is_shown_by_field_and_writes_nothing(cast, login):
    order = signed_order(cast)
    client = login(order.patient)
    for fields, fragment in (({"label": "", "days": "14"}, "This field is required"),
                             ({"label": "Dr R", "days": "45"}, "less than or equal to 30"),
                             ({"label": "Dr R", "days": "14", "doctor_email": "nope"}, "not an email address"),
                             ({"label": "Dr R", "days": "14", "email_code": "on"}, "to send them the code")):
        response = client.post(_list_url(order), fields)
        assert response.status_code == 400, fields
        assert fragment in response.content.decode(), fields
        assert 'class="errorlist"' in response.content.decode()
    assert not DoctorShare.objects.exists()


def test_the_form_is_not_offered_before_the_report_is_signed(cast, login):
    from tests.reporting.patient_helpers import claimed_order

    order = claimed_order(cast)
    page = login(order.patient).get(_list_url(order)).content.decode()
    assert 'id="share-not-ready"' in page
    assert 'id="share-form"' not in page
    refused = login(order.patient).post(_list_url(order), {"label": "Dr R", "days": "14"})
    assert refused.status_code == 400
    assert "once the specialist has signed it" in refused.content.decode()
    assert not DoctorShare.objects.exists()
