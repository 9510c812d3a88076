"""STUB: replaced by the pages work."""

from django.http import Http404


def ops_reads(request, **kwargs):
    raise Http404


def ops_reads_rows(request, **kwargs):
    raise Http404
