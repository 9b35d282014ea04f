"""Every setting, read from the environment.

DJANGO_DEBUG=true is local development: safe defaults, SQLite unless DATABASE_URL is set, tasks in process
unless REDIS_URL is set. Anything else is production, which refuses to start without its secrets.
"""

import base64
import hashlib
from pathlib import Path

import dj_database_url

from coordinoter.env import env_bool, env_int, env_list, env_str, require

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

if not DEBUG:
    require(
        [
            "DJANGO_SECRET_KEY",
            "DJANGO_ALLOWED_HOSTS",
            "DATABASE_URL",
            "REDIS_URL",
            "TOKEN_ENCRYPTION_KEYS",
            "XERO_CLIENT_ID",
            "XERO_CLIENT_SECRET",
            "XERO_REDIRECT_URI",
            "XERO_WEBHOOK_KEY",
        ]
    )

# Development only: a fixed, public, worthless key so `make run` needs nothing. Production must set its own.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or "django-insecure-development-only-never-use-in-production"
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "organisations",
    "integrations",
    "invoices",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "coordinoter.middleware.RequestIdMiddleware",
    "coordinoter.middleware.RequestBoundsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "organisations.middleware.CurrentOrganisationMiddleware",
    "organisations.middleware.OrganisationTimezoneMiddleware",
    "organisations.mfa.middleware.StaffMfaMiddleware",
    "coordinoter.middleware.WriteRateLimitMiddleware",
    "coordinoter.middleware.SecurityHeadersMiddleware",
]

if not DEBUG:  # runserver serves static files in development
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "coordinoter.urls"
WSGI_APPLICATION = "coordinoter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "organisations.context_processors.portal",
                "integrations.context_processors.xero",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # `make run` on SQLite: the webhook inbox's covering index keeps its key columns there; the warning about the
    # INCLUDE columns SQLite ignores would only clutter the first thing a newcomer reads.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# Concurrent test runs on one PostgreSQL each get their own test database (the Makefile sets a unique name).
if env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # The cache may live in its own Redis database (CACHE_REDIS_URL), so clearing it never touches the broker.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_str("CACHE_REDIS_URL") or REDIS_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    # OWASP ASVS 4.0.3 V2.1.1: passwords a person sets are at least 12 characters (no upper limit of our own).
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["organisations.auth.EmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "organisations:home"
LOGOUT_REDIRECT_URL = "login"
# Guessing passwords: this many failures per email (or, higher, per client IP) inside the window locks that key out.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_IP_LIMIT = env_int("LOGIN_FAILURE_IP_LIMIT", 20)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)
# The staff second factor (organisations.mfa): failed codes per user and per address, and where it is demanded.
MFA_FAILURE_LIMIT = env_int("MFA_FAILURE_LIMIT", 5)
MFA_FAILURE_IP_LIMIT = env_int("MFA_FAILURE_IP_LIMIT", 20)
MFA_FAILURE_WINDOW_SECONDS = env_int("MFA_FAILURE_WINDOW_SECONDS", 900)
MFA_PROTECTED_PREFIXES = ("/admin/", "/support/")
# Password reset: requests per address asked for, and per client address, in the window (each sends an email).
PASSWORD_RESET_LIMIT = env_int("PASSWORD_RESET_LIMIT", 3)
PASSWORD_RESET_IP_LIMIT = env_int("PASSWORD_RESET_IP_LIMIT", 20)
PASSWORD_RESET_WINDOW_SECONDS = env_int("PASSWORD_RESET_WINDOW_SECONDS", 3600)
# Support requests per person in the window; and every signed-in write (POST, PUT, PATCH, DELETE) per person.
SUPPORT_REQUEST_LIMIT = env_int("SUPPORT_REQUEST_LIMIT", 5)
SUPPORT_REQUEST_WINDOW_SECONDS = env_int("SUPPORT_REQUEST_WINDOW_SECONDS", 600)
# People (issue 14): invitation links work once, for this long; the failure digest goes out at most this often;
# support opening a tenant's page checks its Xero connection at most once per this many seconds.
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 7 * 24)
FAILURE_DIGEST_SECONDS = env_int("FAILURE_DIGEST_SECONDS", 60 * 60)
SUPPORT_VERIFY_EVERY_SECONDS = env_int("SUPPORT_VERIFY_EVERY_SECONDS", 300)
WRITE_RATE_LIMIT = env_int("WRITE_RATE_LIMIT", 300)
WRITE_RATE_WINDOW_SECONDS = env_int("WRITE_RATE_WINDOW_SECONDS", 60)
# How many proxies we run in front of gunicorn, each appending to X-Forwarded-For. 0: REMOTE_ADDR is the client.
# Behind a proxy REMOTE_ADDR is the proxy, and one guesser would lock every person out; never count a proxy we do
# not run (the client could then pick its own address).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

