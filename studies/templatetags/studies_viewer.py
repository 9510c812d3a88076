"""``{% viewer_url study_uid %}``: the address that opens a study in the OHIF Viewer."""

from urllib.parse import urlencode

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def viewer_url(study_instance_uid: str) -> str:
    return reverse("viewer_app_route", args=["viewer"]) + "?" + urlencode({"StudyInstanceUIDs": study_instance_uid})
