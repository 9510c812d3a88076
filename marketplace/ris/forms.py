"""The form of a center's HL7 interface page (shape only: the rules are ``marketplace.ris.interfaces``)."""

from __future__ import annotations

from django import forms

from accounts.forms import ApplicationErrorFormMixin


class InterfaceForm(ApplicationErrorFormMixin, forms.Form):
    sending_application = forms.CharField(max_length=180, label="Sending application (MSH-3)")
    sending_facility = forms.CharField(max_length=180, label="Sending facility (MSH-4)")
    allowed_hosts = forms.CharField(required=False, label="Allowed hosts",
                                    help_text="IP addresses or networks, one a line; empty: any host.",
                                    widget=forms.Textarea(attrs={"rows": 3}))
    outbound_host = forms.CharField(max_length=255, required=False, label="Reports to: host",
                                    help_text="Where signed reports go as ORU^R01 over MLLP; empty: nowhere.")
    outbound_port = forms.IntegerField(required=False, min_value=1, max_value=65535, label="Reports to: port")
    active = forms.BooleanField(required=False, initial=True)

    def hosts(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("allowed_hosts", "").splitlines() if line.strip()]
