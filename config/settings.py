"""ReadRoom settings: one module, read from environment variables.

Defaults run on a laptop with nothing installed (SQLite, local files, eager Celery, console
email, Stripe off). Production is switched on by values alone: ``DJANGO_ENV=production`` plus a
real ``SECRET_KEY``, ``DATABASE_URL``, ``REDIS_URL`` and the storage/email variables. The README
has a table of every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("READROOM_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name: str, default: str = "") -> str:
    """A string variable; ``NAME_FILE`` (a path to a secret file) wins over ``NAME``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Strict boolean parsing: anything but the listed words is a configuration error."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DJANGO_ENV = os.environ.get("DJANGO_ENV", "development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'development' or 'production'")
PRODUCTION = DJANGO_ENV == "production"

_DEV_SECRET_KEY = "dev-insecure-readroom-secret-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET_KEY)
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_SECRET_KEY or "insecure" in SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DJANGO_ENV=production"
    )

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "core",
    "accounts",
    "studies",
    "billing",
    "marketplace",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionSecurityMiddleware",
    "accounts.middleware.ActiveOrganizationMiddleware",
    "accounts.middleware.MfaEnrollmentMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.ProductErrorPagesMiddleware",  # our 404/403 pages in development too
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
                "studies.context_processors.navigation",
            ],
        },
    },
]

# --- Database: SQLite file under var/ unless DATABASE_URL names a server ---------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if PRODUCTION and not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database when DJANGO_ENV=production")
DATABASES = {
    # Connections are kept for an hour (each keeps its prepared statements) and checked before reuse.
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=3600, conn_health_checks=True)
    if DATABASE_URL
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "readroom.sqlite3",
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "core.postgresql"  # Django's, with a health check without a round trip
    # Parameters bound by the server, and a statement prepared the second time a connection runs it
    # (Django leaves psycopg's preparing off unless asked): PostgreSQL then skips parsing and, after five
    # runs, planning: 0.28 ms of a 0.35 ms study lookup, which every DICOMweb request does. A statement run
    # once is not prepared (docs/decisions/0006).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 1})
    # No JIT: our queries are short, and compiling one costs more than running it (matching's profiles query
    # crossed jit_above_cost at ~3,500 readers in one state and spent ~200 ms compiling: bench/README.md).
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Records of reads of patient data (searches, views, retrieves) are committed before the data leaves but,
# on PostgreSQL, without waiting for their WAL flush; true makes them wait like every other audit event
# (docs/decisions/0007).
AUDIT_PHI_READS_DURABLE = env_bool("AUDIT_PHI_READS_DURABLE", False)

# --- Cache (login throttling, rate limits): Redis when configured, else per-process memory ----
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "readroom"}
}

# --- Auth ---------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"

ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupForm"  # patient or independent radiologist
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[ReadRoom] "
# Throttling and lockout: after LOGIN_FAILURE_LIMIT failures for one account (or 4x that from
# one IP) inside LOGIN_LOCKOUT_MINUTES, further attempts are refused until the window passes.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"{LOGIN_FAILURE_LIMIT * 4}/{LOGIN_LOCKOUT_MINUTES}m/ip,"
    f"{LOGIN_FAILURE_LIMIT}/{LOGIN_LOCKOUT_MINUTES}m/key",
    "login": "60/m/ip",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "ReadRoom"
MFA_ADAPTER = "accounts.adapters.MfaAdapter"

# Roles that touch patient data must enroll in MFA and get an idle timeout.
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 15 * 60)
SESSION_ABSOLUTE_TIMEOUT_SECONDS = env_int("SESSION_ABSOLUTE_TIMEOUT_SECONDS", 12 * 60 * 60)
FRESH_MFA_SECONDS = env_int("FRESH_MFA_SECONDS", 5 * 60)
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 7)

SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- Security headers (strict in production) ----------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", PRODUCTION) else None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- i18n / time: stored in UTC, shown in the user's zone ---------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"

S3_BUCKET = os.environ.get("S3_BUCKET", "")
if PRODUCTION and not S3_BUCKET:
    raise ImproperlyConfigured("S3_BUCKET must be set when DJANGO_ENV=production (PHI lives in private storage)")
_default_storage = (
    {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": os.environ.get("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "region_name": os.environ.get("S3_REGION") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": 300,  # signed URLs live 5 minutes at most
            "signature_version": "s3v4",
            "file_overwrite": False,
            # Reads of large DICOM files spill to a temporary file instead of sitting in memory.
            "max_memory_size": 8 * 1024 * 1024,
        },
    }
    if S3_BUCKET
    else {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}}
)
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Email --------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "ReadRoom <no-reply@readroom.local>")

