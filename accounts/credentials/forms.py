"""Page forms of credentialing: they check the shape of the input; services hold the rules."""

from __future__ import annotations

from django import forms

from accounts.credentials.models import FacilityPrivilege, License, VerificationMethod
from accounts.credentials.vocab import COMMON_LANGUAGES, Modality, Priority, Subspecialty
from accounts.forms import ApplicationErrorFormMixin
from accounts.models import TIME_ZONE_CHOICES

DATE = forms.DateInput(attrs={"type": "date"})


class ProfileForm(ApplicationErrorFormMixin, forms.Form):
    display_name = forms.CharField(max_length=200, required=False)
    credentials_line = forms.CharField(max_length=100, required=False, help_text='e.g. "MD, FACR"')
    npi = forms.CharField(max_length=10, required=False, label="NPI", help_text="10 digits (US radiologists).")
    home_time_zone = forms.ChoiceField(choices=TIME_ZONE_CHOICES)
    languages = forms.MultipleChoiceField(choices=COMMON_LANGUAGES, required=False,
                                          widget=forms.CheckboxSelectMultiple)
    subspecialties = forms.MultipleChoiceField(choices=Subspecialty.choices, required=False,
                                               widget=forms.CheckboxSelectMultiple)
    modalities = forms.MultipleChoiceField(choices=Modality.choices, required=False,
                                           widget=forms.CheckboxSelectMultiple)
    priorities = forms.MultipleChoiceField(choices=Priority.choices, required=False,
                                           widget=forms.CheckboxSelectMultiple, label="Priorities taken")
    max_concurrent_cases = forms.IntegerField(min_value=1, max_value=50, label="Cases at once")
    bio = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=2000, required=False)
    photo = forms.FileField(required=False, help_text="PNG or JPEG.")


class LicenseForm(ApplicationErrorFormMixin, forms.Form):
    country = forms.CharField(max_length=2, initial="US")
    region = forms.CharField(max_length=3, required=False, label="State / province", help_text="e.g. TX")
    number = forms.CharField(max_length=40)
    license_type = forms.ChoiceField(choices=License.Type.choices, label="Type")
    issued_on = forms.DateField(required=False, widget=DATE)
    expires_on = forms.DateField(widget=DATE)


class BoardForm(ApplicationErrorFormMixin, forms.Form):
    board = forms.CharField(max_length=100, initial="ABR")
    certificate = forms.CharField(max_length=150, help_text="e.g. Diagnostic Radiology, Neuroradiology")
    initial_year = forms.IntegerField(min_value=1950, max_value=2100)
    expires_on = forms.DateField(required=False, widget=DATE)
    continuous_certification = forms.BooleanField(required=False)


class InsuranceForm(ApplicationErrorFormMixin, forms.Form):
    carrier = forms.CharField(max_length=150)
    policy_number = forms.CharField(max_length=60)
    per_claim_limit = forms.IntegerField(min_value=1, help_text="In cents (minor units).")
    aggregate_limit = forms.IntegerField(min_value=1, help_text="In cents (minor units).")
    currency = forms.CharField(max_length=3, initial="USD")
    coverage_jurisdictions = forms.CharField(max_length=300, help_text="e.g. US, or US-TX US-FL")
    effective_on = forms.DateField(widget=DATE)
    expires_on = forms.DateField(widget=DATE)


class MqsaForm(ApplicationErrorFormMixin, forms.Form):
    initial_qualified_on = forms.DateField(widget=DATE)
    exams_last_24_months = forms.IntegerField(min_value=0)
    cme_hours_last_36_months = forms.DecimalField(min_value=0, max_digits=5, decimal_places=1)
    attested_on = forms.DateField(widget=DATE)


KIND_FORMS = {"license": LicenseForm, "board": BoardForm, "insurance": InsuranceForm, "mqsa": MqsaForm}


class DocumentForm(ApplicationErrorFormMixin, forms.Form):
    file = forms.FileField(help_text="PDF or image (PNG, JPEG, TIFF), at most 10 MB.")


class DecisionForm(ApplicationErrorFormMixin, forms.Form):
    decision = forms.ChoiceField(choices=[("verified", "Verify"), ("rejected", "Reject")])
    method = forms.ChoiceField(choices=VerificationMethod.choices, required=False)
    reference = forms.CharField(max_length=300, required=False)
    reason = forms.CharField(max_length=500, required=False)


class PrivilegeGrantForm(ApplicationErrorFormMixin, forms.Form):
    radiologist = forms.UUIDField()
    expires_on = forms.DateField(required=False, widget=DATE)


class PrivilegeChangeForm(ApplicationErrorFormMixin, forms.Form):
    """One row's change on the Privileges page: "no change" unless picked; taking privileges away is confirmed."""

    NO_CHANGE = ""
    NEEDS_CONFIRMATION = frozenset({FacilityPrivilege.Status.SUSPENDED, FacilityPrivilege.Status.REVOKED})

    to = forms.ChoiceField(choices=[(NO_CHANGE, "No change"), *FacilityPrivilege.Status.choices], required=False)
    reason = forms.CharField(max_length=500, required=False)
    confirm = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        to = cleaned.get("to")
        if to in self.NEEDS_CONFIRMATION and not cleaned.get("confirm"):
            label = FacilityPrivilege.Status(to).label.lower()
            self.add_error("confirm", f"Tick “Confirm” to mark these privileges {label}.")
        return cleaned


class RequiresPrivilegesForm(forms.Form):
    requires_privileges = forms.BooleanField(required=False)


class DirectoryForm(forms.Form):
    state = forms.CharField(max_length=6, required=False, help_text="e.g. TX or CA-ON")
    subspecialty = forms.ChoiceField(choices=[("", "Any"), *Subspecialty.choices], required=False)
    modality = forms.ChoiceField(choices=[("", "Any"), *Modality.choices], required=False)
    language = forms.ChoiceField(choices=[("", "Any"), *COMMON_LANGUAGES], required=False)
    can_read_now = forms.BooleanField(required=False, label="Can read for my center now")
