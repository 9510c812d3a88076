"""The demo world: what `manage.py load_demo` promises, and that running it again changes nothing."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import demo_hooks
from accounts.models import AuditEvent, License, Membership, Organization, RadiologistProfile, Role, User
from marketplace.models import ReadRequest
from studies import demo, synthetic
from studies.models import Instance, Series, Study

DEMO_PASSWORD = "readroom-demo-2026"
SUBSPECIALTIES = {"neuro", "musculoskeletal", "body", "chest", "breast", "pediatric", "cardiac", "nuclear",
                  "interventional", "emergency", "head_and_neck", "general"}
FIXED_LOGINS = [
    "admin@lakeside.demo", "tech@lakeside.demo", "finance@lakeside.demo", "admin@summit.demo", "admin@bayview.demo",
    "admin@mapleleaf.demo", "admin@nighthawk.demo", "admin@atlantic.demo", "ops@readroom.demo",
    "finance@readroom.demo", "dr.okafor@radiologists.demo", "patient1@readroom.demo", "patient2@readroom.demo",
    "patient3@readroom.demo",
]


@pytest.fixture(autouse=True)
def _demo_studies_small_and_private(settings, tmp_path):
    """Demo studies with tiny images (the full set is checked without storing it, below), stored in a
    folder of this test's own."""
    settings.DEMO_STUDIES = "small"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}


