"""The reporting REST API (included under /api/v1/)."""

from reporting.api import report

urlpatterns = [*report.urlpatterns]
