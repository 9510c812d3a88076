"""DICOMweb WADO-RS (stub: being written)."""

from django.http import HttpResponse


def study_metadata(request, **kwargs):
    return HttpResponse(status=501)


def study_rendered(request, **kwargs):
    return HttpResponse(status=501)


def study_thumbnail(request, **kwargs):
    return HttpResponse(status=501)


def series_retrieve(request, **kwargs):
    return HttpResponse(status=501)


def series_metadata(request, **kwargs):
    return HttpResponse(status=501)


def series_rendered(request, **kwargs):
    return HttpResponse(status=501)


def series_thumbnail(request, **kwargs):
    return HttpResponse(status=501)


def instance_retrieve(request, **kwargs):
    return HttpResponse(status=501)


def instance_metadata(request, **kwargs):
    return HttpResponse(status=501)


def instance_rendered(request, **kwargs):
    return HttpResponse(status=501)


def instance_thumbnail(request, **kwargs):
    return HttpResponse(status=501)


def instance_frames(request, **kwargs):
    return HttpResponse(status=501)


def frames_rendered(request, **kwargs):
    return HttpResponse(status=501)


def instance_bulkdata(request, **kwargs):
    return HttpResponse(status=501)


