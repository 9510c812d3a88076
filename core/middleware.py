"""Response headers that hold for every page."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import Resolver404, get_resolver
from django.views.defaults import page_not_found, permission_denied

# htmx and our own scripts are served from /static; nothing inline, nothing third-party. Forms post to
# ourselves, and a "Pay" form's answer may redirect to Stripe Checkout's hosted page (Chromium holds a
# form's redirects to form-action): Stripe's, or the Stripe-protocol server STRIPE_API_BASE names.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self' blob:; font-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self' https://checkout.stripe.com{checkout}; frame-ancestors 'none'"
)


def _policy() -> str:
    configured = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    if configured:
        return configured
    base = urlsplit(getattr(settings, "STRIPE_API_BASE", "") or "")
    return _CSP.format(checkout=f" {base.scheme}://{base.netloc}" if base.scheme and base.netloc else "")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(("/api/docs", "/admin/")):
            response.headers.setdefault("Content-Security-Policy", _policy())
        return response


class ProductErrorPagesMiddleware:
    """With DEBUG on, a 404 or 403 shows the product's own page, as it does in production.

    Django's technical 404 page (which lists every URL pattern) would otherwise stand in for
    templates/404.html in development, so what a developer sees is not what a user sees. Set
    ``TECHNICAL_404 = True`` in settings to get Django's page back while debugging URL routing.
    Statuses are unchanged: a 404 stays a 404 (so ``APPEND_SLASH`` still redirects) and a 403 a 403.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._active():
            try:
                get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
            except Resolver404 as exc:
                return page_not_found(request, exc)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not self._active():
            return None
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        if isinstance(exception, PermissionDenied):
            return permission_denied(request, exception)
        return None

    @staticmethod
    def _active() -> bool:
        return settings.DEBUG and not getattr(settings, "TECHNICAL_404", False)
