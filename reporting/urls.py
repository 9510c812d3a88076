"""Reporting pages. Each area's module lists its own routes; access rules are in ``reporting.policy.ROUTES``."""

from reporting.views import center, critical, messages, patient, share, templates, workspace

urlpatterns = [*workspace.urlpatterns, *center.urlpatterns, *critical.urlpatterns, *messages.urlpatterns,
               *templates.urlpatterns, *patient.urlpatterns, *share.urlpatterns]
