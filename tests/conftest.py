"""The shared cast of principals and helpers every test uses.

Cast: center admin, technologist, center finance, center viewer (all at ``center``); a
radiologist in ``group``; a patient; another center's admin; platform staff. PHI roles are
enrolled in TOTP so that they pass the MFA gate; ``secrets[...]`` holds their TOTP secrets.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Organization, User
from tests.factories import TEST_PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"} or os.environ.get("READROOM_REQUIRE_SERVICES") == "1"


def require_or_skip(available: bool, what: str) -> None:
    """Skip a test whose service is missing on a laptop; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available here (required in CI)")


@pytest.fixture
def postgres_only(db):
    require_or_skip(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")


class Exchanges:
    """The exchanges (round trips) Django's connection has with PostgreSQL, read off libpq's protocol trace:
    the server ends each one with a ReadyForQuery message."""

    def __init__(self) -> None:
        self.trace = ""

    @property
    def count(self) -> int:
        return self.trace.count("ReadyForQuery")


@pytest.fixture
def postgres_exchanges(postgres_only):
    """``with postgres_exchanges() as seen: ...`` then ``seen.count``."""
    import contextlib
    import tempfile

    from psycopg import pq

    @contextlib.contextmanager
    def trace():
        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        seen = Exchanges()
        with tempfile.TemporaryFile() as file:
            pgconn.trace(file.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            try:
                yield seen
            finally:
                if connection.connection is not None and connection.connection.pgconn is pgconn:
                    pgconn.untrace()
                file.seek(0)
                seen.trace = file.read().decode()
    return trace


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or ""
    require_or_skip(bool(path), "Debian's chromium")
    return path


@pytest.fixture(autouse=True)
def _fast_tests(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.DEMO_STUDIES = "small"
    # Tests never write into the developer's var/media: each test gets its own folder.
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def enroll_totp(user: User) -> str:
    secret = pyotp.random_base32()
    TOTP.activate(user, secret)
    return secret


@dataclass
class Cast:
    center: Organization
    other_center: Organization
    group: Organization
    platform: Organization
    users: dict[str, User] = field(default_factory=dict)
    totp_secrets: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> User:
        try:
            return self.users[name]
        except KeyError:
            raise AttributeError(name) from None


# principal name -> (organization attribute or None, roles)
CAST = {
    "center_admin": ("center", ["admin"]),
    "technologist": ("center", ["technologist"]),
    "center_finance": ("center", ["finance"]),
    "center_viewer": ("center", ["viewer"]),
    "radiologist": ("group", ["radiologist"]),
    "other_admin": ("other_center", ["admin"]),
    "platform_staff": ("platform", ["admin"]),
    "patient": (None, []),
}
PHI_PRINCIPALS = {"center_admin", "technologist", "radiologist", "other_admin", "platform_staff"}


@pytest.fixture
def cast(db) -> Cast:
    c = Cast(
        center=OrganizationFactory(name="Lakeside Imaging", slug="lakeside", region="TX"),
        other_center=OrganizationFactory(name="Harbor Radiology Center", slug="harbor", region="FL",
                                         time_zone="America/New_York"),
        group=OrganizationFactory(name="Night Hawk Readers", slug="nighthawk",
                                  kind=Organization.Kind.RADIOLOGY_GROUP, region="CA",
                                  time_zone="America/Los_Angeles"),
        platform=OrganizationFactory(name="ReadRoom Operations", slug="readroom-ops",
                                     kind=Organization.Kind.PLATFORM, region="DE", time_zone="America/New_York"),
    )
    for name, (org_attr, roles) in CAST.items():
        if org_attr is None:
            user = UserFactory(email=f"{name}@example.test", kind=User.Kind.PATIENT)
        else:
            user = MembershipFactory(user__email=f"{name}@example.test", organization=getattr(c, org_attr),
                                     roles=roles).user
        c.users[name] = user
        if name in PHI_PRINCIPALS:
            c.totp_secrets[name] = enroll_totp(user)
    return c


def mark_fresh_mfa(client: Client, user: User) -> None:
    """Record an MFA check just now in the client's session (what allauth writes after a TOTP code)."""
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )

    session = client.session
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "password", "at": time.time()},
        {"method": "mfa", "at": time.time(), "type": "totp"},
    ]
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
    session.save()


@pytest.fixture
def login():
    """``login(user)`` → a Django test client signed in as that user (MFA already passed)."""

    def _login(user: User | None, *, api: bool = False, fresh_mfa: bool = True):
        client = APIClient() if api else Client()
        if user is not None:
            client.force_login(user)
            if fresh_mfa and Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
                mark_fresh_mfa(client, user)
        return client

    return _login


@pytest.fixture
def totp_code():
    def _code(secret: str) -> str:
        return pyotp.TOTP(secret).now()

    return _code


__all__ = ["TEST_PASSWORD", "Cast", "enroll_totp", "mark_fresh_mfa", "require_or_skip"]
