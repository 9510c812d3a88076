"""STUB: replaced by the webhooks work."""

from django.http import Http404



def webhook_create(request, **kwargs):
    raise Http404


def webhook_delete(request, **kwargs):
    raise Http404


def webhook_test(request, **kwargs):
    raise Http404
