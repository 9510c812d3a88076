"""The study list's search, filters and sort (django-filter).

Patient fields (name, id, birth date, accession, description, study date) are matched and sorted on
only among the rows the actor sees in full: a radiologist holding a preview grant cannot find out
a patient's name by searching for it, nor a study date by narrowing a date range or sorting.
"""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.db.models import Case, DateField, F, Q, Value, When

from accounts.policy import Actor
from studies import page_selectors
from studies.models import Study

MODALITIES = ["CT", "MR", "CR", "DX", "MG", "US", "NM", "PT", "XA", "RF", "SR", "SC", "OT"]
SORTS = [
    ("-date", "Study date, newest first"),
    ("date", "Study date, oldest first"),
    ("-received", "Received, newest first"),
    ("received", "Received, oldest first"),
    ("patient", "Patient name, A–Z"),
    ("-patient", "Patient name, Z–A"),
]
MAX_TERMS = 8
SEARCH_FIELDS = ("patient_name", "patient_id", "accession_number", "study_description")


class StudyFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label="Search",
                                  widget=forms.TextInput(attrs={"type": "search", "placeholder":
                                                                "Patient name or ID, accession, description"}))
    modality = django_filters.ChoiceFilter(choices=[(m, m) for m in MODALITIES], method="filter_modality",
                                           empty_label="Any modality", label="Modality")
    date_from = django_filters.DateFilter(method="filter_date_from", label="Study date from",
                                          widget=forms.DateInput(attrs={"type": "date"}))
    date_to = django_filters.DateFilter(method="filter_date_to", label="to",
                                        widget=forms.DateInput(attrs={"type": "date"}))
    jurisdiction = django_filters.ChoiceFilter(choices=[], method="filter_jurisdiction",
                                               empty_label="Any jurisdiction", label="Jurisdiction")
    sort = django_filters.ChoiceFilter(choices=SORTS, method="filter_sort", empty_label=None, label="Sort by")

    class Meta:
        model = Study
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, actor: Actor, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.full_access = page_selectors.study_full_access_condition(actor=actor)
        jurisdictions = page_selectors.study_jurisdictions(actor=actor)
        self.filters["jurisdiction"].extra["choices"] = [(j, j) for j in jurisdictions]

    def filter_search(self, queryset, name, value):
        terms = [t for t in re.split(r"[\s,^]+", value.strip()) if t][:MAX_TERMS]
        if not terms:
            return queryset
        condition = Q()
        for term in terms:
            condition &= Q(*[Q(**{f"{f}__icontains": term}) for f in SEARCH_FIELDS], _connector=Q.OR)
        return queryset.filter(self.full_access, condition)

    def filter_modality(self, queryset, name, value):
        return queryset.filter(modalities_in_study__contains=f"\\{value}\\")

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(self.full_access, study_date__gte=value)

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(self.full_access, study_date__lte=value)

    def filter_jurisdiction(self, queryset, name, value):
        country, _, region = value.partition("-")
        return queryset.filter(jurisdiction_country=country, jurisdiction_region=region)

    def filter_sort(self, queryset, name, value):
        return self._sorted(queryset, value)

    def _sorted(self, queryset, value: str):
        descending = value.startswith("-")
        key = value.lstrip("-")
        if key == "received":
            return queryset.order_by(F("received_at").desc() if descending else F("received_at").asc(), "-pk")
        if key == "patient":
            queryset = queryset.annotate(sort_patient=Case(When(self.full_access, then=F("patient_name")),
                                                           default=Value("")))
            order = F("sort_patient").desc() if descending else F("sort_patient").asc()
            return queryset.order_by(order, "-received_at", "-pk")
        queryset = queryset.annotate(sort_date=Case(When(self.full_access, then=F("study_date")), default=None,
                                                    output_field=DateField()))
        order = F("sort_date").desc(nulls_last=True) if descending else F("sort_date").asc(nulls_last=True)
        return queryset.order_by(order, "-received_at", "-pk")

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("sort"):
            queryset = self._sorted(queryset, "-date")
        return queryset

    def active_filters(self) -> dict[str, str]:
        """The filters in use, as given (recorded with the list view in the audit log)."""
        if not self.is_bound:
            return {}
        return {name: str(self.data.get(name))[:200] for name in self.filters if self.data.get(name)}
