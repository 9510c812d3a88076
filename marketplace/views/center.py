"""STUB: replaced by the pages work."""

from django.http import Http404


def read_request_list(request, **kwargs):
    raise Http404


def read_request_rows(request, **kwargs):
    raise Http404


def read_request_create(request, **kwargs):
    raise Http404


def read_request_detail(request, **kwargs):
    raise Http404


def read_request_cancel(request, **kwargs):
    raise Http404


def read_request_explain(request, **kwargs):
    raise Http404
