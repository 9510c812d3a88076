"""Response headers that hold for every page."""

from django.conf import settings

# htmx and our own scripts are served from /static; nothing inline, nothing third-party.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self' blob:; font-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(("/api/docs", "/admin/")):
            response.headers.setdefault("Content-Security-Policy", getattr(settings, "CONTENT_SECURITY_POLICY", _CSP))
        return response
