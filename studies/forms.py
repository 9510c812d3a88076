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


class BreakGlassForm(ApplicationErrorFormMixin, forms.Form):
    organization = forms.ModelChoiceField(queryset=None, label="Imaging center", to_field_name="public_id",
                                          empty_label="Choose the center")
    study = forms.CharField(max_length=100, label="Study",
                            widget=forms.TextInput(attrs={"autocomplete": "off",
                                                          "placeholder": "Study Instance UID or accession number"}))
    reason = forms.CharField(max_length=300, label="Reason", widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why this cannot wait for the normal assignment. The center's admins "
                                       "are told at once and the audit log keeps it.")

    def __init__(self, *args, **kwargs):
        from accounts.models import Organization

        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = Organization.objects.filter(
            kind=Organization.Kind.IMAGING_CENTER).order_by("name")
