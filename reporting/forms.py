"""Reporting page forms: the shape of the input only. The rules (who may sign, what a report needs) live in
``reporting.services.reports``; its refusals are placed on these forms by field name."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django import forms

from accounts.forms import ApplicationErrorFormMixin
from reporting.models import MAX_SECTION_CHARS, CriticalResult
from reporting.services.reports import CriticalInput

CATEGORY_CHOICES = [("", "No critical result"), *[(str(v), label) for v, label in CriticalResult.Category.choices]]


class ServiceErrorsMixin(ApplicationErrorFormMixin):
    """A service names fields as ``critical.finding`` or ``text``; the form's fields are ``finding`` and
    ``text``. An error naming a field of this form goes on it; any other shows its message on top."""

    prefix_of_service: str = ""

    def add_application_error(self, exc) -> None:
        placed = False
        for name, messages in (exc.fields or {}).items():
            target = name.removeprefix(self.prefix_of_service)
            for message in messages:
                self.add_error(target if target in self.fields else None, message)
                placed = True
        if not placed:
            self.add_error(None, exc.message)


class VersionForm(forms.Form):
    """The draft version the page was showing when a button was pressed (a stale one is refused)."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class SignForm(ServiceErrorsMixin, VersionForm):
    """Sign, optionally flagging a critical result: who at the center was told, when (the reader's local
    time), how, and that it was read back (ACR practice parameter)."""

    prefix_of_service = "critical."

    category = forms.TypedChoiceField(choices=CATEGORY_CHOICES, coerce=int, empty_value=None, required=False,
                                      label="Critical result")
    finding = forms.CharField(required=False, max_length=500, label="Critical finding")
    contacted_name = forms.CharField(required=False, max_length=200, label="Who was contacted")
    contacted_at = forms.DateTimeField(required=False, label="When (your local time)",
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                       input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    method = forms.ChoiceField(choices=[("", "—"), *CriticalResult.Method.choices], required=False, label="How")
    read_back = forms.BooleanField(required=False, label="The finding was read back to me")
    # A second opinion: the draft version whose plain-language summary the reader reviewed before signing.
    summary_reviewed = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, zone: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = ZoneInfo(zone)

    def clean(self):
        data = super().clean()
        if data.get("category") is None:
            return data
        for name in ("finding", "contacted_name", "contacted_at", "method"):
            if not data.get(name) and name not in self.errors:
                self.add_error(name, f"{self.fields[name].label}: required for a critical result.")
        return data

    def critical(self) -> CriticalInput | None:
        """The critical result as the service takes it; the time entered in the reader's zone, made aware
        (stored in UTC)."""
        data = self.cleaned_data
        if data.get("category") is None:
            return None
        return CriticalInput(category=data["category"], finding=data["finding"],
                             contacted_name=data["contacted_name"],
                             contacted_at=data["contacted_at"].replace(tzinfo=None).replace(tzinfo=self.zone),
                             method=data["method"], read_back=data["read_back"])


class TemplateSwitchForm(VersionForm):
    template = forms.UUIDField()


class AddendumForm(ServiceErrorsMixin, forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=MAX_SECTION_CHARS, label="Addendum")