# --- Celery: eager in-process by default, Redis broker when CELERY_BROKER_URL/REDIS_URL is set --
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 60 * 60}
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Stripe (off unless a key is set) -----------------------------------------------------------
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# Tests and the demo point the official SDK at a local fake (billing/fake_stripe/); empty: api.stripe.com.
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 30)
# The SDK's own retries (same idempotency key); a transfer still failing is retried by the next run.
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerSecretAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_METADATA_CLASS": "accounts.api.metadata.ReadRoomMetadata",  # OPTIONS on a bodiless action: no 500
    "DEFAULT_THROTTLE_RATES": {"anon": "60/min", "user": "600/min"},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ReadRoom API",
    "DESCRIPTION": "Teleradiology marketplace API. Authenticate with the session or `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc are served from the installed sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"RoleEnum": "accounts.models.Role", "TimeZoneEnum": "accounts.models.TIME_ZONE_CHOICES"},
    "COMPONENT_SPLIT_REQUEST": True,
    # The error answers that follow from an operation's shape (400, 401, 403, 404), declared once (issue 20).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.declare_common_errors"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler on "django" would print each record a second time beside the root's
        # ("Watching for file changes", "Not Found: ..."): its records go to the root's handler only.
        "django": {"handlers": [], "level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # OpenJPEG's encoder logs "tile number 1 / 1" at INFO for every frame it compresses (the demo load).
        "openjpeg": {"level": "WARNING"},
        # Stripe's SDK logs every request at INFO (method, path, idempotency key): noise beside our own records.
        "stripe": {"level": "WARNING"},
    },
}

# --- DICOM ingest and DICOMweb ------------------------------------------------------------------
DICOM_MAX_FILE_BYTES = env_int("DICOM_MAX_FILE_MB", 2048) * 1024 * 1024  # one instance
DICOM_MAX_UPLOAD_BYTES = env_int("DICOM_MAX_UPLOAD_MB", 4096) * 1024 * 1024  # one request (STOW body, zip)
DICOM_ZIP_MAX_ENTRIES = env_int("DICOM_ZIP_MAX_ENTRIES", 20000)
# Zip expansion (studies/archive.py): the most one archive may expand to, and the largest expansion ratio
# (expanded / compressed) an archive or one entry may have once it expands past the ratio floor. Images
# deflate 2-20x; a zip bomb thousands of times.
DICOM_ZIP_MAX_EXPANDED_BYTES = env_int("DICOM_ZIP_MAX_EXPANDED_MB", 4096) * 1024 * 1024
DICOM_ZIP_MAX_RATIO = env_int("DICOM_ZIP_MAX_RATIO", 100)
DICOM_ZIP_RATIO_FLOOR_BYTES = env_int("DICOM_ZIP_RATIO_FLOOR_MB", 1) * 1024 * 1024
DICOM_GATEWAY_PORT = env_int("DICOM_GATEWAY_PORT", 11112)
BREAK_GLASS_MINUTES = env_int("BREAK_GLASS_MINUTES", 60)  # how long one emergency access to a study lasts
STUDY_RETENTION_DAYS = env_int("STUDY_RETENTION_DAYS", 30)  # soft-deleted studies are purged after this
DEMO_STUDIES = env_str("DEMO_STUDIES", "full")  # load_demo: full, small (tiny images) or none

# --- Diagnostic viewer: the OHIF Viewer, pinned, installed from the npm registry at set-up -----------
# docs/decisions/0004: its files are served at the site root by WhiteNoise (the bundle asks for /…),
# its pages under /viewer/ by Django (login, policy, audit); nothing from OHIF is committed.
VIEWER_OHIF_VERSION = "3.13.2"
VIEWER_OHIF_INTEGRITY = (  # npm's dist.integrity of that version: the tarball is checked against it
    "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
)
VIEWER_DIR = Path(os.environ.get("VIEWER_DIR", VAR_DIR / "viewer"))
VIEWER_ROOT = VIEWER_DIR / f"ohif-{VIEWER_OHIF_VERSION}"
# WhiteNoise reads the folder when it starts: set only once `manage.py install_viewer` has made it.
WHITENOISE_ROOT = str(VIEWER_ROOT / "public") if (VIEWER_ROOT / "public").is_dir() else None
# Content-hashed names (ours: 12 hex digits; OHIF's bundles: 16) are cached for a year.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^(?:.*[/.-])?[0-9a-f]{12,20}\.[A-Za-z0-9]+$"

# --- Credentialing (accounts.credentials) -------------------------------------------------------
CREDENTIAL_DOCUMENT_MAX_BYTES = env_int("CREDENTIAL_DOCUMENT_MAX_MB", 10) * 1024 * 1024
MQSA_ATTESTATION_VALID_DAYS = env_int("MQSA_ATTESTATION_VALID_DAYS", 365)  # continuing experience re-attested yearly

