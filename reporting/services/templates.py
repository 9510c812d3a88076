"""Editing report templates: platform operations edit the platform's, a center's or group's admins their own.

A template's definition is checked here in full before it is written: the shape
``reporting.templates.check_definition`` holds, plus what the editor needs (field codes usable as keys,
labels, pick-list values without duplicates, limits). Every refusal names the part (``name``,
``modalities``, ``sections[2].title``, ``fields[0].choices``); another organization's template is not found.
Every change is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.audit import audit_record
from accounts.models import Organization
from accounts.policy import Actor
from core.errors import ApplicationError, NotFound
from reporting import policy, templates
from reporting.models import FIELD_KINDS, MAX_SECTION_CHARS, Report, ReportTemplate

MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")  # a DICOM Modality (CS) code
FIELD_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_KEYWORDS = 40
MAX_FIELDS = 40
MAX_CHOICES = 50


@dataclass(frozen=True)
class TemplateData:
    """A template as the editor sends it. ``fields[i]["choices"]`` is a list of ``[value, label]``."""

    name: str
    modalities: list[str] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)
    sections: list[dict] = field(default_factory=list)
    fields: list[dict] = field(default_factory=list)


def _err(name: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(name, message, code="invalid_template")


# --- who edits which --------------------------------------------------------------------------------

def editing_owner(actor: Actor) -> Organization | None:
    """Whose templates the actor edits, from the active organization: the platform's (``None``) for
    operations acting in the platform organization, else the active center's or group's (its admins).
    Anyone else has nothing to edit (NotFound)."""
    organization = actor.active_organization
    if organization is None or actor.user is None:
        raise NotFound()
    if organization.kind == Organization.Kind.PLATFORM:
        if policy.can_edit_template_of(actor, None):
            return None
        raise NotFound()
    if policy.can_edit_template_of(actor, organization):
        return organization
    raise NotFound()


def editable_templates(*, actor: Actor) -> QuerySet[ReportTemplate]:
    """The templates the actor edits (active and inactive), by name."""
    owner = editing_owner(actor)
    rows = ReportTemplate.objects.filter(owner__isnull=True) if owner is None else owner.report_templates.all()
    return rows.order_by("name", "id")


def template_for_editing(*, actor: Actor, public_id) -> ReportTemplate:
    """One template the actor edits; another organization's (or the platform's, for a center) is not found."""
    template = ReportTemplate.objects.select_related("owner").filter(public_id=public_id).first()
    if template is None or not policy.can_edit_template_of(actor, template.owner):
        raise NotFound("Template not found.")
    return template


# --- the definition ---------------------------------------------------------------------------------

def _text(name: str, value, limit: int, *, required: bool = False, what: str = "") -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _err(name, "Must be text.")
    value = value.replace("\r\n", "\n").strip()
    if "\x00" in value:
        raise _err(name, "Contains a NUL character.")
    if required and not value:
        raise _err(name, f"Enter {what or 'a value'}.")
    if len(value) > limit:
        raise _err(name, f"At most {limit:,} characters (this has {len(value):,}).")
    return value


def _codes(name: str, values, pattern: re.Pattern | None, what: str) -> list[str]:
    if not isinstance(values, list | tuple):
        raise _err(name, "Must be a list.")
    if len(values) > MAX_KEYWORDS:
        raise _err(name, f"At most {MAX_KEYWORDS} entries.")
    cleaned: list[str] = []
    for value in values:
        code = _text(name, value, 64).upper()
        if not code:
            continue
        if pattern is not None and not pattern.match(code):
            raise _err(name, f"{code!r} is not {what}.")
        if code not in cleaned:
            cleaned.append(code)
    return cleaned


def _sections(sections) -> list[dict]:
    if not isinstance(sections, list | tuple):
        raise _err("sections", "Sections must be a list.")
    cleaned = []
    for i, section in enumerate(sections):
        if not isinstance(section, dict):
            raise _err(f"sections[{i}]", "Each section is an object with code, title and normal text.")
        cleaned.append({"code": section.get("code"),
                        "title": _text(f"sections[{i}].title", section.get("title"), 100, required=True,
                                       what="the section's title"),
                        "normal": _text(f"sections[{i}].normal", section.get("normal"), MAX_SECTION_CHARS)})
    return cleaned


def _choices(name: str, choices) -> list[list[str]]:
    if choices in (None, ""):
        return []
    if not isinstance(choices, list | tuple) or len(choices) > MAX_CHOICES:
        raise _err(name, f"A list of at most {MAX_CHOICES} [value, label] pairs.")
    cleaned, seen = [], set()
    for pair in choices:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise _err(name, "Each choice is a value and a label.")
        value = _text(name, pair[0], 200)
        label = _text(name, pair[1], 200) or value
        if not value:
            raise _err(name, f"The choice labelled {label!r} has no value.")
        if value in seen:
            raise _err(name, f"The value {value!r} is listed twice.")
        seen.add(value)
        cleaned.append([value, label])
    return cleaned


def _fields(fields) -> list[dict]:
    if not isinstance(fields, list | tuple):
        raise _err("fields", "Fields must be a list.")
    if len(fields) > MAX_FIELDS:
        raise _err("fields", f"At most {MAX_FIELDS} fields.")
    cleaned = []
    for i, spec in enumerate(fields):
        if not isinstance(spec, dict):
            raise _err(f"fields[{i}]", "Each field is an object.")
        code = _text(f"fields[{i}].code", spec.get("code"), 40, required=True, what="the field's code")
        if not FIELD_CODE.match(code):
            raise _err(f"fields[{i}].code", "A code is lower-case letters, digits and _ and starts with a letter "
                                            "(e.g. birads).")
        kind = spec.get("kind")
        if kind not in FIELD_KINDS:
            raise _err(f"fields[{i}].kind", f"Field kind must be one of {', '.join(FIELD_KINDS)}.")
        choices = _choices(f"fields[{i}].choices", spec.get("choices"))
        if kind != "choice" and choices:
            raise _err(f"fields[{i}].choices", "Only a pick list (kind choice) has choices.")
        cleaned.append({
            "code": code,
            "label": _text(f"fields[{i}].label", spec.get("label"), 100, required=True, what="the field's label"),
            "kind": kind, "choices": choices,
            "unit": _text(f"fields[{i}].unit", spec.get("unit"), 20),
            "required": bool(spec.get("required")),
            "section": spec.get("section") or "findings",
        })
    return cleaned


def clean_definition(data: TemplateData, *, owner: Organization | None,
                     instance: ReportTemplate | None = None) -> dict:
    """The model's values for ``data``, or a refusal naming the part."""
    name = _text("name", data.name, 120, required=True, what="a name")
    clash = ReportTemplate.objects.filter(owner=owner, name=name)
    if instance is not None:
        clash = clash.exclude(pk=instance.pk)
    if clash.exists():
        raise _err("name", f"There is already a template named {name!r}.")
    sections, fields = _sections(data.sections), _fields(data.fields)
    templates.check_definition(sections, fields)
    return {"name": name, "modalities": _codes("modalities", data.modalities, MODALITY, "a DICOM modality code"),
            "body_parts": _codes("body_parts", data.body_parts, None, ""), "sections": sections, "fields": fields}