LANGUAGE_CODE = "en-au"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Email: the console in development; SMTP from the environment in production.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Coordinoter <no-reply@coordinoter.test>")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)

# Security. Production is HTTPS only; SECURE_PROXY_SSL_HEADER when TLS ends at a proxy.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    if env_bool("SECURE_PROXY_SSL", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# GET /metrics (Prometheus): open with DEBUG; in production only with "Authorization: Bearer <METRICS_TOKEN>",
# and 404 while METRICS_TOKEN is unset.
METRICS_TOKEN = env_str("METRICS_TOKEN")

# Token encryption: a comma-separated list of Fernet keys; the first encrypts, all decrypt.
_dev_token_key = base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
TOKEN_ENCRYPTION_KEYS = env_list("TOKEN_ENCRYPTION_KEYS", [_dev_token_key])

# Celery. Every task is queued through coordinoter/queue.py. No REDIS_URL: one thread of the process runs them
# (honouring countdowns) and the beat schedule, never inside a request (docs/architecture.md, "Embedded mode").
# Read at call time, so tests flip it with the `settings` fixture.
TASKS_IN_PROCESS = not REDIS_URL
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fix-up closes the database connection around every task unless this is set; it then closes them
# every CELERY_DB_REUSE_MAX tasks, and coordinoter/task_db.py applies CONN_MAX_AGE and the health check around each
# task as Django does around a request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
# Every call to Xero runs on the `xero` queue, so its workers can be scaled on their own.
CELERY_TASK_ROUTES = {"invoices.tasks.push_*": {"queue": "xero"}}

# Xero. Every URL defaults to the real Xero; `make run` points them at xero_sandbox.
XERO_CLIENT_ID = env_str("XERO_CLIENT_ID")
XERO_CLIENT_SECRET = env_str("XERO_CLIENT_SECRET")
XERO_REDIRECT_URI = env_str("XERO_REDIRECT_URI", f"{SITE_URL}/integrations/xero/callback/")
XERO_AUTHORIZE_URL = env_str("XERO_AUTHORIZE_URL", "https://login.xero.com/identity/connect/authorize")
XERO_TOKEN_URL = env_str("XERO_TOKEN_URL", "https://identity.xero.com/connect/token")
XERO_REVOCATION_URL = env_str("XERO_REVOCATION_URL", "https://identity.xero.com/connect/revocation")
XERO_CONNECTIONS_URL = env_str("XERO_CONNECTIONS_URL", "https://api.xero.com/connections")
XERO_API_URL = env_str("XERO_API_URL", "https://api.xero.com/api.xro/2.0")
# Where "Open in Xero" links go; {short_code} and {invoice_id} are filled in.
XERO_INVOICE_DEEP_LINK = env_str(
    "XERO_INVOICE_DEEP_LINK",
    "https://go.xero.com/organisationlogin/default.aspx?shortcode={short_code}"
    "&redirecturl=/AccountsReceivable/View.aspx?InvoiceID={invoice_id}",
)
try:  # fail at start-up, not on every batch page, when the template is malformed
    XERO_INVOICE_DEEP_LINK.format(short_code="!abc", invoice_id="00000000-0000-0000-0000-000000000000")
