"""Editing report templates: platform operations edit the platform's, a center's or group's admins their own;
a bad definition is refused naming the part; another organization's template is not found; all audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from core.errors import ApplicationError, NotFound
from reporting import templates
from reporting.models import ReportTemplate
from reporting.services import templates as services
from reporting.services.templates import TemplateData
from tests.factories import MembershipFactory
from tests.marketplace.helpers import actor
from tests.reporting.templates_helpers import seed_platform_templates

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _seeded(db):
    seed_platform_templates()

SECTIONS = [{"code": "findings", "title": "Findings", "normal": "Normal."},
            {"code": "impression", "title": "Impression", "normal": ""}]
SEVERITY = {"code": "severity", "label": "Severity", "kind": "choice", "section": "impression",
            "choices": [["1", "Mild"], ["2", "Severe"]], "required": True}


def data(**overrides) -> TemplateData:
    values = {"name": "Our CT head", "modalities": ["ct"], "body_parts": ["head", " brain "], "sections": SECTIONS,
              "fields": [SEVERITY]}
    return TemplateData(**{**values, **overrides})


def own_template(owner, name="Theirs"):
    return ReportTemplate.objects.create(name=name, owner=owner, modalities=["CT"], body_parts=["HEAD"],
                                         sections=SECTIONS, fields=[])


# --- services ---------------------------------------------------------------------------------------

def test_a_center_admin_creates_a_template_of_the_center_and_it_is_audited(cast):
    admin = actor(cast.center_admin)
    assert services.editing_owner(admin) == cast.center

    template = services.template_create(actor=admin, owner=cast.center, data=data())

    assert (template.owner, template.modalities, template.body_parts) == (cast.center, ["CT"], ["HEAD", "BRAIN"])
    assert template.fields[0]["choices"] == [["1", "Mild"], ["2", "Severe"]]
    assert template.fields[0]["required"] is True
    templates.check_definition(template.sections, template.fields)
    event = AuditEvent.objects.get(action="report_template.created")
    assert (event.actor, event.object_id, event.organization_id) == (
        cast.center_admin, str(template.public_id), cast.center.pk)


def test_a_group_admin_edits_the_group_templates(cast):
    group_admin = MembershipFactory(organization=cast.group, roles=["admin"]).user
    template = services.template_create(actor=actor(group_admin), owner=cast.group, data=data())
    services.template_update(actor=actor(group_admin), template=template, data=data(name="Renamed"))
    template.refresh_from_db()
    assert (template.owner, template.name) == (cast.group, "Renamed")
    assert AuditEvent.objects.filter(action="report_template.updated", object_id=str(template.public_id)).exists()


def test_platform_operations_edit_the_platform_templates_and_nobody_else_does(cast):
    ops = actor(cast.platform_staff)
    assert services.editing_owner(ops) is None
    template = services.template_create(actor=ops, owner=None, data=data(name="Platform CT head"))
    assert template.owner is None
    for user in (cast.center_admin, cast.radiologist, cast.technologist):
        with pytest.raises(NotFound):
            services.template_create(actor=actor(user), owner=None, data=data(name="Sneaky"))
        with pytest.raises(NotFound):
            services.template_update(actor=actor(user), template=template, data=data(name="Sneaky"))
    assert not ReportTemplate.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize("user", ["technologist", "center_viewer", "center_finance", "radiologist", "patient"])
def test_people_who_are_not_admins_edit_no_templates(cast, user):
    with pytest.raises(NotFound):
        services.editing_owner(actor(getattr(cast, user)))
    with pytest.raises(NotFound):
        services.template_create(actor=actor(getattr(cast, user)), owner=cast.center, data=data())


def test_another_organizations_template_is_not_found(cast):
    theirs = own_template(cast.other_center)
    admin = actor(cast.center_admin)
    with pytest.raises(NotFound):
        services.template_for_editing(actor=admin, public_id=theirs.public_id)
    with pytest.raises(NotFound):
        services.template_update(actor=admin, template=theirs, data=data())
    with pytest.raises(NotFound):
        services.template_deactivate(actor=admin, template=theirs)
    with pytest.raises(NotFound):  # the platform's, for a center admin
        services.template_for_editing(actor=admin, public_id=ReportTemplate.objects.filter(
            owner__isnull=True).first().public_id)
    theirs.refresh_from_db()
    assert theirs.active
    assert theirs.name == "Theirs"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"name": "  "}, "name"),
    ({"name": "x" * 121}, "name"),
    ({"modalities": ["C T!"]}, "modalities"),
    ({"sections": []}, "sections"),
    ({"sections": [{"code": "nonsense", "title": "X"}]}, "sections[0].code"),
    ({"sections": [SECTIONS[0], {"code": "impression", "title": " "}]}, "sections[1].title"),
    ({"sections": [SECTIONS[0], SECTIONS[0]]}, "sections[1].code"),
    ({"fields": [{**SEVERITY, "code": "Bad Code"}]}, "fields[0].code"),
    ({"fields": [{**SEVERITY, "label": ""}]}, "fields[0].label"),
    ({"fields": [{**SEVERITY, "kind": "colour"}]}, "fields[0].kind"),
    ({"fields": [{**SEVERITY, "choices": []}]}, "fields[0].choices"),
    ({"fields": [{**SEVERITY, "choices": [["1", "Mild"], ["1", "Again"]]}]}, "fields[0].choices"),
    ({"fields": [{**SEVERITY, "section": "technique"}]}, "fields[0].section"),
    ({"fields": [SEVERITY, SEVERITY]}, "fields[1].code"),
    ({"fields": [{**SEVERITY, "kind": "number", "choices": [["1", "x"]]}]}, "fields[0].choices"),
])
def test_a_bad_definition_is_refused_naming_the_part(cast, overrides, field):
    with pytest.raises(ApplicationError) as refused:
        services.template_create(actor=actor(cast.center_admin), owner=cast.center, data=data(**overrides))
    assert field in refused.value.fields, refused.value.fields
    assert not ReportTemplate.objects.filter(owner=cast.center).exists()


def test_a_name_already_used_by_the_same_owner_is_refused_but_another_owner_may_use_it(cast):
    services.template_create(actor=actor(cast.center_admin), owner=cast.center, data=data())
    with pytest.raises(ApplicationError) as refused:
        services.template_create(actor=actor(cast.center_admin), owner=cast.center, data=data())
    assert "name" in refused.value.fields
    services.template_create(actor=actor(cast.other_admin), owner=cast.other_center, data=data())


def test_a_deactivated_template_is_no_longer_chosen(cast):
    admin = actor(cast.center_admin)
    template = services.template_create(actor=admin, owner=cast.center, data=data())
    usable = templates.usable_templates(center_id=cast.center.pk, group_ids=[])
    pick = templates.choose(usable, modalities=["CT"], body_part="HEAD", description="", center_id=cast.center.pk)
    assert pick == template

    services.template_deactivate(actor=admin, template=template)

    usable = templates.usable_templates(center_id=cast.center.pk, group_ids=[])
    pick = templates.choose(usable, modalities=["CT"], body_part="HEAD", description="", center_id=cast.center.pk)
    assert pick.name == "CT head without contrast"
    assert AuditEvent.objects.filter(action="report_template.deactivated", object_id=str(template.public_id)).exists()


# --- pages ------------------------------------------------------------------------------------------

def form_post(**overrides) -> dict:
    """What the editor page posts: the five section rows, then field rows."""
    post = {"name": "Lakeside CT head", "modalities": "CT", "body_parts": "HEAD\nBRAIN", "field_rows": "2",
            "section_findings_on": "1", "section_findings_title": "Findings", "section_findings_normal": "Normal.",
            "section_impression_on": "1", "section_impression_title": "Impression",
            "section_impression_normal": "",
            "field_0_code": "severity", "field_0_label": "Severity", "field_0_kind": "choice",
            "field_0_choices": "1|Mild\n2|Moderate\n3", "field_0_unit": "", "field_0_required": "1",
            "field_0_section": "impression",
            "field_1_code": "", "field_1_label": "", "field_1_kind": "text", "field_1_choices": ""}
    return {**post, **overrides}


def test_the_list_shows_the_admins_own_templates_only(cast, login):
    own_template(cast.center, "Lakeside own")
    own_template(cast.other_center, "Harbor own")
    response = login(cast.center_admin).get(reverse("report_template_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Lakeside own" in body
    assert "Harbor own" not in body
    assert "CT head without contrast" not in body  # the platform's are operations'


def test_operations_see_the_platform_templates(cast, login):
    response = login(cast.platform_staff).get(reverse("report_template_list"))
    assert response.status_code == 200
    assert "CT head without contrast" in response.content.decode()


@pytest.mark.parametrize("user", ["technologist", "center_viewer", "center_finance", "radiologist", "patient"])
def test_the_template_pages_are_not_found_for_others(cast, login, user):
    client = login(getattr(cast, user))
    assert client.get(reverse("report_template_list")).status_code == 404
    assert client.get(reverse("report_template_create")).status_code == 404
    assert client.post(reverse("report_template_create"), form_post()).status_code == 404
    assert not ReportTemplate.objects.filter(name="Lakeside CT head").exists()


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(reverse("report_template_list")).status_code == 302


def test_creating_from_the_form_rows(cast, login):
    client = login(cast.center_admin)
    assert client.get(reverse("report_template_create")).status_code == 200
    response = client.post(reverse("report_template_create"), form_post())
    assert response.status_code == 302
    template = ReportTemplate.objects.get(owner=cast.center, name="Lakeside CT head")
    assert [s["code"] for s in template.sections] == ["findings", "impression"]
    assert template.body_parts == ["HEAD", "BRAIN"]
    assert template.fields == [{"code": "severity", "label": "Severity", "kind": "choice",
                                "choices": [["1", "Mild"], ["2", "Moderate"], ["3", "3"]], "unit": "",
                                "required": True, "section": "impression"}]
    # Editing shows what was saved, and saves again unchanged.
    page = client.get(reverse("report_template_edit", args=[template.public_id])).content.decode()
    assert "1|Mild\n2|Moderate\n3|3" in page
    response = client.post(reverse("report_template_edit", args=[template.public_id]),
                           form_post(name="Lakeside CT head v2"))
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.name == "Lakeside CT head v2"


def test_a_bad_row_is_shown_on_that_row_and_nothing_is_saved(cast, login):
    response = login(cast.center_admin).post(reverse("report_template_create"), form_post(
        field_1_code="Bad Code", field_1_label="Bad", field_1_kind="text", field_1_section="findings"))
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="field-row-1" class="has-error"' in body
    assert "lower-case letters, digits and _" in body
    assert 'value="Bad Code"' in body  # the input comes back
    assert not ReportTemplate.objects.filter(owner=cast.center).exists()


def test_a_field_in_a_section_left_out_is_refused_on_its_row(cast, login):
    response = login(cast.center_admin).post(reverse("report_template_create"), form_post(
        section_impression_on=""))
    assert response.status_code == 400
    assert 'id="field-row-0" class="has-error"' in response.content.decode()


def test_another_centers_template_is_not_found_on_every_page(cast, login):
    theirs = own_template(cast.other_center)
    client = login(cast.center_admin)
    assert client.get(reverse("report_template_edit", args=[theirs.public_id])).status_code == 404
    assert client.post(reverse("report_template_edit", args=[theirs.public_id]), form_post()).status_code == 404
    assert client.post(reverse("report_template_set_active", args=[theirs.public_id]),
                       {"active": "0"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.active
    assert theirs.name == "Theirs"


def test_deactivating_and_bringing_back_from_the_list(cast, login):
    mine = own_template(cast.center)
    client = login(cast.center_admin)
    assert client.post(reverse("report_template_set_active", args=[mine.public_id]),
                       {"active": "0"}).status_code == 302
    mine.refresh_from_db()
    assert not mine.active
    assert client.get(reverse("report_template_set_active", args=[mine.public_id])).status_code == 405
    client.post(reverse("report_template_set_active", args=[mine.public_id]), {"active": "1"})
    mine.refresh_from_db()
    assert mine.active


def test_sections_and_fields_a_signed_report_uses_stay_on_its_template(cast):
    from reporting.services import reports
    from tests.reporting.conftest import assigned_read

    admin = actor(cast.center_admin)
    template = services.template_create(actor=admin, owner=cast.center, data=data(
        body_parts=["CHEST"], fields=[{**SEVERITY, "required": False}]))
    reader = actor(cast.radiologist)
    report = reports.report_open(actor=reader, read_request=assigned_read(cast))
    assert report.template == template  # the center's own, before the platform's CT chest template
    report = reports.report_save(actor=reader, report=report, version=report.version,
                                 sections={"findings": "Nodule.", "impression": "Nodule."}, fields={"severity": "1"})
    # While the report is a draft the template may still lose a field.
    services.template_update(actor=admin, template=template, data=data(body_parts=["CHEST"], fields=[]))
    services.template_update(actor=admin, template=template, data=data(body_parts=["CHEST"],
                                                                       fields=[{**SEVERITY, "required": False}]))
    reports.report_sign(actor=reader, report=report, version=report.version, second_factor_age=10)

    for dropped, part in (({"sections": SECTIONS[1:]}, "sections"), ({"fields": []}, "fields")):
        with pytest.raises(ApplicationError) as refused:
            services.template_update(actor=admin, template=template, data=data(body_parts=["CHEST"], **dropped))
        assert part in refused.value.fields
    template.refresh_from_db()
    assert [s["code"] for s in template.sections] == ["findings", "impression"]
    # Titles and labels may change.
    renamed = [{**SECTIONS[0], "title": "Observations"}, SECTIONS[1]]
    services.template_update(actor=admin, template=template, data=data(
        body_parts=["CHEST"], sections=renamed, fields=[{**SEVERITY, "label": "Grade", "required": False}]))
    template.refresh_from_db()
    assert template.sections[0]["title"] == "Observations"
