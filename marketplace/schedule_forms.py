"""The reader's hours page's schedule forms beyond the weekly grid: the zone the hours are kept in, and extra
shifts (entered in the reader's own zone like time off; the services decide what is refused)."""

from __future__ import annotations

from django import forms

from marketplace.forms import ReadingHoursForm, TimeOffForm


class ReadingHoursZoneForm(ReadingHoursForm):
    """The weekly grid plus the zone it is kept in (free text: an unknown zone gets the service's field error)."""

    zone = forms.CharField(max_length=64, required=False, label="Time zone",
                           help_text="Your home time zone, an IANA name such as America/Chicago (empty: unchanged).")


class ExtraShiftForm(TimeOffForm):
    """One extra shift, from … until, in the reader's own zone."""


class ExtraShiftRemoveForm(forms.Form):
    extra_shift = forms.IntegerField(min_value=1)
