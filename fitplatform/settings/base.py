"""Base settings, read from the environment (see ``.env.example``).

Embedded defaults let ``make run`` work on a machine with only Python: SQLite and
Celery tasks run inline. Production sets ``DATABASE_URL``, ``REDIS_URL``,
``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``; ``DEBUG`` is off unless asked for.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.utils.translation import gettext_lazy as _

from .env import env_base_url, env_bool, env_db, env_email, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str(
    "DJANGO_SECRET_KEY",
    # Only usable with DEBUG; production must set its own (check --deploy and the
    # guard below refuse this one).
    "insecure-development-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz",
)
# SECURITY: never serve production with the published development key.
_DEV_KEY = SECRET_KEY.startswith("insecure-development-key")
if not DEBUG and _DEV_KEY and not env_bool("DJANGO_ALLOW_DEV_SECRET", False):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
        "(or set DJANGO_DEBUG=true for local development)"
    )

# Rotating the key: the new one in DJANGO_SECRET_KEY, the old one(s) here (comma
# separated) until logins, reset links and signed values made with them have expired;
# erased clients' code hashes are also looked up under them (docs/operations.md).
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "guardian",
    "datapolicy",
    "clients",
    "measures",
    "stats",
]

MIDDLEWARE = [
    "fitplatform.health.HealthMiddleware",  # /healthz, /readyz: before host checks (probes)
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "datapolicy.middleware.DanishFirstMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "datapolicy.middleware.IdleLogoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "datapolicy.middleware.TenantMiddleware",
    "measures.clientmode.ClientModeMiddleware",
    "datapolicy.api_auth.ApiNoStoreMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into its page (429)
]

ROOT_URLCONF = "fitplatform.urls"
WSGI_APPLICATION = "fitplatform.wsgi.application"
AUTH_USER_MODEL = "datapolicy.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "datapolicy.context_processors.tenancy",
            ],
        },
    },
]

DATABASES = {"default": env_db("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Persistent connections: ~4x the requests per second of reconnecting (architecture.md).
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DJANGO_CONN_MAX_AGE", 600, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a login (before the password is checked) while it is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_ANONYMOUS_USER_NAME = None  # no anonymous user row: nobody anonymous sees data
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "da"
# Short dates in tables per language (fitplatform/formats: "4. okt 2026" / "4 Oct 2026").
FORMAT_MODULE_PATH = ["fitplatform.formats"]
LANGUAGES = [("da", _("Danish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Copenhagen"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / env_str("DJANGO_STATIC_ROOT", "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = BASE_DIR / env_str("DJANGO_MEDIA_ROOT", "media")
# The system owner's session export (measures.ExportJob) is a file of client codes and
# scores: it can be downloaded for this many hours after it was written, then it is
# deleted (at the next download attempt or by the nightly clean-up, docs/import.md).
EXPORT_FILE_HOURS = env_int("DJANGO_EXPORT_FILE_HOURS", 24, minimum=1)
# The export writes its file in batches of about this many sessions (a batch ends with a
# client's last session): the worker's memory is bounded by the batch (a peak of about
# 3 kB per session in pandas, bench/export_bench.py), and the job's progress is stored
# after each batch.
EXPORT_BATCH_SESSIONS = env_int("DJANGO_EXPORT_BATCH_SESSIONS", 10_000, minimum=1)

# --- Redis, cache and Celery -------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    # A Redis that hangs (not only one that refuses) must not hold a request for ever.
    _REDIS_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2}
    _PAGES: dict[str, Any] = {
        # django-redis: with IGNORE_EXCEPTIONS a failing Redis is a miss (fitplatform.cache).
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": _REDIS_OPTIONS,
        },
        # Copies that can be computed again: a failing Redis is a miss.
        "pages": _PAGES,
        "template_fragments": _PAGES,
    }
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    # Embedded mode: no broker, tasks run inline in the web process.
    # One local-memory store (the same LOCATION) under the three names.
    _LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fit"}
    CACHES = {"default": _LOCMEM, "pages": _LOCMEM, "template_fragments": _LOCMEM}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = ""  # no results kept in embedded mode
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the message for another
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE: dict = {
    # datapolicy: retention first, then the cleanup of expired shares (docs/datapolicy.md).
    "datapolicy-retention": {
        "task": "datapolicy.retention_nightly",
        "schedule": crontab(hour=1, minute=30),
    },
    "datapolicy-grant-cleanup": {
        "task": "datapolicy.grant_permissions_cleanup",
        "schedule": crontab(hour=1, minute=45),
    },
    # stats: every snapshot recomputed nightly after retention (the incremental path keeps
    # them fresh in between); alerts refreshed because "no contact" changes with the
    # calendar.
    "stats-refresh-alerts": {
        "task": "stats.tasks.stats_refresh_alerts_task",
        "schedule": crontab(hour=2, minute=15),
        "options": {"expires": 60 * 60 * 6},
    },
    "stats-recompute-all": {
        "task": "stats.tasks.stats_recompute_all_task",
        "schedule": crontab(hour=2, minute=30),
        "options": {"expires": 60 * 60 * 6},
    },
    # stats: the last closed month's anonymised figures are published (frozen) on the
    # first night after it closes (docs/datapolicy.md, rule 10); a no-op on other nights.
    "stats-publish": {
        "task": "stats.tasks.stats_publish_task",
        "schedule": crontab(hour=3, minute=15),
        "options": {"expires": 60 * 60 * 6},
    },
}

# stats: mount the bench-only baseline view (bench/stats_bench.py); never in production.
STATS_BENCH_VIEWS = env_bool("STATS_BENCH_VIEWS", False)

# measures: the CSV import checks foreign keys set-based where the database role may
# set session_replication_role (measures/bulkload.py); false forces per-row triggers.
IMPORT_SET_BASED_FK = env_bool("IMPORT_SET_BASED_FK", True)

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # Second, so that an unauthenticated call is 403 (session) rather than 401.
        "datapolicy.api_auth.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "datapolicy.api_auth.ApiKeyScope",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["datapolicy.api_auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env_str("FIT_API_KEY_RATE", "600/min")},
    "EXCEPTION_HANDLER": "datapolicy.api_auth.api_exception_handler",
    # DRF's parsers, with JSON nested too deeply answered 400 instead of a 500.
    "DEFAULT_PARSER_CLASSES": [
        "fitplatform.api_errors.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "fitplatform API",
    "DESCRIPTION": "ORS/SRS sessions, episodes and statistics, scoped by the data policy.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Without deep links an operation's path is plain text, not a link inside the
    # operation's button (a control inside a control: axe's nested-interactive, WCAG 4.1.2).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
}

# --- Security (production defaults; DEBUG relaxes only what local HTTP needs) ---------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("DJANGO_SESSION_AGE", 8 * 3600, minimum=300)
# A login untouched this long ends (datapolicy.middleware.IdleLogoutMiddleware); 0: never.
SESSION_IDLE_MINUTES = env_int("DJANGO_SESSION_IDLE_MINUTES", 60, minimum=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from our own static files (no inline
# script, no eval), so that an injected <script> or onclick= never runs on a page that
# shows a client's scores. Styles allow inline attributes: plotly positions its SVG with
# them. Nothing is loaded from another origin (plotly and Swagger UI are served locally).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- E-mail: links to choose a password (datapolicy.accounts) -----------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.dk:587. Without it a development
# machine prints the mails on the console and production sends none; `check --deploy`
# then warns (fitplatform.checks), as a forgotten password's link would never arrive.
_EMAIL = env_email("EMAIL_URL", "consolemail://" if DEBUG else "dummymail://")
EMAIL_BACKEND = _EMAIL["EMAIL_BACKEND"]
EMAIL_HOST = _EMAIL.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = int(_EMAIL.get("EMAIL_PORT") or 25)
EMAIL_HOST_USER = _EMAIL.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _EMAIL.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_EMAIL.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_EMAIL.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "fitplatform <noreply@localhost>")
# DJANGO_BASE_URL, e.g. https://fit.example.dk: the scheme and host of every link in an
# account e-mail (reset and welcome links). Without it the links take the address of the
# request that caused the mail (one of DJANGO_ALLOWED_HOSTS); `check --deploy` warns
# (fitplatform.checks). Scheme and host only; https unless DEBUG.
FITPLATFORM_BASE_URL = env_base_url("DJANGO_BASE_URL", require_https=not DEBUG)

# --- Failed logins (django-axes) ---------------------------------------------------------
# A password guessed from one place is stopped: after DJANGO_LOGIN_FAILURE_LIMIT (5)
# wrong passwords for one username from one address, that username is refused from that
# address (even with the right password) until DJANGO_LOGIN_COOLOFF_MINUTES (15) have
# passed since the last try, on the login page and the admin's. Username and address
# together: a municipality's iPads share one public address, so locking the address would
# lock out every colleague, and locking the username alone would let anyone lock a
# therapist out from anywhere. The address is the access log's (behind
# DJANGO_TRUSTED_PROXY_COUNT proxies). Attempts are kept only while they count (deleted
# on success and after the cool-off; passwords never stored); no login history is kept,
# and the attempts are not in the system owner's admin (they span organisations): an
# operator lifts a lock-out early with `manage.py axes_reset_username USERNAME`.
AXES_FAILURE_LIMIT = env_int("DJANGO_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("DJANGO_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_CLIENT_IP_CALLABLE = "datapolicy.services._client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Logging: no health data in logs (services log ids only) --------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {"once_a_minute": {"()": "fitplatform.cache.OncePerMinute"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Failed logins and lock-outs (username, address) are warnings; not its start banner.
        "axes": {"level": "WARNING"},
        # The page cache's ignored Redis failures: one warning a minute, no traceback.
        "fitplatform.cache": {"filters": ["once_a_minute"]},
    },
}
# django-redis logs the failures it ignores (the page cache) to this logger.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "fitplatform.cache"

# SQLite (embedded mode only) cannot enforce the membership uniqueness with a NULL unit;
# PostgreSQL, which production and CI use, does.
SILENCED_SYSTEM_CHECKS = ["models.W047"]

FITPLATFORM: dict[str, Any] = {
    # Client-mode PIN attempts before the therapist must log in again.
    "CLIENT_MODE_MAX_PIN_ATTEMPTS": 5,
    # Forgotten-password mails one user may be sent an hour (datapolicy.accounts; the
    # page answers the same beyond it). A positive integer (check fitplatform.E005).
    "RESET_MAILS_PER_HOUR": env_int("DJANGO_RESET_MAILS_PER_HOUR", 5, minimum=1),
    # Reverse proxies in front of the app that append to X-Forwarded-For; the access
    # log takes the client address that many entries from the right (0: REMOTE_ADDR).
    "TRUSTED_PROXY_COUNT": env_int("DJANGO_TRUSTED_PROXY_COUNT", 0, minimum=0),
    # The key of the access log's erased-client code hashes (datapolicy.services.
    # client_code_hash); empty: SECRET_KEY. Set it to keep the hashes independent of a
    # SECRET_KEY rotation (docs/operations.md).
    "ACCESS_LOG_KEY": env_str("DJANGO_ACCESS_LOG_KEY", ""),
}
