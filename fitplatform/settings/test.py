"""Test settings.

Uses PostgreSQL and Redis when they are reachable (``DATABASE_URL``/``REDIS_URL`` or the
local defaults) and otherwise SQLite and inline tasks; ``tests/conftest.py`` prints
which, and with ``CI=true`` a missing service is an error, not a skip.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_ALLOW_DEV_SECRET", "true")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/fitplatform"
LOCAL_REDIS = "redis://127.0.0.1:6379/1"


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or {"postgres": 5432, "postgresql": 5432, "redis": 6379}.get(
        parsed.scheme, 0
    )
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if "DATABASE_URL" not in os.environ and _reachable(LOCAL_POSTGRES):
    os.environ["DATABASE_URL"] = LOCAL_POSTGRES
if "REDIS_URL" not in os.environ and _reachable(LOCAL_REDIS):
    os.environ["REDIS_URL"] = LOCAL_REDIS
# An explicit empty value means "do not use".
if os.environ.get("REDIS_URL") and not _reachable(os.environ["REDIS_URL"]):
    TEST_REDIS_URL_UNREACHABLE = os.environ.pop("REDIS_URL")
else:
    TEST_REDIS_URL_UNREACHABLE = ""

from .base import *  # noqa: E402, F403
from .base import DATABASES, REDIS_URL  # noqa: E402

TEST_REDIS_URL = REDIS_URL
# Requests in tests run tasks inline unless a test starts a real worker and asks for the
# broker (tests/integration); that keeps unit tests independent of a worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
TEST_USES_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Serve static files from the finders in tests (no collectstatic needed).
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
