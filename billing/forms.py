"""The shape of what finance pages accept; the rules are in ``billing.services``."""

from __future__ import annotations

from datetime import date

from django import forms

from accounts.models import Organization, RadiologistProfile
from billing.models import Band
from core.money import parse_money

PRIORITIES = ("stat", "urgent", "routine")


def _parse_lines(text: str, parse_line, field: str) -> list:
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            try:
                rows.append(parse_line(raw.split()))
            except (ValueError, IndexError) as exc:
                raise forms.ValidationError(f"Line {number} ({raw.strip()!r}): {exc}", code=field) from None
    return rows


def _rate(parts: list[str]) -> tuple[str, str, str, int]:
    if len(parts) != 4:
        raise ValueError("write modality, priority, band and price, e.g. CT stat night 42.00")
    modality, priority, band, price = parts
    if priority.lower() not in PRIORITIES:
        raise ValueError("priority is stat, urgent or routine")
    if band.lower() not in Band.values:
        raise ValueError("band is day, night, weekend or holiday")
    return modality.upper(), priority.lower(), band.lower(), parse_money(price)


def _service_level(parts: list[str]) -> tuple[str, int, int]:
    if len(parts) != 3:
        raise ValueError("write priority, minutes and credit, e.g. stat 45 5.00")
    priority, minutes, credit = parts
    if priority.lower() not in PRIORITIES:
        raise ValueError("priority is stat, urgent or routine")
    if not minutes.isdigit():
        raise ValueError("minutes is a whole number")
    return priority.lower(), int(minutes), parse_money(credit)


class ContractForm(forms.Form):
    name = forms.CharField(max_length=200)
    group = forms.ModelChoiceField(queryset=Organization.objects.filter(kind=Organization.Kind.RADIOLOGY_GROUP),
                                   required=False, help_text="A radiology group …")
    radiologist = forms.ModelChoiceField(queryset=RadiologistProfile.objects.select_related("user"), required=False,
                                         help_text="… or one independent radiologist.")
    fee_percent = forms.DecimalField(min_value=0, max_value=100, decimal_places=2, initial=15,
                                     label="Platform fee (%)")
    cancellation_fee = forms.CharField(initial="0.00", help_text="Owed to the reader when a claimed read is cancelled.")
    starts_on = forms.DateField(initial=date.today, widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    rates = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}),
                            help_text="One per line: modality priority band price, e.g. “CT stat night 42.00”.")
    service_levels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                     help_text="One per line: priority minutes credit, e.g. “stat 45 5.00”.")

    def clean_cancellation_fee(self) -> int:
        try:
            return parse_money(self.cleaned_data["cancellation_fee"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_rates(self) -> list:
        return _parse_lines(self.cleaned_data["rates"], _rate, "rates")

    def clean_service_levels(self) -> list:
        return _parse_lines(self.cleaned_data["service_levels"], _service_level, "service_levels")

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("group")) == bool(cleaned.get("radiologist")):
            raise forms.ValidationError("Choose one radiology group or one radiologist.")
        return cleaned


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)
    reference = forms.CharField(max_length=200, required=False)


class GenerateInvoicesForm(forms.Form):
    month = forms.CharField(max_length=7, help_text="YYYY-MM, in each center's time zone.")
    center = forms.ModelChoiceField(queryset=Organization.objects.filter(kind=Organization.Kind.IMAGING_CENTER),
                                    required=False, help_text="Empty: every center with something to bill.")

    def clean_month(self) -> tuple[int, int]:
        return parse_month(self.cleaned_data["month"])


def parse_month(text: str) -> tuple[int, int]:
    try:
        year, month = (int(part) for part in text.split("-"))
        date(year, month, 1)
    except ValueError:
        raise forms.ValidationError("Give the month as YYYY-MM, e.g. 2026-11.") from None
    return year, month
