"""Study page forms: they check the shape of the input; the rules live in studies.services and policy."""

from __future__ import annotations

from django import forms

from accounts.forms import ApplicationErrorFormMixin


class JurisdictionForm(ApplicationErrorFormMixin, forms.Form):
    country = forms.CharField(max_length=2, min_length=2, label="Country",
                              widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "US"}),
                              help_text="Two-letter code (ISO 3166-1), e.g. US, CA.")
    region = forms.CharField(max_length=3, required=False, label="State / province",
                             widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "TX"}),
                             help_text="Where the patient was imaged, e.g. TX, ON.")


class StudyDeleteForm(ApplicationErrorFormMixin, forms.Form):
    reason = forms.CharField(max_length=300, label="Reason",
                             widget=forms.TextInput(attrs={"autocomplete": "off",
                                                           "placeholder": "e.g. sent to the wrong center"}),
                             help_text="Recorded in the audit log.")


class UploadFilesForm(forms.Form):
    """The upload endpoint's body: one file per request (the page sends them one by one).

    ``path`` is the file's path inside a dropped folder, shown in the results only: it never
    reaches storage (ingest builds every key from the file's validated UIDs).
    """

    file = forms.FileField(allow_empty_file=True, error_messages={"required": "Send one file in the field “file”."})
    path = forms.CharField(max_length=1000, required=False)
    in_folder = forms.BooleanField(required=False)  # part of a dropped folder: a non-DICOM file is skipped
