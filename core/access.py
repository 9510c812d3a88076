"""The vocabulary every app's policy uses to declare who may reach each of its routes.

Each app's ``policy.ROUTES`` maps URL names to one of these. The declaration is not what enforces
access (selectors and policy functions do that); it is what the route-coverage and access-matrix
tests hold the behaviour to, so that a new route without a declared rule fails the suite, and a
declaration weaker than what the route does fails tests/test_access_matrix.py (``ADMITS`` there says
which principals each level lets through).
"""

from enum import Enum


class Access(Enum):
    PUBLIC = "public"  # anyone, signed in or not (sign-in pages, health check, API schema)
    AUTHENTICATED = "authenticated"  # any signed-in person (their own data only)
    ORG_MEMBER = "org_member"  # members of the organization in the URL (or the active one)
    ORG_ADMIN = "org_admin"  # admins of that organization
    # Platform people act by their role in the platform organization, never by being staff alone.
    PLATFORM_OVERSIGHT = "platform_oversight"  # platform operations and platform finance (audit, money)
    PLATFORM_OPERATIONS = "platform_operations"  # platform operations only (the admin role): break-glass, verification
    PLATFORM_STAFF = "platform_operations"  # the former name of PLATFORM_OPERATIONS (an alias)
    TOKEN = "token"  # noqa: S105 - anyone holding a valid single-use link (invitations)
