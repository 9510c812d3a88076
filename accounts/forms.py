"""Page forms: they check the shape of the input; the rules live in services and policy."""

from __future__ import annotations

from django import forms

from accounts.models import TIME_ZONE_CHOICES, Role
from accounts.services import ASSIGNABLE_KEY_ROLES
from core.errors import ApplicationError


class ApplicationErrorFormMixin:
    """Show a service's ApplicationError on the form: field messages on their fields, the rest on top."""

    def add_application_error(self, exc: ApplicationError) -> None:
        placed = False
        for name, messages in (exc.fields or {}).items():
            target = name if name in self.fields else None
            for message in messages:
                self.add_error(target, message)
                placed = True
        if not placed:
            self.add_error(None, exc.message)


class OrganizationSwitchForm(forms.Form):
    organization = forms.UUIDField()
    next = forms.CharField(required=False, max_length=500)


class MemberRolesForm(ApplicationErrorFormMixin, forms.Form):
    roles = forms.MultipleChoiceField(
        choices=Role.choices, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one role."},
        help_text="Admins manage members, invitations and API keys. Admin, technologist and radiologist "
                  "roles see patient data and must use two-factor authentication.")


class InvitationCreateForm(ApplicationErrorFormMixin, forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off",
                                                                           "placeholder": "name@example.com"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.TECHNOLOGIST)


_KEY_ROLE_CHOICES = [(value, label) for value, label in Role.choices if value in ASSIGNABLE_KEY_ROLES]


class ApiKeyCreateForm(ApplicationErrorFormMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. “PACS gateway, room 2”.")
    roles = forms.MultipleChoiceField(
        choices=_KEY_ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, initial=[Role.TECHNOLOGIST],
        error_messages={"required": "Choose at least one role."},
        help_text="The key acts for this organization with these roles only.")


TOKEN_LIFETIME_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "No expiry")]


class PersonalTokenCreateForm(ApplicationErrorFormMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="Where you will use it, e.g. “reporting scripts”.")
    expires_in_days = forms.TypedChoiceField(
        label="Expires after", choices=TOKEN_LIFETIME_CHOICES, coerce=int, empty_value=None, required=False,
        initial="90")


class InvitationRegisterForm(ApplicationErrorFormMixin, forms.Form):
    full_name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text="At least 10 characters; not a common password.")
    password_again = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return cleaned


class ProfileForm(ApplicationErrorFormMixin, forms.Form):
    full_name = forms.CharField(max_length=200, required=False, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    time_zone = forms.ChoiceField(choices=TIME_ZONE_CHOICES,
                                  help_text="Every date and time in ReadRoom is shown in this zone.")


class SignupForm(forms.Form):
    """Extra sign-up fields (allauth adds email and password): who is signing up."""

    ACCOUNT_TYPES = [("patient", "A patient: I want a second opinion on my own images"),
                     ("radiologist", "A radiologist: I want to read studies on ReadRoom")]

    account_type = forms.ChoiceField(choices=ACCOUNT_TYPES, initial="patient", widget=forms.RadioSelect,
                                     label="I am", required=False)  # absent means patient
    full_name = forms.CharField(max_length=200, label="Full name", required=False,
                                help_text="Radiologists: as on your medical license.")
    country = forms.CharField(max_length=2, initial="US", required=False, label="Country of practice",
                              help_text="Radiologists: two-letter code, e.g. US.")

    field_order = ["account_type", "full_name", "email", "password1", "password2", "country"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("account_type") == "radiologist":
            if not (cleaned.get("full_name") or "").strip():
                self.add_error("full_name", "Enter your full name as licensed.")
            country = (cleaned.get("country") or "").strip().upper()
            if len(country) != 2 or not country.isalpha():
                self.add_error("country", "Use the two-letter country code, e.g. US.")
        return cleaned

    def signup(self, request, user) -> None:
        """Called by allauth once the user exists (before email verification)."""
        from accounts import services

        if self.cleaned_data.get("account_type") == "radiologist":
            services.independent_radiologist_register(user=user, full_name=self.cleaned_data["full_name"],
                                                      country=self.cleaned_data.get("country") or "US",
                                                      request=request)
        elif self.cleaned_data.get("full_name"):
            user.full_name = self.cleaned_data["full_name"].strip()
            user.save(update_fields=["full_name"])
