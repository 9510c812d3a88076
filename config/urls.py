"""URL wiring only. Every route's access rule lives in its app's policy (see tests/test_route_policy.py)."""

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.api import error_body
from core.views import favicon, healthz
from studies import viewer_views

urlpatterns = [
    # First: routes are tried in order, and DICOMweb takes most requests (a viewer makes hundreds per study).
    path("dicomweb/", include("studies.dicomweb.urls")),
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("marketplace.api_urls")),
    path("api/v1/", include("reporting.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # GET only: OPTIONS would render DRF's description through the page template and answer 500.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema", http_method_names=["get", "head"]),
         name="api_docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
    path("studies/", include("studies.urls")),
    path("my/", include("studies.patient_urls")),  # a patient's own images
    path("", include("marketplace.urls")),
    path("", include("reporting.urls")),
    path("", include("billing.urls")),
    path("", include("billing.page_urls")),
    # The OHIF Viewer (docs/decisions/0004): its shell under /viewer/, its configuration at the root,
    # where the prebuilt bundle looks for it; its other files are served by WhiteNoise.
    path("viewer/", viewer_views.viewer_app, name="viewer_app"),
    path("viewer/<path:route>", viewer_views.viewer_app, name="viewer_app_route"),
    path("app-config.js", viewer_views.viewer_app_config, name="viewer_app_config"),
    path("viewer-sw.js", viewer_views.viewer_service_worker, name="viewer_service_worker"),
    path("init-service-worker.js", viewer_views.viewer_init_service_worker, name="viewer_init_service_worker"),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
]


def handler404(request, exception):
    """A path no route matches (e.g. an id that is no UUID): API clients get the API's error format, not a page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)
