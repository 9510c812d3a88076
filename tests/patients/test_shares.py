"""A patient asks a center to share a study; the center's admins approve (choosing the study: a full grant for
the patient, long-lived, audited) or decline; either side revokes. One transition table, every move recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from studies.models import StudyAccessGrant, StudyShareRequest, StudyShareStatusChange
from studies.shares import SHARE_REASON
from tests.patients.conftest import new_patient, study_in

NEW = "/my/images/shares/new/"
LIST = "/studies/share-requests/"


def _ask(client, center, **fields):
    return client.post(NEW, {"center": str(center.public_id), "accession_number": "", "study_date": "", **fields})


@pytest.fixture
def center_study(cast):
    return study_in(cast.center, seed=11, accession="LKS77")


def test_share_lifecycle_request_approve_see_and_revoke_by_the_center(patient, cast, login, center_study):
    patient_client, admin = login(patient), login(cast.center_admin)
    assert _ask(patient_client, cast.center, accession_number="LKS77", note="My knee MRI").status_code == 302
    share = StudyShareRequest.objects.get()
    assert (share.status, share.center, share.patient) == ("requested", cast.center, patient)
    # Until approved the patient sees nothing of the center.
    assert patient_client.get(f"/my/images/{center_study.public_id}/").status_code == 404

    page = admin.get(LIST)
    assert page.status_code == 200
    open_request = page.context["open_requests"][0]
    assert [row.public_id for row in open_request["candidates"]] == [center_study.public_id]
    assert admin.post(f"{LIST}{share.public_id}/approve/", {"study": str(center_study.public_id)}).status_code == 302

    share.refresh_from_db()
    grant = share.grant
    answered = admin.get(LIST)
    assert answered.context["answered"] == [share]
    assert f"{LIST}{share.public_id}/revoke/" in answered.content.decode()
    assert (share.status, share.study, grant.user, grant.study) == ("approved", center_study, patient, center_study)
    assert (grant.level, grant.reason) == ("full", SHARE_REASON)
    assert grant.expires_at > timezone.now() + timedelta(days=3 * 365)
    images = patient_client.get("/my/images/")
    assert [item["row"].public_id for item in images.context["items"]] == [center_study.public_id]
    assert images.context["items"][0]["share"] == share
    assert patient_client.get(f"/my/images/{center_study.public_id}/").status_code == 200
    uid = center_study.study_instance_uid
    assert patient_client.get(f"/dicomweb/studies/{uid}/thumbnail").status_code == 200
    assert patient_client.get(f"/viewer/viewer?StudyInstanceUIDs={uid}").status_code in (200, 503)  # 503: no bundle

    assert admin.post(f"{LIST}{share.public_id}/revoke/").status_code == 302
    share.refresh_from_db()
    grant.refresh_from_db()
    assert share.status == "revoked"
    assert grant.revoked_at is not None
    assert patient_client.get(f"/my/images/{center_study.public_id}/").status_code == 404
    assert patient_client.get(f"/dicomweb/studies/{uid}/thumbnail").status_code == 404
    moves = [(c.from_status, c.to_status, c.changed_by) for c in StudyShareStatusChange.objects.filter(
        share_request=share)]
    assert moves == [("", "requested", patient), ("requested", "approved", cast.center_admin),
                     ("approved", "revoked", cast.center_admin)]
    reads = ["study.accessed", "study.ingested", "study.list_viewed", "study.viewer_opened"]
    actions = list(AuditEvent.objects.filter(action__startswith="study.").exclude(action__in=reads)
                   .values_list("action", flat=True).order_by("id"))
    assert actions == ["study.share_requested", "study.access_granted", "study.share_approved",
                       "study.share_revoked", "study.access_revoked"]


def test_the_patient_revokes_a_share_themselves(patient, cast, login, center_study):
    _ask(login(patient), cast.center, study_date="2026-09-14")
    share = StudyShareRequest.objects.get()
    login(cast.center_admin).post(f"{LIST}{share.public_id}/approve/", {"study": str(center_study.public_id)})
    assert login(patient).post(f"/my/images/shares/{share.public_id}/revoke/").status_code == 302
    share.refresh_from_db()
    assert share.status == "revoked"
    assert StudyAccessGrant.objects.get().revoked_at is not None
    assert AuditEvent.objects.get(action="study.access_revoked").actor == patient


def test_a_declined_request_tells_the_patient_why_and_can_not_be_approved_after(patient, cast, login, center_study):
    _ask(login(patient), cast.center, accession_number="NOPE1")
    share = StudyShareRequest.objects.get()
    admin = login(cast.center_admin)
    admin.post(f"{LIST}{share.public_id}/decline/", {"reason": "We have no study with that accession number."})
    share.refresh_from_db()
    assert share.status == "declined"
    assert "no study with that accession number" in login(patient).get("/my/images/").content.decode()
    response = admin.post(f"{LIST}{share.public_id}/approve/", {"study": str(center_study.public_id)}, follow=True)
    assert "already been answered" in response.content.decode()
    assert not StudyAccessGrant.objects.exists()


def test_declining_needs_a_reason_and_approving_needs_a_study_of_the_center(patient, cast, login):
    _ask(login(patient), cast.center, accession_number="LKS77")
    share = StudyShareRequest.objects.get()
    admin = login(cast.center_admin)
    page = admin.post(f"{LIST}{share.public_id}/decline/", {"reason": " "}, follow=True).content.decode()
    assert "Tell the patient why" in page
    foreign = study_in(cast.other_center, seed=12, accession="HB1")
    page = admin.post(f"{LIST}{share.public_id}/approve/", {"study": str(foreign.public_id)}, follow=True)
    assert "Choose one of the center&#x27;s studies" in page.content.decode()
    share.refresh_from_db()
    assert share.status == "requested"
    assert not StudyAccessGrant.objects.exists()


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"center": ""}, "center", "Choose the imaging center."),
    ({"accession_number": "", "study_date": ""}, "accession_number", "accession number or the study date"),
    ({"accession_number": "", "study_date": "2999-01-01"}, "study_date", "cannot be in the future"),
    ({"accession_number": "", "study_date": "14/09/2026"}, "study_date", "YYYY-MM-DD"),
])
def test_a_request_must_name_a_center_and_the_study(patient, cast, login, fields, field, message):
    response = login(patient).post(NEW, {"center": str(cast.center.public_id), "accession_number": "",
                                         "study_date": "", **fields})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not StudyShareRequest.objects.exists()


def test_a_patient_cannot_ask_a_patients_space_or_a_radiology_group(patient, cast, login):
    other = new_patient("other@example.test")
    for organization in (other.patient_profile.space, cast.group):
        response = _ask(login(patient), organization, accession_number="X1")
        assert response.status_code == 400
        assert not StudyShareRequest.objects.exists()


def test_nobody_but_the_patient_and_the_centers_admins_reaches_a_share(patient, cast, login, center_study):
    _ask(login(patient), cast.center, accession_number="LKS77")
    share = StudyShareRequest.objects.get()
    stranger = new_patient("stranger@example.test")
    for user in (stranger, cast.other_admin, cast.technologist, cast.radiologist):
        client = login(user)
        assert client.post(f"{LIST}{share.public_id}/approve/",
                           {"study": str(center_study.public_id)}).status_code == 404, user
        assert client.post(f"{LIST}{share.public_id}/decline/", {"reason": "no"}).status_code == 404, user
    assert login(stranger).post(f"/my/images/shares/{share.public_id}/revoke/").status_code == 404
    assert login(patient).post(f"{LIST}{share.public_id}/approve/",
                               {"study": str(center_study.public_id)}).status_code == 404  # not the center's admin
    assert login(cast.other_admin).get(LIST).context["open_requests"] == []
    for user in (patient, cast.technologist, cast.radiologist):
        assert login(user).get(LIST).status_code == 404, user
    share.refresh_from_db()
    assert share.status == "requested"
    assert not StudyAccessGrant.objects.exists()
