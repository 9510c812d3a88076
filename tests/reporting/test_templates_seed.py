"""The platform's seeded report templates (migration 0003): well formed, BI-RADS as ACR defines it, and the
one a read gets by modality, body part and description; a center's or group's own comes before them."""

from __future__ import annotations

import pytest
from django.apps import apps

from accounts.models import Organization
from reporting import templates
from reporting.models import ReportTemplate
from reporting.seed_templates import TEMPLATES
from tests.factories import OrganizationFactory
from tests.reporting.templates_helpers import seed_migration, seed_platform_templates

pytestmark = pytest.mark.django_db

NAMES = {t["name"] for t in TEMPLATES}


@pytest.fixture(autouse=True)
def _seeded(db):
    seed_platform_templates()


def platform_templates():
    return ReportTemplate.objects.filter(owner__isnull=True, active=True)


def chosen(modality: str, body_part: str = "", description: str = "", *, usable=None, center_id: int = 0) -> str:
    template = templates.choose(platform_templates() if usable is None else usable, modalities=[modality],
                                body_part=body_part, description=description, center_id=center_id)
    return template.name if template else ""


@pytest.mark.parametrize("definition", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_every_seed_definition_passes_the_template_check(definition):
    templates.check_definition(definition["sections"], definition["fields"])
    assert {s["code"] for s in definition["sections"]} >= {"findings", "impression"}
    assert all(m == m.upper() for m in definition["modalities"])


def test_the_seed_covers_the_issue_list():
    assert {"CT head without contrast", "CT chest, abdomen and pelvis with contrast", "MR knee",
            "Chest radiograph", "US abdomen", "Screening mammography", "Diagnostic mammography",
            "General radiology"} <= NAMES
    chest = next(t for t in TEMPLATES if t["name"] == "Chest radiograph")
    assert set(chest["modalities"]) == {"CR", "DX"}  # one template for both
    general = next(t for t in TEMPLATES if t["name"] == "General radiology")
    assert general["modalities"] == []


def test_the_seed_writes_them_as_platform_templates():
    rows = {t.name: t for t in ReportTemplate.objects.filter(owner__isnull=True, name__in=NAMES)}
    assert set(rows) == NAMES
    head = rows["CT head without contrast"]
    assert head.active
    assert head.modalities == ["CT"]
    assert "No acute intracranial" in next(s["normal"] for s in head.sections if s["code"] == "impression")


def test_running_the_seed_again_creates_nothing_and_restores_an_edited_definition():
    head = ReportTemplate.objects.get(owner__isnull=True, name="CT head without contrast")
    ReportTemplate.objects.filter(pk=head.pk).update(body_parts=["NOTHING"], active=False)
    before = ReportTemplate.objects.count()

    seed_migration.seed(apps, None)

    assert ReportTemplate.objects.count() == before
    head.refresh_from_db()
    assert head.active
    assert "HEAD" in head.body_parts


@pytest.mark.parametrize("name", ["Screening mammography", "Diagnostic mammography"])
def test_mammography_requires_birads_category_and_breast_density_as_acr_bi_rads_5th_edition(name):
    template = ReportTemplate.objects.get(owner__isnull=True, name=name)
    fields = {f["code"]: f for f in template.fields}
    birads, density = fields["birads"], fields["breast_density"]
    assert birads["required"]
    assert density["required"]
    assert (birads["kind"], density["kind"]) == ("choice", "choice")
    assert [v for v, _ in birads["choices"]] == ["0", "1", "2", "3", "4", "5", "6"]
    assert [v for v, _ in density["choices"]] == ["a", "b", "c", "d"]
    labels = dict(birads["choices"])
    assert labels["0"].startswith("0: Incomplete")
    assert labels["4"] == "4: Suspicious"
    assert labels["5"] == "5: Highly suggestive of malignancy"
    assert labels["6"] == "6: Known biopsy-proven malignancy"
    assert dict(density["choices"])["c"].startswith("c: The breasts are heterogeneously dense")
    assert templates.field_error(birads, "7")  # outside 0–6
    assert templates.field_error(density, "e")
    assert not templates.field_error(birads, "4")


@pytest.mark.parametrize(("modality", "body_part", "description", "expected"), [
    ("CT", "HEAD", "", "CT head without contrast"),
    ("CT", "", "CT HEAD WITHOUT CONTRAST", "CT head without contrast"),
    ("CT", "", "CT CHEST ABD PELVIS W CONTRAST", "CT chest, abdomen and pelvis with contrast"),
    ("CT", "CHEST", "CT CHEST ABD PELVIS", "CT chest, abdomen and pelvis with contrast"),
    ("MG", "BREAST", "SCREENING MAMMOGRAM BILATERAL", "Screening mammography"),
    ("MG", "BREAST", "", "Screening mammography"),
    ("MG", "BREAST", "DIAGNOSTIC MAMMOGRAM LEFT", "Diagnostic mammography"),
    ("MG", "BREAST", "MAMMO DIAG BILATERAL", "Diagnostic mammography"),
    ("MR", "KNEE", "MRI KNEE RIGHT WITHOUT CONTRAST", "MR knee"),
    ("DX", "CHEST", "", "Chest radiograph"),
    ("CR", "", "CHEST 2 VIEWS", "Chest radiograph"),
    ("US", "ABDOMEN", "US ABDOMEN COMPLETE", "US abdomen"),
    ("NM", "", "BONE SCAN WHOLE BODY", "General radiology"),
    ("XA", "HEAD", "", "General radiology"),  # a head keyword alone does not pull in a CT template
])
def test_a_read_gets_the_template_of_its_modality_and_body_part(modality, body_part, description, expected):
    assert chosen(modality, body_part, description) == expected


def test_an_inactive_platform_template_is_not_chosen():
    ReportTemplate.objects.filter(owner__isnull=True, name="MR knee").update(active=False)
    assert chosen("MR", "KNEE") == "General radiology"


@pytest.mark.parametrize("kind", [Organization.Kind.IMAGING_CENTER, Organization.Kind.RADIOLOGY_GROUP])
def test_a_center_or_group_own_template_beats_the_platform_for_the_same_modality_and_body_part(kind):
    center = OrganizationFactory(slug="own-center")
    group = OrganizationFactory(slug="own-group", kind=Organization.Kind.RADIOLOGY_GROUP)
    owner = center if kind == Organization.Kind.IMAGING_CENTER else group
    seed = next(t for t in TEMPLATES if t["name"] == "CT head without contrast")
    own = ReportTemplate.objects.create(name="Our CT head", owner=owner, modalities=["CT"], body_parts=["HEAD"],
                                        sections=seed["sections"], fields=[])
    usable = templates.usable_templates(center_id=center.pk, group_ids=[group.pk])

    assert chosen("CT", "HEAD", usable=usable, center_id=center.pk) == own.name
    # Another center's readers never get it.
    elsewhere = OrganizationFactory(slug="elsewhere")
    other_usable = templates.usable_templates(center_id=elsewhere.pk, group_ids=[])
    assert chosen("CT", "HEAD", usable=other_usable, center_id=elsewhere.pk) == "CT head without contrast"
    # For another body part the platform's still applies.
    assert chosen("CT", "CHEST", "CT CHEST ABD PELVIS", usable=usable,
                  center_id=center.pk) == "CT chest, abdomen and pelvis with contrast"


def test_the_center_own_template_beats_its_readers_group_template():
    center = OrganizationFactory(slug="c1")
    group = OrganizationFactory(slug="g1", kind=Organization.Kind.RADIOLOGY_GROUP)
    sections = TEMPLATES[0]["sections"]
    ReportTemplate.objects.create(name="A group CT head", owner=group, modalities=["CT"], body_parts=["HEAD"],
                                  sections=sections)
    ReportTemplate.objects.create(name="Z center CT head", owner=center, modalities=["CT"], body_parts=["HEAD"],
                                  sections=sections)
    usable = templates.usable_templates(center_id=center.pk, group_ids=[group.pk])
    assert chosen("CT", "HEAD", usable=usable, center_id=center.pk) == "Z center CT head"
