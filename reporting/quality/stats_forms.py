"""The choosers of the quality statistics pages: a period (from/to dates, both included; the last 90 days
unless chosen) and, for operations' outliers, the margin and the fewest reviews a verdict may rest on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms

from reporting.quality.stats import DEFAULT_MIN_REVIEWS

DEFAULT_DAYS = 90
MAX_DAYS = 3 * 366  # the trend chart draws one bar a month: three years stay readable
DEFAULT_MARGIN_PERCENT = 5


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # included
    start: datetime  # first's midnight in the viewer's zone
    end: datetime  # the midnight after ``last`` (excluded)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


class PeriodForm(forms.Form):
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        first, last = data.get("start"), data.get("end")
        if first and last and first > last:
            raise forms.ValidationError("“From” must not be after “To”.")
        if first and last and (last - first).days >= MAX_DAYS:
            raise forms.ValidationError(f"Choose at most {MAX_DAYS} days.")
        return data

    def period(self, *, zone: str, today: date) -> Period:
        """The chosen period, or the last 90 days (today included) when the choice is missing or invalid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        last = data.get("end") or (today if not data.get("start") else
                                   min(today, data["start"] + timedelta(days=DEFAULT_DAYS - 1)))
        first = data.get("start") or last - timedelta(days=DEFAULT_DAYS - 1)
        tz = ZoneInfo(zone)
        return Period(first=first, last=last, start=_midnight(first, tz), end=_midnight(last + timedelta(days=1), tz))


class OutlierForm(PeriodForm):
    margin = forms.DecimalField(required=False, min_value=0, max_value=100, decimal_places=1,
                                label="Margin (percentage points)", initial=DEFAULT_MARGIN_PERCENT,
                                help_text="Flag a reader above their group's rate by more than this.")
    min_reviews = forms.IntegerField(required=False, min_value=1, max_value=10_000, label="Fewest reviews",
                                     initial=DEFAULT_MIN_REVIEWS)

    def outlier_choice(self) -> tuple[float, int]:
        """(margin as a fraction, fewest reviews), the defaults where missing or invalid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        margin = data.get("margin")
        return (float(margin if margin is not None else DEFAULT_MARGIN_PERCENT) / 100,
                data.get("min_reviews") or DEFAULT_MIN_REVIEWS)
