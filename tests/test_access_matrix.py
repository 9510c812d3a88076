"""Every route × every principal: the expected status for each cell (reliability.md, "Access").

Principals: anonymous, each role at the center, a radiologist (in a group), another center's
admin, platform operations (the admin role in the platform organization), platform finance and a
patient. Objects belong to the center. Foreign and missing objects look the same: 404.

Each route's row is also held to the access level its app declares in ``policy.ROUTES`` (issue 22):
nobody outside the level is let through, and the declaration is the narrowest level that admits
whom the route lets through (``ADMITS``), so weakening a declaration fails here.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import reverse

from accounts import policy, services
from accounts.models import Membership, Notification
from core.access import Access
from studies import synthetic
from studies.ingest import Source, ingest_stream
from tests.billing.matrix import ROWS as BILLING_ROWS
from tests.billing.matrix import billing_objects
from tests.conftest import enroll_totp
from tests.factories import MembershipFactory, UserFactory
from tests.marketplace.matrix_api import ROWS as MARKETPLACE_API_ROWS
from tests.marketplace.matrix_objects import marketplace_objects
from tests.marketplace.matrix_orders import ROWS as ORDER_ROWS
from tests.marketplace.matrix_orders import order_objects
from tests.marketplace.matrix_pages import ROWS as MARKETPLACE_PAGE_ROWS
from tests.marketplace.matrix_ris import ROWS as RIS_ROWS
from tests.marketplace.matrix_ris import ris_objects
from tests.marketplace.matrix_webhooks import ROWS as MARKETPLACE_WEBHOOK_ROWS
from tests.patients.matrix import ROWS as PATIENT_ROWS
from tests.patients.matrix import patient_objects
from tests.reporting.matrix import ROWS as REPORTING_ROWS
from tests.reporting.matrix import reporting_objects
from tests.reporting.share_matrix import SHARE_ROWS, share_objects
from tests.test_route_policy import DECLARED

PRINCIPALS = ["anonymous", "center_admin", "technologist", "center_finance", "center_viewer", "radiologist",
              "other_admin", "platform_operations", "platform_finance", "patient"]
SIGNED_IN = PRINCIPALS[1:]
CENTER = {"center_admin", "technologist", "center_finance", "center_viewer"}
ADMINS_OF_THEIR_ACTIVE_ORG = {"center_admin", "other_admin", "platform_operations"}
# Platform people act by role: operations (admin) verify, break the glass and support every organization;
# platform finance sees organizations, money and the audit log, never a patient's images or clinical data.
PLATFORM_OVERSIGHT = {"platform_operations", "platform_finance"}


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

    radiologist, staff = {"radiologist"}, {"platform_operations"}
    members = set(SIGNED_IN) - {"patient"}
    directory = CENTER | {"other_admin", "platform_operations"}
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
    "audit_log": (None, expect(PLATFORM_OVERSIGHT, anonymous=PAGE)),
    "audit_log_export": (None, expect(PLATFORM_OVERSIGHT, anonymous=PAGE)),
    "audit_log_verify": (None, expect(PLATFORM_OVERSIGHT, anonymous=PAGE)),
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
                                expect(CENTER | PLATFORM_OVERSIGHT, anonymous=API)),
    "api_organization_activate": (lambda o: {"public_id": o["center"].public_id},
                                  expect("all", anonymous=API, method_not_allowed=True)),
    "api_members": (lambda o: {"organization_id": o["center"].public_id},
                    expect(CENTER | PLATFORM_OVERSIGHT, anonymous=API)),
    "api_member_detail": (lambda o: {"organization_id": o["center"].public_id, "public_id": o["membership"].public_id},
                          expect(CENTER | PLATFORM_OVERSIGHT, anonymous=API)),
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
    "study_break_glass": (None, expect({"platform_operations"}, anonymous=PAGE)),
    "study_break_glass_end": (lambda o: {"public_id": o["emergency_grant"].public_id},
                              expect("all", anonymous=PAGE, method_not_allowed=True)),
    # the OHIF Viewer's shell: without a study in the URL it sends those who see studies to their study
    # list (tests/studies/test_viewer.py probes it with studies: own, foreign, missing, preview, full)
    "viewer_app": (None, expect(STUDY_BROWSERS, ok_status=302, anonymous=PAGE)),
    "viewer_app_route": (lambda o: {"route": "viewer"}, expect(STUDY_BROWSERS, ok_status=302, anonymous=PAGE)),
    "viewer_app_config": (None, expect("all", anonymous=200)),
    "viewer_service_worker": (None, expect("all", anonymous=200)),
    "viewer_init_service_worker": (None, expect("all", anonymous=200)),
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
    **ORDER_ROWS,
    **MARKETPLACE_API_ROWS,
    **MARKETPLACE_WEBHOOK_ROWS,
    **RIS_ROWS,
    **BILLING_ROWS,
    **REPORTING_ROWS,
    **PATIENT_ROWS,
    **SHARE_ROWS,
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
        **ris_objects(cast.center),
        **order_objects(cast.patient),
        **billing_objects(cast.center, cast.center_admin),
        **reporting_objects(cast.center, cast.technologist),
        **patient_objects(cast.patient, cast.center),
        **share_objects(cast),
    }


@pytest.fixture
def principals(cast) -> dict:
    """The matrix's signed-in principals: the shared cast, with platform operations under its role's name and
    a platform finance person (MFA enrolled, like every platform person)."""
    finance = MembershipFactory(user__email="platform_finance@example.test", organization=cast.platform,
                                roles=["finance"]).user
    enroll_totp(finance)
    users = {p: cast.users[p] for p in SIGNED_IN if p in cast.users}
    return {**users, "platform_operations": cast.platform_staff, "platform_finance": finance}


# Whom each declared level lets through, among the matrix's principals (core/access.py says what each means).
ADMITS: dict[Access, frozenset[str]] = {
    Access.PUBLIC: frozenset(PRINCIPALS),
    Access.AUTHENTICATED: frozenset(SIGNED_IN),
    Access.ORG_MEMBER: frozenset(SIGNED_IN) - {"patient"},
    Access.ORG_ADMIN: frozenset(ADMINS_OF_THEIR_ACTIVE_ORG),
    Access.PLATFORM_OVERSIGHT: frozenset(PLATFORM_OVERSIGHT),
    Access.PLATFORM_OPERATIONS: frozenset({"platform_operations"}),
    Access.TOKEN: frozenset({"anonymous"}),  # the cast holds no invitation of its own
}

# The levels a declaration is compared with when it looks too wide: signing in, and those that name a role.
# ORG_MEMBER is left out: in the cast it differs from AUTHENTICATED by the patient alone, whom most
# AUTHENTICATED routes (one's own credentials, a study one may see) turn away by the object, not the level;
# so a move between those two is held only by the patient's own row (a patient let through an ORG_MEMBER
# route fails).
NARROWER_LEVELS = (Access.AUTHENTICATED, Access.ORG_ADMIN, Access.PLATFORM_OVERSIGHT, Access.PLATFORM_OPERATIONS,
                   Access.TOKEN)

# Routes that let through fewer of the cast than their level admits, because what decides is the object in
# the URL or a role the cast lacks, not the level: without this list their declarations would look too wide.
NARROWER_THAN_DECLARED = {
    "api_token_detail": "anyone's own token: the probed token is the center admin's",
    "group_credentials": "admins of a radiology group: the cast has none (tests/accounts covers them)",
    "group_calendar": "admins of a radiology group: the cast has none (tests/marketplace/test_extra_shifts.py)",
    "group_signed_reports": "a group's admins and named QA radiologists: the cast has none "
                            "(tests/reporting/test_quality_group.py covers them)",
    "quality_arbitration": "a QA radiologist of the review's programme: the probed id is no review "
                           "(tests/reporting/test_quality_peer_review.py covers them)",
}


def let_through(principal: str, response) -> bool | None:
    """Was the principal let in? None when a GET cannot tell (a POST-only route answers 405 to everyone)."""
    if response.status_code == 405:
        return None
    if response.status_code in (401, 403, 404):
        return False
    location = response.get("Location", "") if response.status_code == 302 else ""
    return not (principal == "anonymous" and location.startswith(resolve_url(settings.LOGIN_URL)))


def level_problems(route: str, level: Access, let_in: set[str], probed: set[str]) -> list[str]:
    """What is wrong with declaring ``level`` for a route that let ``let_in`` through (of ``probed``)."""
    problems = [f"{p} is let through although {level.name} does not admit them"
                for p in sorted(let_in - ADMITS[level])]
    if route not in NARROWER_THAN_DECLARED and probed == set(PRINCIPALS):
        narrower = [other.name for other in NARROWER_LEVELS
                    if ADMITS[other] < ADMITS[level] and let_in <= ADMITS[other]]
        if narrower:
            problems.append(f"declared {level.name}, but what it lets through fits the narrower {narrower}")
    return problems


def test_the_matrix_covers_every_declared_route():
    assert set(MATRIX) == set(DECLARED)


def test_the_narrower_list_names_only_matrix_routes():
    assert set(NARROWER_THAN_DECLARED) <= set(MATRIX)


def expected_let_in(row: dict) -> tuple[set[str], set[str]]:
    """(let through, probed) read off a matrix row's status codes (the live test reads the responses)."""
    let_in, probed = set(), set()
    for principal, status in row.items():
        if status == 405:
            continue
        probed.add(principal)
        if principal == "anonymous" and status == 302:  # the sign-in redirect, unless everyone is redirected
            allowed = all(row[p] == 302 for p in SIGNED_IN)
        else:
            allowed = status not in (401, 403, 404)
        if allowed:
            let_in.add(principal)
    return let_in, probed


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_each_row_fits_its_declared_level(route):
    assert level_problems(route, DECLARED[route], *expected_let_in(MATRIX[route][1])) == []


