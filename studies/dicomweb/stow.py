"""DICOMweb STOW-RS (stub: being written)."""

from django.http import HttpResponse


def studies_collection(request, **kwargs):
    return HttpResponse(status=501)


def study_resource(request, **kwargs):
    return HttpResponse(status=501)


