"""Django's own settings and the app's: apps, database, cache, sign-in and request limits, static files, email,
security, token encryption, Celery and logging (everything but Xero, which is xero.py)."""

import base64
import hashlib
from pathlib import Path

import dj_database_url

from coordinoter.env import env_bool, env_int, env_list, env_str, require

BASE_DIR = Path(__file__).resolve().parents[2]  # coordinoter/settings/base.py -> the project root

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
