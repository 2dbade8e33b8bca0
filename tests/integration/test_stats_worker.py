"""A real Celery worker process against Redis and PostgreSQL.

Sessions are entered through the service layer (session_record); the after-commit
signal marks the scopes and queues the debounced task on Redis; a separate worker
process (its own interpreter, base settings, the pytest test database) recomputes; the
test polls the snapshot table. Hand-computed expectations as in tests/stats.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from stats.models import DirtyScope, RecomputeRun, ScopeKind, StatsSnapshot
from tests.conftest import make_episode, make_org, record

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


def _db_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    from django.core.cache import cache

    from fitplatform.celery import app
    from stats.tasks import DEBOUNCE_KEY

    queue = f"stats-it-{os.getpid()}-{time.monotonic_ns()}"
    # The debounce lock must be shared with the worker (it releases it): Redis, as in
    # production, not the test settings' local-memory cache.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.TEST_REDIS_URL,
        }
    }
    cache.delete(DEBOUNCE_KEY)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.STATS_TASK_QUEUE = queue
    old_eager = app.conf.task_always_eager
    old_broker = app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = settings.TEST_REDIS_URL
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fitplatform.settings.base",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": _db_url(),
        "REDIS_URL": settings.TEST_REDIS_URL,
        "DJANGO_CONN_MAX_AGE": "0",
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "fitplatform",
            "worker",
            "--pool",
            "solo",
            "-c",
            "1",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
        app.conf.task_always_eager = old_eager
        app.conf.broker_url = old_broker
        if proc.returncode not in (0, -15):  # pragma: no cover - diagnostics
            print((tmp_path / "worker.log").read_text(errors="replace")[-4000:])


def _wait_for(predicate: Any, what: str, tmp_log: Path | None = None) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _therapist_snapshot(org: Any, therapist: Any) -> StatsSnapshot | None:
    return StatsSnapshot.objects.filter(
        scope_kind=ScopeKind.THERAPIST,
        organisation_id=org.pk,
        scope_id=therapist.pk,
        period_key="current",
        age_group="all",
    ).first()


@pytest.mark.django_db(transaction=True)
def test_worker_recomputes_after_sessions(worker: str) -> None:
    personas = make_org("gamma")
    today = dt.date.today()
    ep = make_episode(personas, code="GA-1001", started_on=today - dt.timedelta(days=30))
    # active episode: ORS 18.0 → 21.3 (change 3.3), SRS 35.0 → 38.0
    record(ep, today - dt.timedelta(days=14), ors="18.0", srs="35.0")
    record(ep, today - dt.timedelta(days=7), ors="21.3", srs="38.0")

    def ready() -> StatsSnapshot | None:
        snap = _therapist_snapshot(personas.org, personas.therapist_a)
        if snap and snap.payload["table"]["active"]["sessions"] == 2:
            return snap
        return None

    snap = _wait_for(ready, "the worker's snapshot")
    active = snap.payload["table"]["active"]
    assert active["episodes"] == 1
    assert active["ors_start"] == pytest.approx(18.0)
    assert active["ors_change"] == pytest.approx(3.3)
    # 3.3 / 18.0 · 100 = 18.333… % (the seed's active check)
    assert active["effect_size_pct"] == pytest.approx(18.333333333333332)
    assert active["srs_change"] == pytest.approx(3.0)
    assert snap.payload["table"]["inactive"]["episodes"] == 0
    unit = StatsSnapshot.objects.get(
        scope_kind=ScopeKind.UNIT, scope_id=personas.unit.pk, period_key="current", age_group="all"
    )
    assert unit.payload["table"]["active"]["sessions"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_50_sessions_is_recomputed_a_few_times_not_50(worker: str) -> None:
    personas = make_org("delta")
    today = dt.date.today()
    episodes = [
        make_episode(personas, code=f"DE-{1000 + i}", started_on=today - dt.timedelta(days=80))
        for i in range(10)
    ]
    RecomputeRun.objects.all().delete()
    for day in range(5):
        for ep in episodes:
            record(ep, today - dt.timedelta(days=60 - 10 * day), ors="20.0", srs="36.0")

    def done() -> StatsSnapshot | None:
        snap = _therapist_snapshot(personas.org, personas.therapist_a)
        if (
            snap
            and snap.payload["table"]["active"]["sessions"] == 50
            and not DirtyScope.objects.exists()
        ):
            return snap
        return None

    snap = _wait_for(done, "the burst to be recomputed")
    assert snap.payload["table"]["active"]["episodes"] == 10
    runs = RecomputeRun.objects.filter(kind="incremental").count()
    # 50 sessions (and 10 episodes) in a few seconds: a handful of runs, far fewer than 50
    assert 1 <= runs <= 10, runs
