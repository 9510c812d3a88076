"""Report templates as data: the shape a definition must have, the values its fields accept, and which
template a read gets by default (modality and body part; a center's or group's own before the platform's).
A template with the patient's plain-language summary section is a second-opinion template: it is for
reads of kind ``second_opinion`` only, and they get only such templates.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db.models import Q

from core.errors import ApplicationError
from reporting.models import FIELD_KINDS, PATIENT_SUMMARY, SECTION_CODES, ReportTemplate
from reporting.seed_templates import AGREEMENT, OVERREAD_AGREEMENT, RADPEER_SCORE

YES_NO = ("yes", "no")
SECOND_OPINION_KIND = "second_opinion"  # marketplace.models.Kind.SECOND_OPINION
OVERREAD_KIND = "overread"
PEER_REVIEW_KIND = "peer_review"


def for_second_opinion(template: ReportTemplate) -> bool:
    """Whether the template is written for a patient's second opinion (it has the plain-language summary)."""
    return any(section.get("code") == PATIENT_SUMMARY for section in template.sections)


def template_kind(template: ReportTemplate) -> str | None:
    """The kind of read a template is written for: by its marking section or field; None: any other read."""
    if for_second_opinion(template):
        return SECOND_OPINION_KIND
    codes = {spec.get("code") for spec in template.fields}
    if RADPEER_SCORE in codes:
        return PEER_REVIEW_KIND
    if OVERREAD_AGREEMENT in codes:
        return OVERREAD_KIND
    return None


def fits_kind(template: ReportTemplate, kind: str) -> bool:
    """A second opinion, an overread and a peer review are each written on a template of their own kind,
    any other read on any other template."""
    wanted = kind if kind in (SECOND_OPINION_KIND, OVERREAD_KIND, PEER_REVIEW_KIND) else None
    return template_kind(template) == wanted


def _bad(field: str, message: str) -> ApplicationError:
    return ApplicationError.for_field(field, message, code="invalid_template")


def check_definition(sections: list, fields: list) -> None:
    """Refuse a template definition the editor and the signing rule could not follow, naming the part."""
    if not isinstance(sections, list) or not sections:
        raise _bad("sections", "A template needs at least one section.")
    seen = set()
    for i, section in enumerate(sections):
        code = section.get("code") if isinstance(section, dict) else None
        if code not in SECTION_CODES:
            raise _bad(f"sections[{i}].code", f"Section code must be one of {', '.join(SECTION_CODES)}.")
        if code in seen:
            raise _bad(f"sections[{i}].code", f"Section {code!r} appears twice.")
        seen.add(code)
        if not str(section.get("title", "")).strip():
            raise _bad(f"sections[{i}].title", "Each section needs a title.")
    if not isinstance(fields, list):
        raise _bad("fields", "Fields must be a list.")
    codes = set()
    for i, spec in enumerate(fields):
        if not isinstance(spec, dict) or not str(spec.get("code", "")).strip():
            raise _bad(f"fields[{i}].code", "Each field needs a code.")
        if spec["code"] in codes:
            raise _bad(f"fields[{i}].code", f"Field {spec['code']!r} appears twice.")
        codes.add(spec["code"])
        if spec.get("kind") not in FIELD_KINDS:
            raise _bad(f"fields[{i}].kind", f"Field kind must be one of {', '.join(FIELD_KINDS)}.")
        if spec["kind"] == "choice" and not spec.get("choices"):
            raise _bad(f"fields[{i}].choices", "A pick list needs its choices.")
        if spec.get("section", "findings") not in seen:
            raise _bad(f"fields[{i}].section", "A field belongs to one of the template's sections.")


def check_second_opinion(report) -> None:
    """A patient's second opinion is signed on a second-opinion template, with its plain-language summary
    and its statement of agreement with the original report (issue 17); other reads pass."""
    if report.read_request.kind != SECOND_OPINION_KIND:
        return
    if not for_second_opinion(report.template):
        raise ApplicationError.for_field("template", "A second opinion is written on a second-opinion template "
                                                     "(with the patient's plain-language summary): switch to one.",
                                         code="required")
    if not report.sections.get(PATIENT_SUMMARY, "").strip():
        raise ApplicationError.for_field(f"sections.{PATIENT_SUMMARY}", "Write the plain-language summary for the "
                                                                        "patient before signing.", code="required")
    if not str(report.fields.get(AGREEMENT, "")).strip():
        raise ApplicationError.for_field(f"fields.{AGREEMENT}", "State whether you agree with the original report "
                                                                "before signing.", code="required")


def field_error(spec: dict, value: str) -> str:
    """Why ``value`` is not acceptable for the field (empty string: acceptable). Empty values pass here;
    whether a field is required is checked at signing."""
    if value == "":
        return ""
    kind = spec["kind"]
    if kind == "choice" and value not in {str(choice[0]) for choice in spec["choices"]}:
        return f"{spec['label']}: choose one of the listed values."
    if kind == "yesno" and value not in YES_NO:
        return f"{spec['label']}: answer yes or no."
    if kind == "number":
        try:
            number = Decimal(value)
        except InvalidOperation:
            return f"{spec['label']}: enter a number."
        if not number.is_finite():
            return f"{spec['label']}: enter a number."
    if len(value) > 200:
        return f"{spec['label']}: at most 200 characters."
    return ""


def choice_label(spec: dict, value: str) -> str:
    """What a field's value reads as in a report (a pick list's label, else the value and its unit)."""
    if spec["kind"] == "choice":
        return next((str(label) for code, label in spec["choices"] if str(code) == value), value)
    return f"{value} {spec.get('unit', '')}".strip()


def usable_templates(*, center_id: int, group_ids: list[int]):
    """Active templates a reader of this center may use: the platform's, the center's, the reader's groups'."""
    return ReportTemplate.objects.filter(Q(owner__isnull=True) | Q(owner_id=center_id) | Q(owner_id__in=group_ids),
                                         active=True)


def center_choices(center) -> list[tuple]:
    """The templates a center may name on its overflow rules (issue 18; registered with
    ``marketplace.template_choices`` at start-up): the platform's and the center's own, active, for ordinary
    reads (a rule posts primary reads). A group's templates are its readers' and stay off the center's list."""
    return [(t.public_id, t.name) for t in usable_templates(center_id=center.pk, group_ids=[])
            if template_kind(t) is None]


def choose(templates, *, modalities: list[str], body_part: str, description: str,
           center_id: int, kind: str = "primary", requested=None) -> ReportTemplate | None:
    """The best template for a read: the ``requested`` one (a public id the center asked for, issue 18) when it
    is among ``templates`` and fits the read; else it must fit the read's kind (``fits_kind``); modality must
    match (a template for no modality fits any); then
    a body-part keyword found in the study's body part or description; then the center's own, a
    group's, the platform's; then name (stable)."""
    text = f"{body_part} {description}".upper()
    wanted = {m.upper() for m in modalities}

    def score(template: ReportTemplate):
        if not fits_kind(template, kind):
            return None
        listed = {m.upper() for m in template.modalities}
        if listed and not listed & wanted:
            return None
        part = max((len(k) for k in template.body_parts if k and k.upper() in text), default=0)
        owner = 2 if template.owner_id == center_id else 1 if template.owner_id else 0
        return (-int(bool(listed)), -part, -owner, template.name)  # smallest is best

    scored = [(s, t) for t in templates if (s := score(t)) is not None]
    asked = next((t for s, t in scored if requested is not None and t.public_id == requested), None)
    if asked is not None:
        return asked
    return min(scored, key=lambda pair: pair[0])[1] if scored else None