# --- Marketplace (marketplace/) ---------------------------------------------------------------------
# How long a reader keeps full access to a study after the read's deadline or its closing.
READ_ACCESS_GRACE_DAYS = env_int("READ_ACCESS_GRACE_DAYS", 7)
# Webhooks to centers (marketplace/webhooks.py): per-request timeout, attempts before giving up, and whether
# endpoints may be plain http / point at private, loopback or link-local addresses (never in production by default).
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 10)
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", not PRODUCTION)

# --- Reporting delivery (reporting/services/delivery.py) ---------------------------------------------
# MSH-3 / MSH-4 of the HL7 v2 ORU^R01 messages that carry signed reports to the centers' RIS.
HL7_SENDING_APPLICATION = env_str("HL7_SENDING_APPLICATION", "READROOM")
HL7_SENDING_FACILITY = env_str("HL7_SENDING_FACILITY", "READROOM")
# Orders from a center's RIS (issue 23): how long a study at a center with an HL7 interface waits for its order
# before it is listed as "waiting for an order"; how long a report's MLLP send waits to connect or for its ACK.
RIS_ORDER_WAIT_MINUTES = env_int("RIS_ORDER_WAIT_MINUTES", 60)
HL7_OUTBOUND_TIMEOUT_SECONDS = env_int("HL7_OUTBOUND_TIMEOUT_SECONDS", 10)
# The MLLP listener's limits (marketplace/ris/listener.py): the longest message it buffers, how long a begun frame
# may take to complete, and how long a connection may sit idle between messages.
HL7_MAX_MESSAGE_BYTES = env_int("HL7_MAX_MESSAGE_BYTES", 1024 * 1024)
HL7_READ_TIMEOUT_SECONDS = env_int("HL7_READ_TIMEOUT_SECONDS", 30)
HL7_IDLE_TIMEOUT_SECONDS = env_int("HL7_IDLE_TIMEOUT_SECONDS", 600)

CELERY_BEAT_SCHEDULE = {
    # 05:30 UTC: before the US working day; expiry itself never waits for this (eligibility reads the dates).
    "credentials-daily": {"task": "accounts.credentials_daily", "schedule": crontab(hour=5, minute=30)},
    # Files and rows of studies soft-deleted more than STUDY_RETENTION_DAYS ago.
    "purge-deleted-studies": {"task": "studies.purge_deleted_studies", "schedule": crontab(hour=3, minute=15)},
    # Records the stop of emergency (break-glass) accesses that ran out; the access ends at its time regardless.
    "close-expired-break-glass": {"task": "studies.close_expired_break_glass", "schedule": crontab(minute="*/5")},
    # Webhook outbox rows still pending and due (a worker died between commit and send, or a retry is due).
    "marketplace-relay-webhooks": {"task": "marketplace.relay_webhooks", "schedule": crontab(minute="*")},
    # Offers to readers who came on shift, widening, escalation, expiry (idempotent).
    "marketplace-sla-tick": {"task": "marketplace.sla_tick", "schedule": crontab(minute="*")},
    # Critical results nobody acknowledged in time: center admins, then operations (idempotent).
    "reporting-critical-escalation": {"task": "reporting.escalate_critical_results", "schedule": crontab(minute="*")},
    # Peer review (issue 16): sample newly signed reports; signing never waits for it.
    "reporting-sample-peer-reviews": {"task": "reporting.sample_peer_reviews", "schedule": crontab(minute="*/5")},
    # Earnings not yet transferred to connected accounts (held ones when payouts got enabled); idempotent.
    "billing-run-transfers": {"task": "billing.run_transfers", "schedule": crontab(minute=7)},
    # Studies past RIS_ORDER_WAIT_MINUTES without their RIS order: the center's admins are told (issue 23).
    "marketplace-ris-unordered-studies": {"task": "marketplace.ris_unordered_studies",
                                          "schedule": crontab(minute="*/5")},
    # Overflow rules (issue 18): studies unread N minutes after arrival, backlogs past N (idempotent).
    "marketplace-overflow-tick": {"task": "marketplace.overflow_tick", "schedule": crontab(minute="*")},
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    **SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"],
    "VerificationStatusEnum": "accounts.credentials.models.VerificationStatus",
    "VerificationMethodEnum": "accounts.credentials.models.VerificationMethod",
    "PrivilegeStatusEnum": "accounts.credentials.models.PrivilegeStatus",
    # Read priorities and subspecialties appear in credentialing and in the marketplace: one name each.
    "PriorityEnum": "marketplace.models.Priority",
    "SubspecialtyEnum": "accounts.credentials.vocab.Subspecialty",
}
