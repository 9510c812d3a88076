"""Reporting pages: editing report templates (platform operations, center and group admins) and a
radiologist's own macros. Thin: the input's shape is read here; the rules are in
``reporting.services.templates`` and ``reporting.services.macros``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ApplicationErrorFormMixin
from accounts.views.common import actor_of, page_errors, rule_refusals
from core.errors import NotFound
from marketplace.services.offers import profile_of
from reporting import selectors
from reporting.models import FIELD_KINDS, PATIENT_SUMMARY, SECTION_CODES, ReportTemplate
from reporting.services import macros as macro_services
from reporting.services import templates as services

BLANK_FIELD_ROWS = 2
MAX_FIELD_ROWS = services.MAX_FIELDS + BLANK_FIELD_ROWS
SECTION_TITLES = {"clinical_information": "Clinical information", "comparison": "Comparison",
                  "technique": "Technique", "findings": "Findings", "impression": "Impression",
                  PATIENT_SUMMARY: "Plain-language summary for the patient"}


# --- the template form: plain rows, read by hand (five fixed sections, a variable list of fields) ---------

class TemplateForm:
    """The editor's rows: name, modalities, keywords, one row per section code, one per field.

    ``errors`` maps ``name`` / ``modalities`` / ``body_parts`` / ``sections.<code>`` / ``fields.<row>`` to
    messages; a service refusal naming ``sections[i]`` or ``fields[i]`` is put on the row it came from.
    """

    def __init__(self, *, name="", modalities="", body_parts="", sections=None, fields=None):
        self.name, self.modalities, self.body_parts = name, modalities, body_parts
        self.sections = sections or []
        self.fields = fields or []
        self.errors: dict[str, list[str]] = {}
        self.top_errors: list[str] = []

    @classmethod
    def from_template(cls, template: ReportTemplate | None) -> TemplateForm:
        by_code = {s["code"]: s for s in (template.sections if template else [])}
        # A new template starts with the radiology sections; the patient's summary makes it a second-opinion one.
        sections = [{"code": code, "on": (template is None and code != PATIENT_SUMMARY) or code in by_code,
                     "title": by_code.get(code, {}).get("title", SECTION_TITLES[code]),
                     "normal": by_code.get(code, {}).get("normal", "")} for code in SECTION_CODES]
        fields = [{"code": f["code"], "label": f.get("label", ""), "kind": f.get("kind", ""),
                   "choices": "\n".join(f"{v}|{label}" for v, label in f.get("choices") or []),
                   "unit": f.get("unit", ""), "required": bool(f.get("required")),
                   "section": f.get("section", "findings")} for f in (template.fields if template else [])]
        return cls(name=template.name if template else "",
                   modalities=" ".join(template.modalities) if template else "",
                   body_parts="\n".join(template.body_parts) if template else "",
                   sections=sections, fields=cls._with_blank_rows(fields))

    @staticmethod
    def _with_blank_rows(fields: list[dict]) -> list[dict]:
        blank = {"code": "", "label": "", "kind": "text", "choices": "", "unit": "", "required": False,
                 "section": "findings"}
        return [*fields, *({**blank} for _ in range(BLANK_FIELD_ROWS))]

    @classmethod
    def from_post(cls, post) -> TemplateForm:
        sections = [{"code": code, "on": post.get(f"section_{code}_on") == "1",
                     "title": post.get(f"section_{code}_title", ""), "normal": post.get(f"section_{code}_normal", "")}
                    for code in SECTION_CODES]
        try:
            rows = min(max(int(post.get("field_rows", "0")), 0), MAX_FIELD_ROWS)
        except ValueError:
            rows = 0
        fields = [{"code": post.get(f"field_{i}_code", "").strip(), "label": post.get(f"field_{i}_label", ""),
                   "kind": post.get(f"field_{i}_kind", ""), "choices": post.get(f"field_{i}_choices", ""),
                   "unit": post.get(f"field_{i}_unit", ""), "required": post.get(f"field_{i}_required") == "1",
                   "section": post.get(f"field_{i}_section", "findings")} for i in range(rows)]
        filled = [f for f in fields if f["code"] or f["label"].strip() or f["choices"].strip()]
        return cls(name=post.get("name", ""), modalities=post.get("modalities", ""),
                   body_parts=post.get("body_parts", ""), sections=sections, fields=cls._with_blank_rows(filled))

    def _included_sections(self) -> list[dict]:
        return [s for s in self.sections if s["on"]]

    def _filled_fields(self) -> list[dict]:
        return [f for f in self.fields if f["code"] or f["label"].strip() or f["choices"].strip()]

    def data(self) -> services.TemplateData:
        return services.TemplateData(
            name=self.name,
            modalities=self.modalities.replace(",", " ").split(),
            body_parts=[line.strip() for line in self.body_parts.splitlines() if line.strip()],
            sections=[{"code": s["code"], "title": s["title"], "normal": s["normal"]}
                      for s in self._included_sections()],
            fields=[{"code": f["code"], "label": f["label"], "kind": f["kind"], "choices": _choices(f["choices"]),
                     "unit": f["unit"], "required": f["required"], "section": f["section"]}
                    for f in self._filled_fields()])

    def add_application_error(self, exc) -> None:
        """Put each message on the input or row it names (``fields[1].label`` is the second filled row)."""
        included, filled = self._included_sections(), self._filled_fields()
        for name, texts in (exc.fields or {}).items():
            key = _row_key(name, included, filled)
            for text in texts:
                if key is None:
                    self.top_errors.append(text)
                else:
                    self.errors.setdefault(key, []).append(text)
                    if key.startswith(("sections.", "fields.")):
                        row = (next(s for s in self.sections if f"sections.{s['code']}" == key) if
                               key.startswith("sections.") else filled[int(key.split(".")[1])])
                        row.setdefault("errors", []).append(text)
        if not exc.fields:
            self.top_errors.append(exc.message)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.top_errors)


def _choices(text: str) -> list[list[str]]:
    """One choice a line, ``value|label`` (a line without ``|`` is its own label)."""
    pairs = []
    for line in text.splitlines():
        if line.strip():
            value, _, label = line.partition("|")
            pairs.append([value.strip(), label.strip() or value.strip()])
    return pairs


def _row_key(name: str, included: list[dict], filled: list[dict]) -> str | None:
    if name in ("name", "modalities", "body_parts"):
        return name
    for prefix, rows in (("sections[", included), ("fields[", filled)):
        if name.startswith(prefix):
            index = name[len(prefix):].split("]", 1)[0]
            if index.isdigit() and int(index) < len(rows):
                return f"sections.{rows[int(index)]['code']}" if prefix == "sections[" else f"fields.{index}"
    return None


def _editor_context(form: TemplateForm, *, template: ReportTemplate | None, owner) -> dict:
    return {"form": form, "template": template, "owner": owner, "field_kinds": FIELD_KINDS,
            "section_codes": SECTION_CODES, "field_rows": len(form.fields)}


# --- template pages ---------------------------------------------------------------------------------

@login_required
@require_http_methods(["GET"])
@page_errors
def report_template_list(request):
    actor = actor_of(request)
    owner = services.editing_owner(actor)
    return render(request, "reporting/template_list.html", {
        "templates": list(services.editable_templates(actor=actor)), "owner": owner})


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def report_template_create(request):
    actor = actor_of(request)
    owner = services.editing_owner(actor)
    if request.method == "GET":
        form = TemplateForm.from_template(None)
        return render(request, "reporting/template_form.html", _editor_context(form, template=None, owner=owner))
    form = TemplateForm.from_post(request.POST)
    with rule_refusals(form.add_application_error) as call:
        template = services.template_create(actor=actor, owner=owner, data=form.data(), request=request)
    if call.ok:
        messages.success(request, f"Template {template.name!r} created.")
        return redirect("report_template_list")
    return render(request, "reporting/template_form.html", _editor_context(form, template=None, owner=owner),
                  status=400)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def report_template_edit(request, public_id):
    actor = actor_of(request)
    template = services.template_for_editing(actor=actor, public_id=public_id)
    if request.method == "GET":
        form = TemplateForm.from_template(template)
        return render(request, "reporting/template_form.html",
                      _editor_context(form, template=template, owner=template.owner))
    form = TemplateForm.from_post(request.POST)
    with rule_refusals(form.add_application_error) as call:
        template = services.template_update(actor=actor, template=template, data=form.data(), request=request)
    if call.ok:
        messages.success(request, f"Template {template.name!r} saved.")
        return redirect("report_template_list")
    return render(request, "reporting/template_form.html",
                  _editor_context(form, template=template, owner=template.owner), status=400)


@login_required
@require_POST
@page_errors
def report_template_set_active(request, public_id):
    """Deactivate (``active=0``) or bring back (``active=1``) a template."""
    actor = actor_of(request)
    template = services.template_for_editing(actor=actor, public_id=public_id)
    active = request.POST.get("active") == "1"
    services.template_set_active(actor=actor, template=template, active=active, request=request)
    messages.success(request, f"Template {template.name!r} {'is in use again' if active else 'deactivated'}.")
    return redirect("report_template_list")


# --- macros -------------------------------------------------------------------------------------------

class MacroForm(ApplicationErrorFormMixin, forms.Form):
    name = forms.CharField(max_length=31, help_text="Typed as .name in the report editor (e.g. nml).",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    text = forms.CharField(max_length=macro_services.MAX_TEXT, widget=forms.Textarea(attrs={"rows": 4}),
                           strip=False)


def _radiologist(request):
    actor = actor_of(request)
    if profile_of(actor) is None:
        raise NotFound()
    return actor


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def macro_list(request):
    """The radiologist's macros, and a form to add one."""
    actor = _radiologist(request)
    form = MacroForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            macro = macro_services.macro_create(actor=actor, name=form.cleaned_data["name"],
                                                text=form.cleaned_data["text"])
        if call.ok:
            messages.success(request, f"Macro .{macro.name} added.")
            return redirect("macro_list")
    return render(request, "reporting/macro_list.html", {"macros": list(selectors.macros_of(actor)), "form": form},
                  status=400 if form.is_bound else 200)


