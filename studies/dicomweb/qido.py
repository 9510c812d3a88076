"""DICOMweb QIDO-RS (stub: being written)."""

from django.http import HttpResponse


def search_series(request, **kwargs):
    return HttpResponse(status=501)


def search_all_series(request, **kwargs):
    return HttpResponse(status=501)


def search_study_instances(request, **kwargs):
    return HttpResponse(status=501)


def search_series_instances(request, **kwargs):
    return HttpResponse(status=501)


def search_all_instances(request, **kwargs):
    return HttpResponse(status=501)


