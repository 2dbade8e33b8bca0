"""Liveness and readiness probes for the operator's container platform and monitoring.

* ``GET /healthz`` — the process answers (no database, no broker): ``200 ok``.
* ``GET /readyz`` — the web process can serve: the database answers, every migration
  is applied, and the Celery broker (Redis) answers when one is configured. That Redis
  (``REDIS_URL``) is also the cache and the shared counters' store, so the check covers
  them (docs/operations.md, "While Redis does not answer"). ``200`` with
  ``{"status": "ok", ...}`` or ``503`` naming the failed check (``failed``/``pending``),
  never the error itself (it can name hosts and roles); the error goes to the server log.

The middleware sits first, so a probe needs no session, no login, no organisation and
no ``Host`` from ``DJANGO_ALLOWED_HOSTS`` (a container's own probe calls
``127.0.0.1``), and is not redirected to HTTPS. It reads no personal data and writes
nothing: no access-log entry, no session, no cookie.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

logger = logging.getLogger(__name__)

LIVE_PATH = "/healthz"
READY_PATH = "/readyz"

# Once every migration was seen applied, a running process does not look again (the
# plan costs a few milliseconds of reading every migration module's graph).
_migrations_applied = False


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.warning("readiness: the database does not answer", exc_info=True)
        return "failed"
    return "ok"


def check_migrations() -> str:
    global _migrations_applied
    if _migrations_applied:
        return "ok"
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        logger.warning("readiness: cannot read the migration state", exc_info=True)
        return "failed"
    if plan:
        logger.warning("readiness: %d migration(s) not applied", len(plan))
        return "pending"
    _migrations_applied = True
    return "ok"


def check_broker() -> str | None:
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if not url.startswith(("redis://", "rediss://")):
        return None  # tasks run inline (development): nothing to check
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        logger.warning("readiness: the Celery broker does not answer", exc_info=True)
        return "failed"
    return "ok"


def readiness() -> dict[str, str]:
    checks = {"database": check_database()}
    checks["migrations"] = check_migrations() if checks["database"] == "ok" else "failed"
    broker = check_broker()
    if broker is not None:
        checks["broker"] = broker
    return checks


def _answer(body: str, status: int, content_type: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=content_type)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path not in (LIVE_PATH, READY_PATH):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        if path == LIVE_PATH:
            return _answer("ok\n", 200, "text/plain; charset=utf-8")
        checks = readiness()
        ok = all(v == "ok" for v in checks.values())
        body = json.dumps({"status": "ok" if ok else "unavailable", "checks": checks})
        return _answer(body, 200 if ok else 503, "application/json")
