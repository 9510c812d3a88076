"""Every route × every principal: the expected status for each cell (reliability.md, "Access").

Principals: anonymous, each role at the center, a radiologist (in a group), another center's
admin, platform staff and a patient. Objects belong to the center. Foreign and missing objects
look the same: 404.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.urls import reverse

from accounts import policy, services
from accounts.models import Membership, Notification
from studies import synthetic
from studies.ingest import Source, ingest_stream
from tests.marketplace.matrix_api import ROWS as MARKETPLACE_API_ROWS
from tests.marketplace.matrix_objects import marketplace_objects
from tests.marketplace.matrix_pages import ROWS as MARKETPLACE_PAGE_ROWS
from tests.marketplace.matrix_webhooks import ROWS as MARKETPLACE_WEBHOOK_ROWS
from tests.test_route_policy import DECLARED

PRINCIPALS = ["anonymous", "center_admin", "technologist", "center_finance", "center_viewer", "radiologist",
              "other_admin", "platform_staff", "patient"]
SIGNED_IN = PRINCIPALS[1:]
CENTER = {"center_admin", "technologist", "center_finance", "center_viewer"}
ADMINS_OF_THEIR_ACTIVE_ORG = {"center_admin", "other_admin", "platform_staff"}


def expect(ok: set[str] | str, *, ok_status=200, others=404, anonymous=302, method_not_allowed=False) -> dict:
    """Build one row of the matrix: ``ok`` principals get ``ok_status``, the rest ``others``."""
    allowed = set(SIGNED_IN) if ok == "all" else ok
    row = {p: (405 if method_not_allowed else ok_status) if p in allowed else others for p in SIGNED_IN}
    row["anonymous"] = anonymous
    return row


PAGE, API = 302, 401
STUDY_VIEWERS = {"center_admin", "technologist", "center_viewer"}  # finance sees no images
STUDY_BROWSERS = STUDY_VIEWERS | {"radiologist", "other_admin"}  # those with a study list of their own


def STUDY(o):  # noqa: N802 - URL kwargs builders for a study's DICOMweb resources
    return {"study_uid": o["instance"].study.study_instance_uid}


def SERIES(o):  # noqa: N802
    return {**STUDY(o), "series_uid": o["instance"].series.series_instance_uid}


def INSTANCE(o):  # noqa: N802
    return {**SERIES(o), "sop_uid": o["instance"].sop_instance_uid}


def ingested_instance(organization, spec_seed: int):
    """One small real CT instance, ingested (file and index) for ``organization``."""
    from datetime import date
    from io import BytesIO

    spec = synthetic.StudySpec(patient=synthetic.demo_patient(spec_seed), accession=f"MX{spec_seed:05d}",
                               description="CT HEAD", study_date=date(2026, 10, 1))
    data = synthetic.to_bytes(synthetic.ct_series(spec, slices=1, size=32)[0])
    outcome = ingest_stream(organization=organization, stream=BytesIO(data), filename="m.dcm", source=Source.IMPORT)
    assert outcome.status == "stored", outcome.reason
    return outcome.instance  # what anonymous gets: a redirect to sign in, or 401 with the error format

def _credential_rows() -> dict:
    from tests.accounts.credentials_fixtures import matrix_object as obj

    radiologist, staff = {"radiologist"}, {"platform_staff"}
    members = set(SIGNED_IN) - {"patient"}
    directory = CENTER | {"other_admin", "platform_staff"}
    post_only = {"anonymous": PAGE, **{p: 405 for p in SIGNED_IN}}
    api_post_only = {"anonymous": API, **{p: 405 for p in SIGNED_IN}}
    return {
        "credentials_mine": (None, expect(radiologist, anonymous=PAGE)),
        "credential_add": (lambda o: {"kind": "license"}, expect(radiologist, anonymous=PAGE)),
        "credential_edit": (lambda o: {"kind": "license", "public_id": obj(o, "license")},
                            expect(radiologist, anonymous=PAGE)),
        "credential_delete": (lambda o: {"kind": "license", "public_id": obj(o, "license")}, post_only),
        "credential_document_upload": (lambda o: {"kind": "license", "public_id": obj(o, "license")}, post_only),
        "credential_document": (lambda o: {"public_id": obj(o, "document")},
                                expect(radiologist | staff, anonymous=PAGE)),
        "onboarding": (None, expect(radiologist, ok_status=302, anonymous=PAGE)),
        "onboarding_step": (lambda o: {"step": "licenses"}, expect(radiologist, anonymous=PAGE)),
        "verification_queue": (None, expect(staff, anonymous=PAGE)),
        "verification_review": (lambda o: {"kind": "license", "public_id": obj(o, "license")},
                                expect(staff, anonymous=PAGE)),
        "group_credentials": (None, expect(set(), anonymous=PAGE)),  # the cast has no group admin
        "center_privileges": (None, expect({"center_admin", "other_admin"}, anonymous=PAGE)),
        "privilege_grant": (None, post_only),
        "privilege_change": (lambda o: {"public_id": obj(o, "privilege")}, post_only),
        "radiologist_directory": (None, expect(directory, anonymous=PAGE)),
        "radiologist_profile_public": (lambda o: {"public_id": obj(o, "profile")}, expect(members, anonymous=PAGE)),
        "radiologist_photo": (lambda o: {"public_id": obj(o, "photo")}, expect(members, anonymous=PAGE)),
        "api_my_radiologist_profile": (None, expect(radiologist, anonymous=API)),
        "api_my_radiologist_profile_submit": (None, api_post_only),
        "api_my_credentials": (lambda o: {"kind": "license"}, expect(radiologist, anonymous=API)),
        "api_my_credential_detail": (lambda o: {"kind": "license", "public_id": obj(o, "license")},
                                     expect(radiologist, anonymous=API)),
        "api_my_credential_documents": (lambda o: {"kind": "license", "public_id": obj(o, "license")},
                                        api_post_only),
        "api_verification_queue": (None, expect(staff, anonymous=API)),
        "api_credential_decision": (lambda o: {"kind": "license", "public_id": obj(o, "license")}, api_post_only),
        "api_radiologists": (None, expect(directory, anonymous=API)),
        "api_radiologist_detail": (lambda o: {"public_id": obj(o, "profile")}, expect(members, anonymous=API)),
        "api_radiologist_eligibility": (lambda o: {"public_id": obj(o, "profile")},
                                        expect(CENTER | {"other_admin"}, anonymous=API)),
        "api_privileges": (lambda o: {"organization_id": o["center"].public_id},
                           expect({"center_admin"}, anonymous=API)),
        "api_privilege_detail": (lambda o: {"organization_id": o["center"].public_id,
                                            "public_id": obj(o, "privilege")},
                                 expect({"center_admin"}, anonymous=API)),
    }


# route name → (kwargs builder, expected row)
MATRIX = {
    # public
    "healthz": (None, expect("all", anonymous=200)),
    "api_schema": (None, expect("all", anonymous=200)),
    "api_docs": (None, expect("all", anonymous=200)),
    "api_redoc": (None, expect("all", anonymous=200)),
    "favicon": (None, expect("all", ok_status=302, anonymous=302)),
    # pages about oneself
    "dashboard": (None, expect("all", anonymous=PAGE)),
    "profile": (None, expect("all", anonymous=PAGE)),
    "token_list": (None, expect("all", anonymous=PAGE)),
    "token_create": (None, expect("all", anonymous=PAGE)),
    "token_revoke": (lambda o: {"public_id": o["token"].public_id}, expect("all", anonymous=PAGE,
                                                                            method_not_allowed=True)),
    "organization_switch": (None, expect("all", anonymous=PAGE, method_not_allowed=True)),
    "notification_list": (None, expect("all", anonymous=PAGE)),
    # the notification's id travels in the POST body (the model has no public UUID): no foreign-object
    # row here; tests/accounts/test_notifications.py probes another person's and a missing id
    "notification_mark_read": (lambda o: {"public_id": o["notification"].public_id},
                               expect("all", anonymous=PAGE, method_not_allowed=True)),
    "notification_mark_all_read": (None, expect("all", anonymous=PAGE, method_not_allowed=True)),
    # pages about the active organization
    "member_list": (None, expect(set(SIGNED_IN) - {"patient"}, anonymous=PAGE)),
    "member_edit": (lambda o: {"public_id": o["membership"].public_id}, expect({"center_admin"}, anonymous=PAGE)),
    "member_remove": (lambda o: {"public_id": o["membership"].public_id}, expect({"center_admin"}, anonymous=PAGE)),
    "invitation_list": (None, expect(ADMINS_OF_THEIR_ACTIVE_ORG, anonymous=PAGE)),
    "invitation_revoke": (lambda o: {"public_id": o["invitation"].public_id},
                          expect("all", anonymous=PAGE, method_not_allowed=True)),
    "api_key_list": (None, expect(ADMINS_OF_THEIR_ACTIVE_ORG, anonymous=PAGE)),
    "api_key_create": (None, expect(ADMINS_OF_THEIR_ACTIVE_ORG, anonymous=PAGE)),
    "api_key_revoke": (lambda o: {"public_id": o["key"].public_id},
                       expect("all", anonymous=PAGE, method_not_allowed=True)),
    # platform operations
    "audit_log": (None, expect({"platform_staff"}, anonymous=PAGE)),
    "audit_log_export": (None, expect({"platform_staff"}, anonymous=PAGE)),
    "audit_log_verify": (None, expect({"platform_staff"}, anonymous=PAGE)),
    # a link with a token for someone who has no account yet
    "invitation_accept": (lambda o: {"token": o["invitation_token"]}, expect(set(), anonymous=200)),
    # API about oneself
    "api_me": (None, expect("all", anonymous=API)),
    "api_memberships": (None, expect("all", anonymous=API)),
    "api_tokens": (None, expect("all", anonymous=API)),
    "api_token_detail": (lambda o: {"public_id": o["token"].public_id}, expect({"center_admin"}, anonymous=API)),
    "api_organizations": (None, expect("all", anonymous=API)),
    # API about the center
    "api_organization_detail": (lambda o: {"public_id": o["center"].public_id},
                                expect(CENTER | {"platform_staff"}, anonymous=API)),
    "api_organization_activate": (lambda o: {"public_id": o["center"].public_id},
                                  expect("all", anonymous=API, method_not_allowed=True)),
    "api_members": (lambda o: {"organization_id": o["center"].public_id},
                    expect(CENTER | {"platform_staff"}, anonymous=API)),
    "api_member_detail": (lambda o: {"organization_id": o["center"].public_id, "public_id": o["membership"].public_id},
                          expect(CENTER | {"platform_staff"}, anonymous=API)),
    "api_invitations": (lambda o: {"organization_id": o["center"].public_id}, expect({"center_admin"}, anonymous=API)),
    "api_invitation_detail": (lambda o: {"organization_id": o["center"].public_id,
                                         "public_id": o["invitation"].public_id},
                              expect({"center_admin"}, anonymous=API)),
    "api_api_keys": (lambda o: {"organization_id": o["center"].public_id}, expect({"center_admin"}, anonymous=API)),
    "api_api_key_detail": (lambda o: {"organization_id": o["center"].public_id, "public_id": o["key"].public_id},
                           expect({"center_admin"}, anonymous=API)),
    # study pages (studies.policy): the study belongs to the center; admins of other centers upload
    # into their own center, so the upload page answers them too
    "study_list": (None, expect({"center_admin", "technologist", "center_viewer", "radiologist", "other_admin"},
                                anonymous=PAGE)),
    "study_upload": (None, expect({"center_admin", "technologist", "other_admin"}, anonymous=PAGE)),
    "study_upload_file": (None, expect("all", anonymous=PAGE, method_not_allowed=True)),
    "study_detail": (lambda o: {"public_id": o["study"].public_id}, expect(STUDY_VIEWERS, anonymous=PAGE)),
    "study_jurisdiction": (lambda o: {"public_id": o["study"].public_id},
                           expect("all", anonymous=PAGE, method_not_allowed=True)),
    "study_delete": (lambda o: {"public_id": o["study"].public_id}, expect({"center_admin"}, anonymous=PAGE)),
    "study_restore": (lambda o: {"public_id": o["study"].public_id},
                      expect("all", anonymous=PAGE, method_not_allowed=True)),
    "study_break_glass": (None, expect({"platform_staff"}, anonymous=PAGE)),
    "study_break_glass_end": (lambda o: {"public_id": o["emergency_grant"].public_id},
                              expect("all", anonymous=PAGE, method_not_allowed=True)),
    # the OHIF Viewer's shell: without a study in the URL it sends those who see studies to their study
    # list (tests/studies/test_viewer.py probes it with studies: own, foreign, missing, preview, full)
    "viewer_app": (None, expect(STUDY_BROWSERS, ok_status=302, anonymous=PAGE)),
    "viewer_app_route": (lambda o: {"route": "viewer"}, expect(STUDY_BROWSERS, ok_status=302, anonymous=PAGE)),
    "viewer_app_config": (None, expect("all", anonymous=200)),
    # DICOMweb: searches answer everyone signed in (each sees only their own studies); a study's
    # resources answer its center's viewing roles and are 404 for everyone else (no grant in the cast)
    "dicomweb_studies": (None, expect("all", anonymous=API)),
    "dicomweb_series": (None, expect("all", anonymous=API)),
    "dicomweb_instances": (None, expect("all", anonymous=API)),
    **{name: (build, expect(STUDY_VIEWERS, anonymous=API)) for name, build in {
        "dicomweb_study": STUDY,
        "dicomweb_study_series": STUDY,
        "dicomweb_study_instances": STUDY,
        "dicomweb_study_metadata": STUDY,
        "dicomweb_study_rendered": STUDY,
        "dicomweb_study_thumbnail": STUDY,
        "dicomweb_series_instances": SERIES,
        "dicomweb_series_retrieve": SERIES,
        "dicomweb_series_metadata": SERIES,
        "dicomweb_series_rendered": SERIES,
        "dicomweb_series_thumbnail": SERIES,
        "dicomweb_instance_retrieve": INSTANCE,
        "dicomweb_instance_metadata": INSTANCE,
        "dicomweb_instance_rendered": INSTANCE,
        "dicomweb_instance_thumbnail": INSTANCE,
        "dicomweb_instance_frames": lambda o: {**INSTANCE(o), "frames": "1"},
        "dicomweb_frames_rendered": lambda o: {**INSTANCE(o), "frames": "1"},
        "dicomweb_instance_bulkdata": lambda o: {**INSTANCE(o), "tag": "7FE00010"},
    }.items()},
    # credentialing (objects made on demand by tests/accounts/credentials_fixtures.matrix_object)
    **{name: row for name, row in _credential_rows().items()},
    # marketplace (objects from tests/marketplace/matrix_objects.py)
    **MARKETPLACE_PAGE_ROWS,
    **MARKETPLACE_API_ROWS,
    **MARKETPLACE_WEBHOOK_ROWS,
}


def emergency_grant(study):
    """An open break-glass grant of someone outside the cast (so that no principal's view changes)."""
    from datetime import timedelta

    from django.utils import timezone

    from studies.models import StudyAccessGrant
    from tests.factories import UserFactory

    return StudyAccessGrant.objects.create(user=UserFactory(), study=study, level="full", kind="emergency",
                                           reason="matrix probe of an emergency access",
                                           expires_at=timezone.now() + timedelta(minutes=30))


@pytest.fixture
def objects(cast):
    admin = policy.actor_for_user(cast.center_admin)
    invitation, invitation_token = services.invitation_create(actor=admin, organization=cast.center,
                                                              email="newcomer@example.test", role="viewer")
    key, _ = services.api_key_create(actor=admin, organization=cast.center, name="RIS bridge")
    token, _ = services.personal_token_create(actor=admin, name="laptop")
    return {
        "center": cast.center,
        "membership": Membership.objects.get(user=cast.technologist),
        "invitation": invitation,
        "invitation_token": invitation_token,
        "key": key,
        "token": token,
        "notification": Notification.objects.create(user=cast.center_admin, title="License expires soon"),
        "instance": (instance := ingested_instance(cast.center, 1)),
        "study": instance.study,
        "emergency_grant": emergency_grant(instance.study),
        **marketplace_objects(cast.center, cast.technologist),
    }


def test_the_matrix_covers_every_declared_route():
    assert set(MATRIX) == set(DECLARED)


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_access_matrix(route, cast, objects, login):
    build_kwargs, expected = MATRIX[route]
    url = reverse(route, kwargs=build_kwargs(objects) if build_kwargs else None)
    got = {}
    for principal in PRINCIPALS:
        client = login(None if principal == "anonymous" else cast.users[principal])
        got[principal] = client.get(url).status_code
    assert got == expected, f"{route} ({url})"


# Radiologists' public profiles belong to no tenant (every professional may see them): no "foreign" object.
# The viewer's route part is OHIF's mode name, not an object (its studies are probed in tests/studies/test_viewer.py).
NOT_TENANT_OWNED = {"invitation_accept", "radiologist_profile_public", "radiologist_photo", "api_radiologist_detail",
                    "api_radiologist_eligibility", "viewer_app_route"}
UUID_ROUTES = [name for name, (build, _) in MATRIX.items() if build and name not in NOT_TENANT_OWNED]


@pytest.mark.parametrize("route", sorted(UUID_ROUTES))
def test_a_missing_object_and_another_tenants_object_look_the_same(route, cast, objects, login):
    """For the center's admin, a random id and the other center's equivalent object both answer 404."""
    build_kwargs, expected = MATRIX[route]
    method = "post" if expected["center_admin"] == 405 else "get"  # POST-only routes are probed by POST
    other_admin = policy.actor_for_user(cast.other_admin)
    foreign = {
        "center": cast.other_center,
        "membership": Membership.objects.get(user=cast.other_admin),
        "invitation": services.invitation_create(actor=other_admin, organization=cast.other_center,
                                                 email="theirs@example.test", role="viewer")[0],
        "key": services.api_key_create(actor=other_admin, organization=cast.other_center, name="theirs")[0],
        "token": services.personal_token_create(actor=other_admin, name="theirs")[0],
        "notification": Notification.objects.create(user=cast.other_admin, title="Theirs"),
        "instance": (foreign_instance := ingested_instance(cast.other_center, 2)),
        "study": foreign_instance.study,
        "emergency_grant": emergency_grant(foreign_instance.study),
        **marketplace_objects(cast.other_center, cast.other_admin),
    }
    missing = {name: type("Missing", (), {"public_id": uuid.uuid4()})() for name in foreign}
    missing["instance"] = SimpleNamespace(
        study=SimpleNamespace(study_instance_uid=f"2.25.{uuid.uuid4().int}"),
        series=SimpleNamespace(series_instance_uid=f"2.25.{uuid.uuid4().int}"),
        sop_instance_uid=f"2.25.{uuid.uuid4().int}")
    client = login(cast.center_admin)
    for label, objs in (("foreign", foreign), ("missing", missing)):
        response = getattr(client, method)(reverse(route, kwargs=build_kwargs(objs)))
        assert response.status_code == 404, f"{route}: {label} object answered {response.status_code} to {method}"
    # Probing changed nothing of the other tenant's.
    foreign["invitation"].refresh_from_db()
    foreign["key"].refresh_from_db()
    foreign["token"].refresh_from_db()
    assert foreign["invitation"].revoked_at is None
    assert foreign["key"].revoked_at is None
    assert foreign["token"].revoked_at is None
    foreign["notification"].refresh_from_db()
    assert foreign["notification"].read_at is None
    foreign["study"].refresh_from_db()
    assert foreign["study"].deleted_at is None