@login_required
@require_http_methods(["GET", "POST"])
@page_errors
def macro_edit(request, public_id):
    actor = _radiologist(request)
    macro = macro_services.macro_for_owner(actor=actor, public_id=public_id)
    form = MacroForm(request.POST or None, initial={"name": macro.name, "text": macro.text})
    if request.method == "POST" and form.is_valid():
        with rule_refusals(form.add_application_error) as call:
            macro = macro_services.macro_update(actor=actor, macro=macro, name=form.cleaned_data["name"],
                                                text=form.cleaned_data["text"])
        if call.ok:
            messages.success(request, f"Macro .{macro.name} saved.")
            return redirect("macro_list")
    return render(request, "reporting/macro_form.html", {"macro": macro, "form": form},
                  status=400 if form.is_bound else 200)


@login_required
@require_POST
@page_errors
def macro_delete(request, public_id):
    actor = _radiologist(request)
    macro = macro_services.macro_for_owner(actor=actor, public_id=public_id)
    macro_services.macro_delete(actor=actor, macro=macro)
    messages.success(request, f"Macro .{macro.name} deleted.")
    return redirect("macro_list")


urlpatterns = [
    path("reporting/templates/", report_template_list, name="report_template_list"),
    path("reporting/templates/new/", report_template_create, name="report_template_create"),
    path("reporting/templates/<uuid:public_id>/", report_template_edit, name="report_template_edit"),
    path("reporting/templates/<uuid:public_id>/active/", report_template_set_active,
         name="report_template_set_active"),
    path("reporting/macros/", macro_list, name="macro_list"),
    path("reporting/macros/<uuid:public_id>/", macro_edit, name="macro_edit"),
    path("reporting/macros/<uuid:public_id>/delete/", macro_delete, name="macro_delete"),
]