def load_demo() -> str:
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def every_row() -> dict[str, list[dict]]:
    """A full dump of every table but the audit log, ordered by primary key."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model is not AuditEvent and model._meta.managed
    }


def demo_users():
    return User.objects.filter(email__endswith=".demo")


def test_demo_world_has_the_promised_centers_groups_and_platform(db):
    load_demo()

    centers = Organization.objects.filter(kind=Organization.Kind.IMAGING_CENTER)
    assert sorted(centers.values_list("slug", flat=True)) == ["bayview", "lakeside", "mapleleaf", "summit"]
    us_states = {c.region for c in centers if c.country == "US"}
    assert len(us_states) == 3
    outside_us = [c for c in centers if c.country != "US"]
    assert [(c.name, c.jurisdiction, c.time_zone) for c in outside_us] == [
        ("Maple Leaf Imaging", "CA-ON", "America/Toronto")]
    lakeside = Organization.objects.get(slug="lakeside")
    assert (lakeside.name, lakeside.jurisdiction, lakeside.time_zone) == ("Lakeside Imaging", "US-TX",
                                                                          "America/Chicago")

    groups = Organization.objects.filter(kind=Organization.Kind.RADIOLOGY_GROUP)
    assert sorted(groups.values_list("name", flat=True)) == ["Atlantic Teleradiology Partners",
                                                             "Night Hawk Radiology"]
    assert Organization.objects.filter(kind=Organization.Kind.PLATFORM).count() == 1


def test_demo_world_has_twelve_radiologists_in_groups_across_four_time_zones_with_licenses(db):
    load_demo()
    today = timezone.localdate()

    radiologists = demo_users().filter(email__endswith="@radiologists.demo")
    assert radiologists.count() == 12
    zones = set()
    for user in radiologists:
        assert user.kind == User.Kind.PROFESSIONAL
        membership = Membership.objects.get(user=user)
        assert membership.organization.kind == Organization.Kind.RADIOLOGY_GROUP
        assert membership.roles == [Role.RADIOLOGIST]
        profile = RadiologistProfile.objects.get(user=user)
        assert profile.credentials_line
        assert profile.subspecialties
        assert set(profile.subspecialties) <= SUBSPECIALTIES
        assert 1 <= profile.licenses.count() <= 4
        zones.add(profile.home_time_zone)
    assert len(zones) >= 4
    assert RadiologistProfile.objects.get(user__email="dr.okafor@radiologists.demo").user.full_name

    licenses = License.objects.filter(radiologist__user__in=radiologists)
    assert len({lic.region for lic in licenses if lic.country == "US"}) >= 5
    assert licenses.filter(country="CA").exists()
    assert licenses.filter(expires_on__gt=today, expires_on__lte=today + timedelta(days=30)).count() == 1
    assert licenses.filter(expires_on__lt=today).count() == 1


def test_demo_world_has_patients_finance_users_and_platform_staff(db):
    load_demo()

    patients = demo_users().filter(kind=User.Kind.PATIENT)
    assert sorted(patients.values_list("email", flat=True)) == [f"patient{i}@readroom.demo" for i in (1, 2, 3)]
    assert not Membership.objects.filter(user__in=patients).exists()

    center_finance = Membership.objects.get(user__email="finance@lakeside.demo")
    assert (center_finance.organization.slug, center_finance.roles) == ("lakeside", ["finance"])
    platform_finance = Membership.objects.get(user__email="finance@readroom.demo")
    assert platform_finance.organization.kind == Organization.Kind.PLATFORM
    assert platform_finance.roles == ["finance"]

    ops = User.objects.get(email="ops@readroom.demo")
    assert ops.is_staff
    assert not ops.is_superuser
    ops_membership = Membership.objects.get(user=ops)
    assert (ops_membership.organization.name, ops_membership.roles) == ("ReadRoom Operations", ["admin"])

    assert Membership.objects.get(user__email="tech@lakeside.demo").roles == ["technologist"]
    for email in ("admin@summit.demo", "admin@bayview.demo", "admin@mapleleaf.demo", "admin@nighthawk.demo",
                  "admin@atlantic.demo"):
        assert Membership.objects.get(user__email=email).roles == ["admin"]
    valid_roles = set(Role.values)
    assert all(set(m.roles) <= valid_roles for m in Membership.objects.all())


def test_every_demo_user_signs_in_with_the_demo_password_and_has_a_verified_address(db):
    load_demo()

    users = list(demo_users())
    assert len(users) == 25
    for user in users:
        assert authenticate(email=user.email, password=DEMO_PASSWORD) == user, user.email
        assert EmailAddress.objects.filter(user=user, email=user.email, verified=True, primary=True).exists()


def test_demo_password_can_be_overridden_by_the_environment(db, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-password-77")

    output = load_demo()

    assert "another-demo-password-77" in output
    assert authenticate(email="admin@lakeside.demo", password="another-demo-password-77") is not None
    assert authenticate(email="admin@lakeside.demo", password=DEMO_PASSWORD) is None


def test_load_demo_prints_every_login_with_role_organization_and_password(db, capsys):
    output = load_demo()

    assert DEMO_PASSWORD in output
    for user in demo_users():
        line = next((line for line in output.splitlines() if line.split()[:1] == [user.email]), None)
        assert line is not None, f"{user.email} is not printed"
    for email in FIXED_LOGINS:
        assert email in output
    admin_line = next(line for line in output.splitlines() if line.strip().startswith("admin@lakeside.demo"))
    assert "admin" in admin_line.split("admin@lakeside.demo", 1)[1]
    assert "Lakeside Imaging" in admin_line
    # The progress bar goes to stderr and reaches the end.
    assert "Demo world" in capsys.readouterr().err


def test_running_load_demo_twice_leaves_every_row_the_same(db):
    first_output = load_demo()
    before = every_row()
    assert before["studies.Study"]
    assert before["studies.Instance"]

    second_output = load_demo()

    assert every_row() == before  # studies, series and instances included
    assert "Demo world ready: 0 created, 0 updated" in second_output
    assert "Demo world ready: 0 created" not in first_output
    assert "Lakeside Imaging (US-TX): 0 created (none), 6 already present" in second_output


def test_rerun_keeps_a_password_the_user_changed_and_restores_edited_demo_fields(db):
    load_demo()
    user = User.objects.get(email="admin@summit.demo")
    user.set_password("my-own-new-password-99")
    user.full_name = "Someone Else"
    user.save()
    Membership.objects.filter(user=user).update(roles=["viewer"])

    output = load_demo()

    user.refresh_from_db()
    assert user.check_password("my-own-new-password-99")
    assert user.full_name == "Tom Becker"
    assert Membership.objects.get(user=user).roles == ["admin"]
    assert "0 created, 2 updated" in output


def test_load_demo_refuses_production(db, settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="production"):
        load_demo()

    assert not demo_users().exists()


# --- demo studies --------------------------------------------------------------------------------------

def marketplace_demo_accessions(slug: str) -> set[str]:
    """The CTs the marketplace's later demos store beyond studies.demo's set: the RIS order's images and the
    studies the overflow rules post."""
    from marketplace import demo_coverage, demo_ris

    ris = {demo_ris.MATCHED} if slug == demo_ris.CENTER else set()
    return ris | {arrival[0] for rule in demo_coverage.RULES if rule.center == slug for arrival in rule.arrivals}


def test_each_demo_center_gets_studies_in_its_own_state(db):
    output = load_demo()
    today = timezone.localdate()
    assert marketplace_demo_accessions("lakeside") == {"LKSRIS0001", "LKSOVF0001"}
    assert len(marketplace_demo_accessions("bayview")) == 4
    for slug, (prefix, planned) in demo.DEMO_STUDIES.items():
        center = Organization.objects.get(slug=slug)
        studies = Study.objects.filter(organization=center)
        extra = marketplace_demo_accessions(slug)
        assert studies.count() == len(planned) + len(extra)
        assert extra <= set(studies.values_list("accession_number", flat=True))
        for study in studies:
            assert (study.jurisdiction_country, study.jurisdiction_region) == (center.country, center.region)
            if study.accession_number not in extra:
                assert re.fullmatch(rf"{prefix}\d{{9}}", study.accession_number)
            assert today - timedelta(days=31) <= study.study_date <= today  # the STAT head CT is today's
            assert study.patient_name in {synthetic.demo_patient(n).name for n in range(12)}
            assert study.institution_name == center.name
            assert study.number_of_instances == Instance.objects.filter(study=study).count() > 0
        line = next(line for line in output.splitlines() if line.strip().startswith(f"{center.name} ("))
        assert f"{len(planned)} created" in line


def test_lakeside_has_ct_multi_series_mr_chest_radiograph_mammogram_and_burned_in_ultrasound(db):
    load_demo()
    lakeside = Study.objects.filter(organization__slug="lakeside")
    by_modality = {study.modalities[0]: study for study in lakeside}
    assert set(by_modality) == {"CT", "MR", "CR", "MG", "US"}
    assert Series.objects.filter(study=by_modality["MR"]).count() == 3
    assert by_modality["MG"].number_of_instances == 4
    assert set(Instance.objects.filter(study=by_modality["US"]).values_list("burned_in_annotation", flat=True)) == {
        "YES"}
    assert by_modality["MG"].patient_sex == "F"
    assert len({study.patient_id for study in lakeside}) == 5


def test_the_full_demo_set_has_a_150_slice_512_ct_and_the_issues_other_studies():
    """What ``bin/dev up`` generates (checked without storing ~120 MB in a test)."""
    _, planned = demo.DEMO_STUDIES["lakeside"]
    by_kind = {study.kind: study for study in planned if study.key != "ct-head"}
    spec = synthetic.StudySpec(patient=synthetic.demo_patient(0), accession="X", description="X",
                               study_date=date(2026, 3, 1))
    ct = demo._datasets(by_kind["ct"], spec, "full")
    assert len(ct) == 150
    assert (ct[0].Rows, ct[0].Columns) == (512, 512)
    mr = demo._datasets(by_kind["mr"], spec, "full")
    assert len({ds.SeriesInstanceUID for ds in mr}) == 3
    assert {ds.Modality for ds in demo._datasets(by_kind["cr"], spec, "full")} == {"CR"}
    assert len(demo._datasets(by_kind["mg"], spec, "full")) == 4
    assert {ds.BurnedInAnnotation for ds in demo._datasets(by_kind["us"], spec, "full")} == {"YES"}
    assert demo.expected_instances(by_kind["ct"], "full") == 150


def test_demo_uids_are_derived_from_a_fixed_seed(db, monkeypatch):
    # Signed reports cannot be deleted (PostgreSQL refuses it), and they hold their reads and studies:
    # this test of study UIDs leaves the demo reports out.
    monkeypatch.setitem(demo_hooks._LOADERS, "reporting", [lambda *args, **kwargs: None])
    load_demo()
    uids = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    keys = set(Instance.objects.values_list("storage_key", flat=True))
    assert Study.objects.filter(accession_number__in=marketplace_demo_accessions("lakeside")).count() == 2
    delete_demo_reads_and_studies()  # another database, another day: the same UIDs come back

    load_demo()

    assert set(Instance.objects.values_list("sop_instance_uid", flat=True)) == uids
    assert set(Instance.objects.values_list("storage_key", flat=True)) == keys


def delete_demo_reads_and_studies() -> None:
    """Empty the demo's reads and studies, holders first: the RIS orders and their messages, then the overflow
    postings and rules (each PROTECTs its read request or rule), then the reads that hold on to their studies."""
    from marketplace.coverage_models import OverflowPosting, OverflowRule
    from marketplace.ris_models import Hl7Message, RisOrder

    Hl7Message.objects.all().delete()
    RisOrder.objects.all().delete()
    OverflowPosting.objects.all().delete()
    OverflowRule.objects.all().delete()
    ReadRequest.objects.all().delete()
    Study.objects.all().delete()


def test_an_interrupted_demo_run_is_finished_by_the_next(db):
    load_demo()
    ct = Study.objects.get(organization__slug="lakeside", study_description="CT CHEST WITH CONTRAST")
    complete = ct.number_of_instances
    last = Instance.objects.filter(study=ct).order_by("-instance_number").first()
    last.delete()
    Study.objects.filter(pk=ct.pk).update(number_of_instances=complete - 1)

    output = load_demo()

    ct.refresh_from_db()
    assert ct.number_of_instances == complete
    assert Instance.objects.filter(study=ct).count() == complete
    assert "Lakeside Imaging (US-TX): 1 created (CT CHEST WITH CONTRAST (4 images)), 5 already present" in output


def test_demo_studies_can_be_left_out(db):
    out = io.StringIO()
    call_command("load_demo", "--studies", "none", stdout=out)
    assert not Study.objects.exists()
    assert "Demo studies" not in out.getvalue()


def test_a_demo_radiologist_holds_an_assigned_read_and_an_offer_and_summit_has_a_jpeg_2000_ct(db):
    from pydicom.uid import JPEG2000Lossless

    from studies.models import StudyAccessGrant

    output = load_demo()
    okafor = User.objects.get(email="dr.okafor@radiologists.demo")
    # From the marketplace's demo reads: two claimed (full), one offered (preview); the claimed ones'
    # previews ended with the claims.
    active = StudyAccessGrant.objects.filter(user=okafor, revoked_at__isnull=True)
    grants = {(g.study.study_description, g.level) for g in active}
    assert grants == {("CT CHEST WITH CONTRAST", "full"), ("XR CHEST PA AND LATERAL", "full"),
                      ("MRI BRAIN WITHOUT CONTRAST", "preview")}
    assert all(g.is_active() for g in active)
    assert "CT chest claimed and being read (Routine CT CHEST WITH CONTRAST, US-TX): in progress, dr.okafor (full " \
           "access, opens in the viewer" in output
    granted = StudyAccessGrant.objects.filter(user=okafor).count()
    j2k = Study.objects.get(organization__slug="summit", study_description="CT ABDOMEN PELVIS WITH CONTRAST")
    assert set(Instance.objects.filter(study=j2k).values_list("transfer_syntax_uid", flat=True)) == {JPEG2000Lossless}
    load_demo()
    assert StudyAccessGrant.objects.filter(user=okafor).count() == granted  # a second run grants nothing new


def test_starting_django_imports_neither_the_demo_nor_pydicom():
    """Every manage.py process starts Django; only load_demo needs the demo modules and pydicom (seconds)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, django; django.setup(); "
            "print(sorted(m for m in ('pydicom', 'studies.demo', 'marketplace.demo') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True,
                            capture_output=True, text=True, env={**__import__("os").environ,
                                                                 "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.stdout.strip().splitlines()[-1] == "[]"
    from accounts.demo_hooks import demo_loader, demo_loaders
    assert demo_loader("studies") is demo.load_demo_studies  # registered by its path, imported when asked for
    from marketplace import demo as marketplace_demo
    from marketplace import demo_coverage, demo_ris
    from reporting import demo as reporting_demo
    from reporting import demo_quality
    assert demo_loaders("marketplace") == [marketplace_demo.load_demo_marketplace, demo_ris.load_demo_ris,
                                           demo_coverage.load_demo_coverage]  # in this order
    assert demo_loaders("reporting") == [reporting_demo.load_demo_reporting, demo_quality.load_demo_quality]


def test_the_demo_load_logs_no_openjpeg_tile_numbers(db, caplog):
    """Compressing the JPEG 2000 CT made OpenJPEG log "tile number 1 / 1" once per image."""
    import logging

    with caplog.at_level(logging.INFO):
        load_demo()
    assert Instance.objects.filter(transfer_syntax_uid="1.2.840.10008.1.2.4.90").exists()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("openjpeg")] == []
