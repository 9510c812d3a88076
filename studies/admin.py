"""Django admin for platform operations: the C-STORE gateway's AE titles and allow-lists; studies read-only.

Patient data stays out of the admin: every read of PHI goes through the audited study pages and
DICOMweb (``studies.services.study_access_record``), so the study index is shown here by its
technical fields only (UIDs, organization, counts, sizes, jurisdiction), and nothing of it can be
added, changed or deleted from here (ingest and the services own those writes).
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin

from accounts.credentials.vocab import REGION_REQUIRED
from studies.models import DicomAeTitle, DicomPeer, Instance, Series, Study, StudyAccessGrant

# PS3.5 AE VR: at most 16 characters of the default repertoire, no backslash, no control characters;
# leading and trailing spaces are not significant.
_AE_TITLE_RE = re.compile(r"^[\x20-\x5B\x5D-\x7E]{1,16}$")


def clean_ae_title(value: str, field: str = "AE title") -> str:
    value = (value or "").strip()
    if not value:
        raise forms.ValidationError(f"Enter the {field}.")
    if not _AE_TITLE_RE.match(value):
        raise forms.ValidationError(f"An {field} has at most 16 printable ASCII characters and no backslash.")
    return value


class DicomAeTitleForm(forms.ModelForm):
    class Meta:
        model = DicomAeTitle
        fields = ["organization", "ae_title", "description", "is_active"]

    def clean_ae_title(self) -> str:
        return clean_ae_title(self.cleaned_data.get("ae_title"))


class DicomPeerForm(forms.ModelForm):
    class Meta:
        model = DicomPeer
        fields = ["called", "calling_ae_title", "host", "description", "jurisdiction_country", "jurisdiction_region"]

    def clean_calling_ae_title(self) -> str:
        return clean_ae_title(self.cleaned_data.get("calling_ae_title"), "calling AE title")

    def clean_jurisdiction_country(self) -> str:
        value = (self.cleaned_data.get("jurisdiction_country") or "").strip().upper()
        if value and not re.fullmatch(r"[A-Z]{2}", value):
            raise forms.ValidationError("Enter the two-letter country code, e.g. US.")
        return value

    def clean_jurisdiction_region(self) -> str:
        value = (self.cleaned_data.get("jurisdiction_region") or "").strip().upper()
        if value and not re.fullmatch(r"[A-Z0-9]{1,3}", value):
            raise forms.ValidationError("Enter the state or province code, e.g. TX.")
        return value

    def clean(self):
        cleaned = super().clean()
        country, region = cleaned.get("jurisdiction_country"), cleaned.get("jurisdiction_region")
        if region and not country:
            self.add_error("jurisdiction_country", "Give the country of the state or province.")
        if country in REGION_REQUIRED and not region:
            self.add_error("jurisdiction_region", f"Licenses in {country} are issued per state or province: "
                                                  "give its code, e.g. TX.")
        return cleaned


class DicomPeerInline(admin.TabularInline):
    model = DicomPeer
    form = DicomPeerForm
    extra = 0
    fk_name = "called"


@admin.register(DicomAeTitle)
class DicomAeTitleAdmin(admin.ModelAdmin):
    """Which AE title stores into which organization; its peers are the allow-list of senders."""

    form = DicomAeTitleForm
    list_display = ["ae_title", "organization", "is_active", "description", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["ae_title", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    inlines = [DicomPeerInline]


@admin.register(DicomPeer)
class DicomPeerAdmin(admin.ModelAdmin):
    """A sending device allowed to call an AE title: calling AE title and IP address."""

    form = DicomPeerForm
    list_display = ["calling_ae_title", "host", "called", "jurisdiction_country", "jurisdiction_region",
                    "description"]
    search_fields = ["calling_ae_title", "host", "called__ae_title"]
    list_select_related = ["called"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed for platform staff, never added, changed or deleted here, and without detail pages.

    The list columns are the whole record an operator needs. Detail pages are refused because the
    admin titles them with the object's ``__str__``, which for studies and series carries the
    description (an identifying attribute in the de-identification profile); related studies and
    series are shown by UID for the same reason.
    """

    list_display_links = None

    @admin.display(description="study", ordering="study__study_instance_uid")
    def study_uid(self, obj) -> str:
        return obj.study.study_instance_uid

    @admin.display(description="series", ordering="series__series_instance_uid")
    def series_uid(self, obj) -> str:
        return obj.series.series_instance_uid

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_view_permission(request)


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ["study_instance_uid", "organization", "modalities_in_study", "jurisdiction_country",
                    "jurisdiction_region", "number_of_series", "number_of_instances", "total_size", "received_at",
                    "deleted_at"]
    list_filter = ["jurisdiction_country", "received_at"]
    search_fields = ["study_instance_uid", "organization__slug"]
    list_select_related = ["organization"]
    date_hierarchy = "received_at"


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["series_instance_uid", "study_uid", "modality", "series_number", "number_of_instances",
                    "total_size"]
    search_fields = ["series_instance_uid", "study__study_instance_uid"]
    list_select_related = ["study"]


@admin.register(Instance)
class InstanceAdmin(ReadOnlyAdmin):
    list_display = ["sop_instance_uid", "organization", "study_uid", "series_uid", "sop_class_uid",
                    "transfer_syntax_uid", "number_of_frames", "size", "sha256", "storage_key", "received_via",
                    "received_at"]
    list_filter = ["received_via", "transfer_syntax_uid"]
    search_fields = ["sop_instance_uid", "study__study_instance_uid", "sha256"]
    list_select_related = ["organization", "study", "series"]


@admin.register(StudyAccessGrant)
class StudyAccessGrantAdmin(ReadOnlyAdmin):
    list_display = ["study_uid", "user", "level", "reason", "expires_at", "revoked_at", "granted_by"]
    list_filter = ["level"]
    search_fields = ["study__study_instance_uid", "user__email"]
    list_select_related = ["study", "user", "granted_by"]