@pytest.mark.parametrize(("route", "weaker"), [
    ("audit_log_export", Access.ORG_ADMIN),  # issue 22's example: finance is no org admin
    ("verification_queue", Access.ORG_ADMIN),
    ("study_break_glass", Access.PLATFORM_OVERSIGHT),  # finance would break the glass
    ("ops_reads", Access.AUTHENTICATED),
    ("api_invitations", Access.ORG_MEMBER),
    ("member_edit", Access.AUTHENTICATED),
    ("dicomweb_study", Access.PUBLIC),
    ("invitation_accept", Access.PUBLIC),
])
def test_a_weakened_declaration_is_refused(route, weaker):
    assert level_problems(route, weaker, *expected_let_in(MATRIX[route][1])) != []


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_access_matrix(route, principals, objects, login):
    build_kwargs, expected = MATRIX[route]
    url = reverse(route, kwargs=build_kwargs(objects) if build_kwargs else None)
    got, let_in, probed = {}, set(), set()
    for principal in PRINCIPALS:
        client = login(None if principal == "anonymous" else principals[principal])
        response = client.get(url)
        got[principal] = response.status_code
        verdict = let_through(principal, response)
        if verdict is not None:
            probed.add(principal)
            if verdict:
                let_in.add(principal)
    assert got == expected, f"{route} ({url})"
    # The live answers against the declared level (ROUTES), not only against this file's row.
    assert level_problems(route, DECLARED[route], let_in, probed) == [], f"{route} ({url})"


def test_options_answers_every_api_route_without_a_server_error(principals, objects, login):
    """OPTIONS (CORS preflights, API explorers) on every API route: described or refused, never a 500."""
    client = login(principals["center_admin"], api=True)
    client.raise_request_exception = False  # a server error is an answer here: 500
    answers = {}
    for route, (build_kwargs, _) in MATRIX.items():
        if route.startswith(("api_", "dicomweb_")) or DECLARED[route] == Access.PUBLIC:
            url = reverse(route, kwargs=build_kwargs(objects) if build_kwargs else None)
            answers[route] = client.options(url).status_code
    assert [route for route, status in answers.items() if status >= 500] == []
    assert answers["api_organization_activate"] == 200


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
        **ris_objects(cast.other_center),
        **billing_objects(cast.other_center, cast.other_admin),
        **reporting_objects(cast.other_center, cast.other_admin),
        **patient_objects(another_patient := UserFactory(email="another_patient@example.test", kind="patient"),
                          cast.other_center),
        **order_objects(another_patient),
        **share_objects(cast, another_patient),
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
