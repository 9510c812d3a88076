"""Access declarations for the routes that have no domain of their own."""

from core.access import Access

ROUTES: dict[str, Access] = {
    "healthz": Access.PUBLIC,  # status words only, no data; load balancers call it unauthenticated
    "api_schema": Access.PUBLIC,  # the shape of the API, no data
    "api_docs": Access.PUBLIC,
    "api_redoc": Access.PUBLIC,
    "favicon": Access.PUBLIC,  # a redirect to the static icon
}
