"""The accounts REST API under /api/v1/: thin views over accounts' selectors and services.

Every view derives from ``accounts.api_base.ActorAPIView`` (actor, MFA gate, scoped querysets).
Importing the package registers the Bearer scheme with drf-spectacular (``schema.py``).
"""

from accounts.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
