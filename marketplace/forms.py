"""Marketplace page forms: the shape of the input only. The rules (who may, what is allowed) live in the services."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django import forms

from accounts.credentials.vocab import Subspecialty
from accounts.forms import ApplicationErrorFormMixin
from accounts.models import Organization, RadiologistProfile
from marketplace.models import Audience, Kind, Priority, ReadRequest, Status
from marketplace.services.profile import TAT_FIELDS
from marketplace.template_choices import templates_for

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SLOTS_PER_DAY = 2


class ErrorsMixin(ApplicationErrorFormMixin):
    """A service error naming a field of the form goes on that field; any other shows its whole message on top
    (e.g. "This read request is reported: it can no longer be cancelled." rather than "status")."""

    def add_application_error(self, exc) -> None:
        if set(exc.fields or {}) & set(self.fields):
            super().add_application_error(exc)
        else:
            self.add_error(None, exc.message)


class ProfileChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: RadiologistProfile) -> str:
        return obj.name


class ProfileMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: RadiologistProfile) -> str:
        return obj.name


def radiologists():
    """The directory of radiologists (active accounts), by name."""
    return RadiologistProfile.objects.filter(user__is_active=True).select_related("user").order_by(
        "user__full_name", "pk")


def radiology_groups():
    return Organization.objects.filter(kind=Organization.Kind.RADIOLOGY_GROUP).order_by("name")


class ReadRequestForm(ErrorsMixin, forms.Form):
    """What a center says when it asks for one or several studies to be read."""

    # A peer review is posted by the sampling, never by hand.
    kind = forms.ChoiceField(choices=[c for c in Kind.choices if c[0] != Kind.PEER_REVIEW], initial=Kind.PRIMARY)
    levels = forms.TypedChoiceField(choices=[(1, "One reader"), (2, "Two levels: a second reader signs before it is "
                                                                    "final")],
                                    coerce=int, initial=1, required=False, label="Levels")
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.ROUTINE)
    subspecialty = forms.ChoiceField(choices=[("", "Any")] + list(Subspecialty.choices), required=False,
                                     label="Required subspecialty")
    clinical_history = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=4000)
    reason_for_exam = forms.CharField(required=False, max_length=500)
    comparison_studies = forms.ModelMultipleChoiceField(
        queryset=ReadRequest.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The same patient's other studies at this center.")
    special_instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)
    audience = forms.ChoiceField(choices=Audience.choices, initial=Audience.MARKETPLACE, widget=forms.RadioSelect)
    preferred_radiologists = ProfileMultipleChoiceField(queryset=RadiologistProfile.objects.none(), required=False,
                                                        widget=forms.SelectMultiple(attrs={"size": 6}))
    preferred_groups = forms.ModelMultipleChoiceField(queryset=Organization.objects.none(), required=False,
                                                      widget=forms.SelectMultiple(attrs={"size": 4}))
    widen_after = forms.CharField(required=False, max_length=10, initial="60", label="Widen to the marketplace after",
                                  help_text='Minutes, or "never" (empty: never).')
    direct_radiologist = ProfileChoiceField(queryset=RadiologistProfile.objects.none(), required=False,
                                            empty_label="—")
    direct_group = forms.ModelChoiceField(queryset=Organization.objects.none(), required=False, empty_label="—")
    original_request = forms.ModelChoiceField(queryset=ReadRequest.objects.none(), required=False,
                                              to_field_name="public_id", empty_label="—", label="Overread of",
                                              help_text="An earlier reported read of this study (overread or "
                                                        "second opinion).")

    def __init__(self, *args, comparison_queryset=None, original_queryset=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["preferred_radiologists"].queryset = radiologists()
        self.fields["direct_radiologist"].queryset = radiologists()
        self.fields["preferred_groups"].queryset = radiology_groups()
        self.fields["direct_group"].queryset = radiology_groups()
        if comparison_queryset is None:
            del self.fields["comparison_studies"]
        else:
            self.fields["comparison_studies"].queryset = comparison_queryset
            self.fields["comparison_studies"].label_from_instance = (
                lambda s: f"{s.study_date or 'no date'} · {s.study_description or 'no description'} "
                          f"· {'/'.join(s.modalities) or '—'}")
        if original_queryset is None:
            del self.fields["original_request"]
        else:
            self.fields["original_request"].queryset = original_queryset
            self.fields["original_request"].label_from_instance = (
                lambda r: f"{r.get_kind_display()} reported {r.reported_at:%Y-%m-%d}" if r.reported_at
                else r.get_kind_display())

    def clean_widen_after(self) -> int | None:
        value = (self.cleaned_data.get("widen_after") or "").strip().lower()
        if value in ("", "never"):
            return None
        if not value.isdigit():
            raise forms.ValidationError('Enter whole minutes or "never".')
        return int(value)


class ReasonForm(ErrorsMixin, forms.Form):
    """A reason: to cancel a request, decline an offer or give a read back."""

    reason = forms.CharField(max_length=500, required=True, error_messages={"required": "Say why."})


class DeclineForm(ErrorsMixin, forms.Form):
    reason = forms.CharField(max_length=500, required=False)


class RequestFilterForm(forms.Form):
    """Filters of the center's worklist."""

    status = forms.ChoiceField(choices=[("", "All states"), ("active", "Active")] + list(Status.choices),
                               required=False, label="State")
    priority = forms.ChoiceField(choices=[("", "All priorities")] + list(Priority.choices), required=False)
    modality = forms.CharField(required=False, max_length=8)

    def values(self) -> dict:
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v}


