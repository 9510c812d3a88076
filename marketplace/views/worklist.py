"""STUB: replaced by the pages work."""

from django.http import Http404


def radiologist_worklist(request, **kwargs):
    raise Http404


def radiologist_worklist_rows(request, **kwargs):
    raise Http404


def offer_claim(request, **kwargs):
    raise Http404


def offer_decline(request, **kwargs):
    raise Http404


def assignment_open(request, **kwargs):
    raise Http404


def assignment_release(request, **kwargs):
    raise Http404