except (KeyError, IndexError, ValueError) as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"XERO_INVOICE_DEEP_LINK must use only {{short_code}} and {{invoice_id}}: {exc}"
    ) from exc
XERO_GRANULAR_SCOPES = "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings"
XERO_LEGACY_SCOPES = (
    "offline_access openid profile email accounting.transactions accounting.contacts accounting.settings"
)
XERO_SCOPES = env_str("XERO_SCOPES", XERO_GRANULAR_SCOPES)
if XERO_SCOPES == "legacy":
    XERO_SCOPES = XERO_LEGACY_SCOPES
XERO_USE_PKCE = env_bool("XERO_USE_PKCE", True)
# Sign in / sign up with Xero (OpenID Connect): its own redirect URI (register it with the Xero app beside
# XERO_REDIRECT_URI), the issuer whose /.well-known/openid-configuration names the id_token keys, and the scopes.
# Sign-in asks only for the identity; sign-up asks for XERO_SCOPES (identity plus accounting) in one consent.
XERO_SIGNIN_REDIRECT_URI = env_str("XERO_SIGNIN_REDIRECT_URI", f"{SITE_URL}/accounts/xero/callback/")
XERO_SIGNIN_SCOPES = env_str("XERO_SIGNIN_SCOPES", "openid profile email")
XERO_OIDC_ISSUER = env_str("XERO_OIDC_ISSUER", "https://identity.xero.com")
XERO_OIDC_CACHE_SECONDS = env_int("XERO_OIDC_CACHE_SECONDS", 3600)
XERO_OIDC_LEEWAY_SECONDS = env_int("XERO_OIDC_LEEWAY_SECONDS", 60)
XERO_WEBHOOK_KEY = env_str("XERO_WEBHOOK_KEY")
XERO_WEBHOOK_KEY_PREVIOUS = env_str("XERO_WEBHOOK_KEY_PREVIOUS")
# The webhook receiver refuses bodies above this (413); Xero's deliveries are a few KB.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 256 * 1024)
# Request bodies (there is no proxy in front of gunicorn): RequestBoundsMiddleware answers 413 to a Content-Length
# over the path's cap before anything reads the body. Sign-in and password pages take a few hundred bytes; the CSV
# upload takes a 2 MB file plus its multipart envelope; the webhook receiver checks its own cap (None here).
REQUEST_MAX_BODY_BYTES = env_int("REQUEST_MAX_BODY_BYTES", 1024 * 1024)
REQUEST_BODY_CAPS: dict[str, int | None] = {
    "/accounts/": 16 * 1024,
    "/admin/login/": 16 * 1024,
    "/batches/upload/": 2 * 1024 * 1024 + 64 * 1024,
    "/integrations/xero/webhooks/": None,
}
# What Django parses after that: form bodies in memory up to the general cap; uploads up to the CSV's size stay in
# memory. The batch form holds up to 50 invoices of 50 lines (about 13,000 fields), hence the field count.
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024 + 64 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 15000)
DATA_UPLOAD_MAX_NUMBER_FILES = 1
# Who applies a resource fetched after a webhook or a reconciliation poll, by event category: the invoices app
# registers here, so integrations never imports invoices.
XERO_RESOURCE_APPLIERS = {
    "INVOICE": "invoices.services.apply.invoices_apply_from_xero",
    "CONTACT": "invoices.services.apply.contacts_apply_from_xero",
    # Polled only (reconciliation): the webhook inbox takes INVOICE and CONTACT events.
    "CREDITNOTE": "invoices.services.apply.credit_notes_apply_from_xero",
}
# Which Xero versions we hold, by event category: the invoices app's selector, named here like the appliers. The webhook
# inbox does not fetch a resource for an event older than the version we hold (issue 15); a category missing here is
# always fetched.
XERO_RESOURCE_VERSIONS = {"INVOICE": "invoices.selectors.invoice_versions_held"}
# Categories reconciliation polls only for organisations the named function says have something to update: a tenant
# that never sent a credit note spends none of its 5,000 daily calls on GET /CreditNotes.
XERO_RECONCILE_GATES = {"CREDITNOTE": "invoices.services.apply.credit_notes_to_reconcile"}
# Reconciliation costs what it must (issue 15): a tenant whose webhooks arrive in sequence is polled once every
# XERO_RECONCILE_QUIET_SECONDS; a gap in the webhooks' sequence numbers (still open after WEBHOOK_GAP_GRACE_SECONDS),
# a delivery we failed to process, or activity (a push) with no webhook within XERO_RECONCILE_ACTIVITY_GRACE_SECONDS
# brings it forward to XERO_RECONCILE_SOON_SECONDS. The beat fan-out runs every XERO_RECONCILE_EVERY_SECONDS and
# queues at most XERO_RECONCILE_PAGE_SIZE due tenants, spread over that interval. Divided by XERO_TIME_SCALE like
# Xero's own windows (benchmarks only).
XERO_RECONCILE_EVERY_SECONDS = env_int("XERO_RECONCILE_EVERY_SECONDS", 60)
XERO_RECONCILE_PAGE_SIZE = env_int("XERO_RECONCILE_PAGE_SIZE", 500)
XERO_RECONCILE_QUIET_SECONDS = env_int("XERO_RECONCILE_QUIET_SECONDS", 86400) / float(env_str("XERO_TIME_SCALE", "1"))
XERO_RECONCILE_SOON_SECONDS = env_int("XERO_RECONCILE_SOON_SECONDS", 300) / float(env_str("XERO_TIME_SCALE", "1"))
XERO_RECONCILE_ACTIVITY_GRACE_SECONDS = env_int("XERO_RECONCILE_ACTIVITY_GRACE_SECONDS", 600) / float(
    env_str("XERO_TIME_SCALE", "1")
)
WEBHOOK_GAP_GRACE_SECONDS = env_int("WEBHOOK_GAP_GRACE_SECONDS", 120) / float(env_str("XERO_TIME_SCALE", "1"))
# Least time between two fetches for one tenant's webhook events (more events in between share one GET).
WEBHOOK_FETCH_INTERVAL_SECONDS = float(env_str("WEBHOOK_FETCH_INTERVAL_SECONDS", "2"))
# Handled webhook events are kept this long for support, then purged by the inbox sweeper.
WEBHOOK_EVENT_RETENTION_DAYS = env_int("WEBHOOK_EVENT_RETENTION_DAYS", 30)
XERO_HTTP_TIMEOUT_SECONDS = float(env_str("XERO_HTTP_TIMEOUT_SECONDS", "30"))
# Xero's limits and windows (https://developer.xero.com/documentation/guides/oauth2/limits/). XERO_TIME_SCALE > 1
# only against xero_sandbox run with the same --time-scale: every Xero window and wait is divided by it.
XERO_TIME_SCALE = float(env_str("XERO_TIME_SCALE", "1"))
XERO_RATE_LIMITS = {
    "concurrent": env_int("XERO_RATE_CONCURRENT", 5),
    "minute": env_int("XERO_RATE_MINUTE", 60),
    "day": env_int("XERO_RATE_DAY", 5000),
    "app_minute": env_int("XERO_RATE_APP_MINUTE", 10000),
}
XERO_RATE_MINUTE_SECONDS = 60 / XERO_TIME_SCALE
XERO_RATE_DAY_SECONDS = 86400 / XERO_TIME_SCALE
XERO_RATE_GUARD_SECONDS = float(env_str("XERO_RATE_GUARD_SECONDS", "1")) / XERO_TIME_SCALE
XERO_RATE_SLOT_TTL_SECONDS = XERO_HTTP_TIMEOUT_SECONDS + 15  # a killed worker's slot frees itself after this
XERO_RATE_LIMIT_PREFIX = env_str("XERO_RATE_LIMIT_PREFIX", "xero:rl")
# Background calls (webhook fetches, reconciliation, keep-alive and connection checks) share at most this part of
# the app minute and wait once the app's calls reach the rest of it (integrations/xero/ratelimit/, issue 15).
XERO_BACKGROUND_SHARE = float(env_str("XERO_BACKGROUND_SHARE", "0.2"))
# A tenant's own background calls wait until this long after its last customer call, so a push keeps the tenant's
# whole minute and the webhook fetches of its echoes come after it (integrations/xero/ratelimit, issue 15).
XERO_CUSTOMER_QUIET_SECONDS = float(env_str("XERO_CUSTOMER_QUIET_SECONDS", "5")) / XERO_TIME_SCALE
XERO_IDEMPOTENCY_WINDOW_SECONDS = 360 / XERO_TIME_SCALE  # Xero keeps an Idempotency-Key 6 minutes
# The push: a chunk's lease outlives its call; the sweeper re-dispatches expired leases and stalled tenants.
PUSH_LEASE_SECONDS = float(env_str("PUSH_LEASE_SECONDS", str(XERO_HTTP_TIMEOUT_SECONDS + 30)))
PUSH_SWEEP_SECONDS = float(env_str("PUSH_SWEEP_SECONDS", "30"))
XERO_RETRY_BASE_SECONDS = float(env_str("XERO_RETRY_BASE_SECONDS", "2"))
XERO_RETRY_MAX_SECONDS = float(env_str("XERO_RETRY_MAX_SECONDS", "300"))
# The outbound engine (integrations/outbound/): an operation's lease outlives its call; a result that cannot be
# confirmed after OUTBOUND_MAX_LOOKUPS lookups, or a write Xero never answered in OUTBOUND_MAX_SENDS tries, stops in
# needs_attention instead of looping.
OUTBOUND_LEASE_SECONDS = float(env_str("OUTBOUND_LEASE_SECONDS", str(XERO_HTTP_TIMEOUT_SECONDS + 30)))
OUTBOUND_MAX_LOOKUPS = env_int("OUTBOUND_MAX_LOOKUPS", 4)
OUTBOUND_MAX_SENDS = env_int("OUTBOUND_MAX_SENDS", 8)
OUTBOUND_SWEEP_SECONDS = float(env_str("OUTBOUND_SWEEP_SECONDS", "30"))
# An invoice whose sends went unanswered and which was then not found is sent again under a new key at most this
# many times; after that it needs attention.
PUSH_MAX_REQUEUES = env_int("PUSH_MAX_REQUEUES", 3)
# Token store: refresh this long before the 30-minute access token expires; the beat keep-alive refreshes
# refresh tokens older than XERO_KEEPALIVE_AFTER_DAYS (Xero's idle expiry is 60 days); OAuth state lifetime.
XERO_REFRESH_AHEAD_SECONDS = env_int("XERO_REFRESH_AHEAD_SECONDS", 300)
XERO_KEEPALIVE_AFTER_DAYS = env_int("XERO_KEEPALIVE_AFTER_DAYS", 7)
# The daily check of every connection is spread over the day: the beat fan-out runs every window and checks the
# connections whose own time of day falls in it, a page of them at a time.
XERO_KEEPALIVE_WINDOW_SECONDS = env_int("XERO_KEEPALIVE_WINDOW_SECONDS", 600)
XERO_KEEPALIVE_PAGE_SIZE = env_int("XERO_KEEPALIVE_PAGE_SIZE", 500)
XERO_OAUTH_STATE_TTL_SECONDS = env_int("XERO_OAUTH_STATE_TTL_SECONDS", 600)

# Logging: one JSON object per line on stdout; LOG_FORMAT=console (set by `make run` only) prints readable lines.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "coordinoter.logging.RequestIdFilter"},
        "redact": {"()": "coordinoter.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {"()": "coordinoter.logging.ConsoleFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "console" if LOG_FORMAT == "console" else "json",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Every Django logger writes through our handler: Django's own default "console" handler (DEBUG only) would
        # otherwise print request paths unredacted beside the JSON lines, and "mail_admins" has no place here.
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # runserver's request lines go through the same JSON formatter and redaction as everything else.
        "django.server": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "urllib3": {"level": "WARNING"},
    },
}