# --- writes -----------------------------------------------------------------------------------------

def _audit(action: str, actor: Actor, template: ReportTemplate, request: HttpRequest | None, **extra) -> None:
    audit_record(action=action, actor=actor.user, request=request, organization_id=template.owner_id,
                 object_type="reporting.reporttemplate", object_id=str(template.public_id),
                 extra={"name": template.name, **extra})


def _keep_what_signed_reports_use(template: ReportTemplate, values: dict) -> None:
    """A released or signed report is delivered again with each addendum, built from its template's
    sections and fields: those it may hold text or values for stay (titles and labels may change)."""
    if not Report.objects.filter(template=template).exclude(status=Report.Status.DRAFT).exists():
        return
    for part in ("sections", "fields"):
        dropped = [item["code"] for item in getattr(template, part)
                   if item["code"] not in {kept["code"] for kept in values[part]}]
        if dropped:
            raise _err(part, f"Signed reports use {part} {', '.join(map(repr, dropped))} of this template: keep "
                             "them, or deactivate this template and create a new one.")


@transaction.atomic
def template_create(*, actor: Actor, owner: Organization | None, data: TemplateData,
                    request: HttpRequest | None = None) -> ReportTemplate:
    """A new template of ``owner`` (``None``: the platform's), by one who may edit that owner's templates."""
    if not policy.can_edit_template_of(actor, owner):
        raise NotFound()
    template = ReportTemplate.objects.create(owner=owner, **clean_definition(data, owner=owner))
    _audit("report_template.created", actor, template, request)
    return template


@transaction.atomic
def template_update(*, actor: Actor, template: ReportTemplate, data: TemplateData,
                    request: HttpRequest | None = None) -> ReportTemplate:
    """Replace a template's definition. Reports keep their text; drafts on it follow the new sections."""
    template = ReportTemplate.objects.select_for_update().filter(pk=template.pk).first()
    if template is None or not policy.can_edit_template_of(actor, template.owner):
        raise NotFound("Template not found.")
    values = clean_definition(data, owner=template.owner, instance=template)
    _keep_what_signed_reports_use(template, values)
    changed = [name for name, value in values.items() if getattr(template, name) != value]
    for name in changed:
        setattr(template, name, values[name])
    template.save(update_fields=[*changed, "updated_at"])
    _audit("report_template.updated", actor, template, request, changed=changed)
    return template


@transaction.atomic
def template_set_active(*, actor: Actor, template: ReportTemplate, active: bool,
                        request: HttpRequest | None = None) -> ReportTemplate:
    """Take a template out of use (no longer chosen or offered; reports written on it keep it), or back."""
    template = ReportTemplate.objects.select_for_update().filter(pk=template.pk).first()
    if template is None or not policy.can_edit_template_of(actor, template.owner):
        raise NotFound("Template not found.")
    if template.active != active:
        template.active = active
        template.save(update_fields=["active", "updated_at"])
        _audit("report_template.activated" if active else "report_template.deactivated", actor, template, request)
    return template


def template_deactivate(*, actor: Actor, template: ReportTemplate,
                        request: HttpRequest | None = None) -> ReportTemplate:
    return template_set_active(actor=actor, template=template, active=False, request=request)
