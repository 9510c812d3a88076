"""STUB: replaced by the pages work."""

from django.http import Http404


def reading_hours(request, **kwargs):
    raise Http404