class WhyNotForm(forms.Form):
    radiologist = ProfileChoiceField(queryset=RadiologistProfile.objects.none(), label="Why not",
                                     empty_label="Pick a radiologist")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["radiologist"].queryset = radiologists()


# --- a radiologist's reading hours ---------------------------------------------------------------------

class ReadingHoursForm(ErrorsMixin, forms.Form):
    """Up to two windows a weekday, in the radiologist's own zone. An end at or before the start is the next day."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day in range(7):
            for slot in range(SLOTS_PER_DAY):
                for edge in ("start", "end"):
                    self.fields[f"d{day}_{slot}_{edge}"] = forms.TimeField(
                        required=False, label=f"{WEEKDAYS[day]} {edge}",
                        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    @staticmethod
    def initial_from(rows) -> dict:
        initial, used = {}, {}
        for row in rows:
            slot = used.get(row.weekday, 0)
            if slot >= SLOTS_PER_DAY:
                continue
            used[row.weekday] = slot + 1
            initial[f"d{row.weekday}_{slot}_start"] = row.starts
            initial[f"d{row.weekday}_{slot}_end"] = row.ends
        return initial

    def rows(self):
        """(weekday label, [(start field, end field) per slot]) for the template."""
        return [(WEEKDAYS[d], [(self[f"d{d}_{s}_start"], self[f"d{d}_{s}_end"]) for s in range(SLOTS_PER_DAY)])
                for d in range(7)]

    def clean(self):
        data = super().clean()
        windows = []
        for day in range(7):
            for slot in range(SLOTS_PER_DAY):
                start, end = data.get(f"d{day}_{slot}_start"), data.get(f"d{day}_{slot}_end")
                if start is None and end is None:
                    continue
                if start is None or end is None:
                    self.add_error(f"d{day}_{slot}_{'start' if start is None else 'end'}",
                                   f"{WEEKDAYS[day]}: give both a start and an end.")
                    continue
                windows.append((day, start, end))
        data["windows"] = windows
        return data


class TimeOffForm(ErrorsMixin, forms.Form):
    """Time off entered in the radiologist's zone; cleaned to aware datetimes (stored in UTC by the service)."""

    starts_at = forms.DateTimeField(label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                    input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    ends_at = forms.DateTimeField(label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                  input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    note = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, zone: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = ZoneInfo(zone)

    def _in_zone(self, value: datetime | None) -> datetime | None:
        # The fields parse in the page's zone (the user's); the stretch is meant in the reader's own zone.
        return None if value is None else value.replace(tzinfo=None).replace(tzinfo=self.zone)

    def clean(self):
        data = super().clean()
        data["starts_at"] = self._in_zone(data.get("starts_at"))
        data["ends_at"] = self._in_zone(data.get("ends_at"))
        return data


class MinimumRatesForm(ErrorsMixin, forms.Form):
    """A grid of minimum rates in cents: a row per modality the radiologist reads, a column per priority."""

    def __init__(self, *args, modalities: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.modalities = modalities
        for modality in modalities:
            for priority in Priority.values:
                self.fields[f"rate_{modality}_{priority}"] = forms.IntegerField(
                    required=False, min_value=0, max_value=1_000_000, label=f"{modality} {priority}",
                    widget=forms.NumberInput(attrs={"step": 1, "placeholder": "none"}))

    def rows(self):
        return [(m, [self[f"rate_{m}_{p}"] for p in Priority.values]) for m in self.modalities]

    def rates(self) -> dict[tuple[str, str], int | None]:
        return {(m, p): self.cleaned_data.get(f"rate_{m}_{p}") for m in self.modalities for p in Priority.values}


class TimeOffRemoveForm(forms.Form):
    time_off = forms.IntegerField(min_value=1)


# --- a center's marketplace settings -------------------------------------------------------------------

class CenterSettingsForm(ErrorsMixin, forms.Form):
    stat_minutes = forms.IntegerField(min_value=5, label="STAT (minutes)")
    urgent_minutes = forms.IntegerField(min_value=5, label="Urgent (minutes)")
    routine_minutes = forms.IntegerField(min_value=5, label="Routine (minutes)")
    second_opinion_minutes = forms.IntegerField(min_value=5, label="Second opinion (minutes)")
    preferred_widen_minutes = forms.IntegerField(
        min_value=0, required=False, label="Widen after (minutes)",
        help_text="How long preferred readers have alone; empty: 25 % of the time to the deadline.")
    preferred_radiologists = ProfileMultipleChoiceField(queryset=RadiologistProfile.objects.none(), required=False,
                                                        widget=forms.SelectMultiple(attrs={"size": 8}))
    blocked_radiologists = ProfileMultipleChoiceField(queryset=RadiologistProfile.objects.none(), required=False,
                                                      widget=forms.SelectMultiple(attrs={"size": 8}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["preferred_radiologists"].queryset = radiologists()
        self.fields["blocked_radiologists"].queryset = radiologists()

    @staticmethod
    def initial_from(row) -> dict:
        return {**{name: getattr(row, name) for name in (*TAT_FIELDS, "preferred_widen_minutes")},
                "preferred_radiologists": list(row.preferred_radiologists.all()),
                "blocked_radiologists": list(row.blocked_radiologists.all())}



class OverflowRuleForm(ErrorsMixin, forms.Form):
    """An overflow rule (issue 18) as typed; the service validates the values and names the field it refuses."""

    trigger = forms.ChoiceField(label="Post a study when", choices=[
        ("hours", "it arrives in given hours"), ("unread", "nobody read it locally within N minutes"),
        ("backlog", "the unread backlog exceeds N studies")])
    modality = forms.CharField(required=False, max_length=16, help_text="e.g. CT; empty: any modality.")
    starts = forms.CharField(required=False, label="From (HH:MM)", max_length=8)
    ends = forms.CharField(required=False, label="To (HH:MM)", max_length=8,
                           help_text="At or before the start: the next day (22:00 to 07:00 is one night).")
    weekdays = forms.MultipleChoiceField(required=False, choices=list(enumerate(WEEKDAYS)),
                                         widget=forms.CheckboxSelectMultiple, help_text="None ticked: every day.")
    minutes = forms.CharField(required=False, label="N minutes", max_length=10)
    backlog = forms.CharField(required=False, label="N studies", max_length=10)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.ROUTINE)
    audience = forms.ChoiceField(choices=[("preferred", "Contract readers first, then everyone eligible"),
                                          ("marketplace", "Every eligible reader at once")])
    template = forms.ChoiceField(required=False, label="Template to use",
                                 help_text="The report template the reader's draft opens on; automatic: chosen "
                                           "by modality and body part.")

    def __init__(self, *args, center: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "Automatic"), *((str(pk), name) for pk, name in templates_for(center))]
