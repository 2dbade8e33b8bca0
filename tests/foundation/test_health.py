"""The liveness and readiness probes (fitplatform.health), against the real database
and Redis; failures are real (a refused port, an unapplied migration), not mocks."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from datapolicy.models import AccessLog
from fitplatform import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_migration_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_migrations_applied", False)


def test_liveness_answers_without_database_or_host() -> None:
    r = Client().get("/healthz", HTTP_HOST="10.1.2.3:8000")  # not in ALLOWED_HOSTS
    assert r.status_code == 200
    assert r.content == b"ok\n"
    assert r["Cache-Control"] == "no-store"


def test_readiness_with_database_and_broker() -> None:
    from django.conf import settings

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "this test needs real Redis"
    before = AccessLog.objects.count()
    r = Client().get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }
    assert "Set-Cookie" not in r.headers and not r.cookies
    assert AccessLog.objects.count() == before


def test_readiness_fails_when_the_broker_does_not_answer() -> None:
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        r = Client().get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == "failed"
    assert body["checks"]["database"] == "ok"
    # The error itself (which names the host and port) stays in the server log.
    assert "127.0.0.1" not in r.content.decode() and "refused" not in r.content.decode()


def test_readiness_fails_while_a_migration_is_not_applied() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'measures' AND name = "
            "(SELECT max(name) FROM django_migrations WHERE app = 'measures')"
        )
    r = Client().get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["migrations"] == "pending"


def test_probes_are_not_redirected_to_https_and_take_only_get() -> None:
    with override_settings(SECURE_SSL_REDIRECT=True):
        client = Client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get(reverse("login")).status_code == 301  # the pages still are
        assert client.head("/healthz").status_code == 200
        r = client.post("/healthz")
        assert r.status_code == 405 and r["Allow"] == "GET, HEAD"


def test_only_the_exact_paths_are_probes() -> None:
    r = Client().get("/healthz/extra", HTTP_HOST="10.1.2.3:8000")
    assert r.status_code == 400  # an ordinary request: the host check applies
