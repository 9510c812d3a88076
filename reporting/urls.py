"""Reporting pages. Each area's module lists its own routes; access rules are in ``reporting.policy.ROUTES``."""

from reporting.api import fhir as fhir_api  # /fhir/DiagnosticReport (issue 23): FHIR's own paths, not /api/v1
from reporting.views import (
    center,
    critical,
    messages,
    patient,
    quality,
    quality_settings,
    quality_stats,
    share,
    templates,
    workspace,
)

urlpatterns = [*workspace.urlpatterns, *center.urlpatterns, *critical.urlpatterns, *messages.urlpatterns,
               *templates.urlpatterns, *patient.urlpatterns, *share.urlpatterns,
               *quality_stats.urlpatterns, *quality.urlpatterns, *quality_settings.urlpatterns]
urlpatterns += fhir_api.urlpatterns
