"""django-filter FilterSets for pages (the audit log)."""

from __future__ import annotations

import datetime
import zoneinfo

import django_filters
from django import forms

from accounts import selectors
from accounts.models import AuditEvent, Organization
from accounts.policy import Actor


class AuditEventFilter(django_filters.FilterSet):
    """Filters of the audit-log page and its CSV export. Dates are days in the viewer's time zone."""

    actor_email = django_filters.CharFilter(field_name="actor_email", lookup_expr="icontains",
                                            label="Actor email contains")
    action = django_filters.CharFilter(method="filter_action", label="Action",
                                       help_text="Exact name; end with “.” or “*” for a prefix, e.g. auth.")
    organization = django_filters.ModelChoiceFilter(queryset=Organization.objects.none(), to_field_name="public_id",
                                                    label="Organization", empty_label="Any organization")
    outcome = django_filters.ChoiceFilter(choices=AuditEvent.Outcome.choices, empty_label="Any outcome")
    date_from = django_filters.DateFilter(method="filter_date_from", label="From",
                                          widget=forms.DateInput(attrs={"type": "date"}))
    date_to = django_filters.DateFilter(method="filter_date_to", label="To",
                                        widget=forms.DateInput(attrs={"type": "date"}))
    object_id = django_filters.CharFilter(field_name="object_id", label="Object id")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, actor: Actor, time_zone: str = "UTC", **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.time_zone = zoneinfo.ZoneInfo(time_zone)
        self.filters["organization"].queryset = selectors.organization_list(actor=actor).order_by("name")

    def _start_of(self, day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time.min, tzinfo=self.time_zone)

    def filter_action(self, queryset, name, value):
        value = value.strip()
        if value.endswith(("*", ".")):
            return queryset.filter(action__startswith=value.rstrip("*"))
        return queryset.filter(action=value)

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(created_at__gte=self._start_of(value))

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(created_at__lt=self._start_of(value + datetime.timedelta(days=1)))

    def active_filters(self) -> dict[str, str]:
        """The filters in use, as given (for the audit record of who looked at what)."""
        if not self.is_bound:
            return {}
        return {name: str(self.data.get(name)) for name in self.filters if self.data.get(name)}
