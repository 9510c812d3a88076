"""STUB: replaced by the pages work."""

from django.http import Http404


def center_marketplace_settings(request, **kwargs):
    raise Http404
