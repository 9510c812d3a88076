"""study_get's hand-written lookup answers exactly what study_list + access_levels (the ORM rule) answer."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from accounts.policy import actor_for_api_key, actor_for_user
from core.errors import NotFound
from studies import policy, selectors, synthetic
from studies.ingest import Source, ingest_stream
from studies.models import Instance, Series, Study, StudyAccessGrant

SHARED_UID = "1.2.826.0.1.3680043.8.498.1001"  # held by both centers (no cross-tenant merge)
CENTER_UID = "1.2.826.0.1.3680043.8.498.1002"
OTHER_UID = "1.2.826.0.1.3680043.8.498.1003"
DELETED_UID = "1.2.826.0.1.3680043.8.498.1004"
UIDS = (SHARED_UID, CENTER_UID, OTHER_UID, DELETED_UID, "1.2.3.404")


def make_study(org, uid: str, **fields) -> Study:
    return Study.objects.create(organization=org, study_instance_uid=uid, patient_id="P1", patient_name="Doe^Jane",
                                study_date=date(2026, 11, 2), modalities_in_study="\\CT\\", jurisdiction_country="US",
                                jurisdiction_region="TX", **fields)


def make_grant(study: Study, user, level: str, *, expires_in=timedelta(days=1), revoked=False) -> StudyAccessGrant:
    return StudyAccessGrant.objects.create(study=study, user=user, level=level, reason="offered case",
                                           expires_at=timezone.now() + expires_in,
                                           revoked_at=timezone.now() if revoked else None)


def reference(actor, uid: str, organization_id=None):
    """The rule as the ORM states it (what study_get answered before it was hand-written)."""
    candidates = selectors.study_list(actor=actor).filter(study_instance_uid=uid)
    if organization_id is not None:
        candidates = candidates.filter(organization_id=organization_id)
    studies = list(candidates)
    if not studies:
        return None
    levels = selectors.access_levels(actor=actor, studies=studies)
    best = sorted(studies, key=lambda s: (levels.get(s.pk) != policy.FULL, s.pk))[0]
    return best.pk, levels[best.pk]


def answered(actor, uid: str, organization_id=None):
    try:
        access = selectors.study_get(actor=actor, study_uid=uid, organization_id=organization_id)
    except NotFound:
        return None
    return access.study.pk, access.level


@pytest.fixture
def world(cast):
    center_shared = make_study(cast.center, SHARED_UID)
    other_shared = make_study(cast.other_center, SHARED_UID)
    center_only = make_study(cast.center, CENTER_UID)
    other_only = make_study(cast.other_center, OTHER_UID)
    make_study(cast.center, DELETED_UID, deleted_at=timezone.now())
    radiologist = cast.radiologist
    make_grant(other_shared, radiologist, policy.PREVIEW)
    make_grant(other_shared, radiologist, policy.FULL)  # the better of two active grants counts
    make_grant(center_only, radiologist, policy.PREVIEW)
    make_grant(center_shared, radiologist, policy.FULL, expires_in=-timedelta(minutes=1))  # expired
    make_grant(other_only, radiologist, policy.FULL, revoked=True)
    return {"center_shared": center_shared, "other_shared": other_shared, "center_only": center_only}


@pytest.mark.parametrize("principal", ["center_admin", "technologist", "center_finance", "center_viewer",
                                       "radiologist", "other_admin", "platform_staff", "patient"])
def test_every_principal_gets_what_the_orm_rule_gives(cast, world, principal):
    actor = actor_for_user(cast.users[principal])
    for uid in UIDS:
        for organization_id in (None, cast.center.pk, cast.other_center.pk):
            expected = reference(actor, uid, organization_id)
            assert answered(actor, uid, organization_id) == expected, (uid, organization_id)


def test_the_cases_that_matter_by_name(cast, world):
    radiologist = actor_for_user(cast.radiologist)
    assert answered(radiologist, SHARED_UID) == (world["other_shared"].pk, policy.FULL)  # full beats preview
    assert answered(radiologist, CENTER_UID) == (world["center_only"].pk, policy.PREVIEW)
    assert answered(radiologist, OTHER_UID) is None  # revoked
    assert answered(radiologist, DELETED_UID) is None
    admin = actor_for_user(cast.center_admin)
    assert answered(admin, SHARED_UID) == (world["center_shared"].pk, policy.FULL)  # its own, not the other's
    assert answered(admin, OTHER_UID) is None


def test_an_organization_key_sees_its_center_only(cast, world):
    key, _secret = account_services.api_key_create(actor=None, organization=cast.center, name="modality",
                                                   roles=["technologist"])
    actor = actor_for_api_key(key)
    assert answered(actor, SHARED_UID) == (world["center_shared"].pk, policy.FULL)
    for uid in UIDS:
        assert answered(actor, uid) == reference(actor, uid)


def test_the_study_comes_back_whole_in_one_query(cast, world):
    actor = actor_for_user(cast.radiologist)
    with CaptureQueriesContext(connection) as queries:
        access = selectors.study_get(actor=actor, study_uid=CENTER_UID)
    assert len(queries) == 1
    fresh = Study.objects.get(pk=access.study.pk)
    for field in Study._meta.concrete_fields:
        assert getattr(access.study, field.attname) == getattr(fresh, field.attname), field.name


def test_series_and_instance_lookups_match_the_orm_and_stay_inside_the_study(cast, library_for_lookups):
    study, other_study = library_for_lookups
    access = selectors.StudyAccess(study=study, level=policy.FULL)
    for instance in Instance.objects.filter(study=study).select_related("series"):
        series = selectors.series_get(access=access, series_uid=instance.series.series_instance_uid)
        assert series == instance.series
        for field in Series._meta.concrete_fields:
            assert getattr(series, field.attname) == getattr(instance.series, field.attname), field.name
        found = selectors.instance_get(access=access, series_uid=instance.series.series_instance_uid,
                                       sop_uid=instance.sop_instance_uid)
        for field in Instance._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(instance, field.attname), field.name
    foreign = Instance.objects.filter(study=other_study).select_related("series").first()
    with pytest.raises(NotFound):
        selectors.series_get(access=access, series_uid=foreign.series.series_instance_uid)
    with pytest.raises(NotFound):
        selectors.instance_get(access=access, series_uid=foreign.series.series_instance_uid,
                               sop_uid=foreign.sop_instance_uid)
    mine = Instance.objects.filter(study=study).select_related("series").first()
    with pytest.raises(NotFound):  # a real instance under the wrong series
        selectors.instance_get(access=access, series_uid=foreign.series.series_instance_uid,
                               sop_uid=mine.sop_instance_uid)


@pytest.fixture
def library_for_lookups(cast, study_spec):
    def ingest(org, datasets):
        for i, ds in enumerate(datasets):
            assert ingest_stream(organization=org, stream=io.BytesIO(synthetic.to_bytes(ds)), filename=f"{i}.dcm",
                                 source=Source.UPLOAD).ok
    ingest(cast.center, synthetic.mr_study(study_spec, slices=2, size=16))
    ingest(cast.other_center, synthetic.ct_series(study_spec, slices=1, size=16))  # the same study UID
    return (Study.objects.get(organization=cast.center, study_instance_uid=study_spec.study_uid),
            Study.objects.get(organization=cast.other_center, study_instance_uid=study_spec.study_uid))


@pytest.mark.parametrize("principal", ["center_admin", "radiologist", "key"])
def test_on_postgresql_the_lookup_is_prepared_once_and_not_planned_again(postgres_only, cast, world, principal):
    """settings: statements bound by the server and prepared from their second use; the lookup's SQL keeps
    PostgreSQL on one generic plan (a NULL user in a grant subquery made it plan every call)."""
    if principal == "key":
        key, _secret = account_services.api_key_create(actor=None, organization=cast.center, name="modality",
                                                       roles=["technologist"])
        actor = actor_for_api_key(key)
    else:
        actor = actor_for_user(cast.users[principal])
    for _ in range(20):  # psycopg prepares it at the 2nd; PostgreSQL plans the first 5 runs of that each time
        selectors.study_get(actor=actor, study_uid=SHARED_UID)
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%FROM studies_study s WHERE s.study_instance_uid%"])
        plans = cursor.fetchall()
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert generic >= 13, plans  # then one generic plan, reused
    assert custom <= 5, plans
