"""While Redis does not answer: the dashboards and the import upload (docs/operations.md,
"While Redis does not answer"). A real unreachable Redis (a closed port), not a mock.

The dashboards keep copies in the "pages" cache (suppressed figures, rendered panels),
which misses while Redis fails (django-redis with ``IGNORE_EXCEPTIONS``): the page is computed
without it, not a server error. An upload whose task cannot be queued fails the job at
once with a message that says so, and its file is deleted, instead of a server error
with a job that waits for ever."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_redis.cache import RedisCache as TolerantCache

from fitplatform.cache import OncePerMinute
from measures.models import ImportJob
from stats.selectors import period_as_of
from tests.conftest import REDIS_DOWN, OrgPersonas, make_episode, record, team_of_three

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _six_episodes(org1: OrgPersonas) -> None:
    end = period_as_of("month")[1]
    team = team_of_three(org1)
    for i in range(6):
        ep = make_episode(org1, code=f"RD-{i}", therapist=team[i % 3])
        record(ep, end - dt.timedelta(days=20), ors="12.0")
        record(ep, end - dt.timedelta(days=10), ors="20.0")


@pytest.fixture
def new_process(monkeypatch: Any) -> None:
    """The page cache's logger as settings.LOGGING configures it in a new process: its
    filter's minute not begun, and enabled (whatever earlier tests in this process did
    to the logging tree)."""
    logger = logging.getLogger("fitplatform.cache")
    monkeypatch.setattr(logger, "filters", [OncePerMinute()])
    monkeypatch.setattr(logger, "disabled", False)
    monkeypatch.setattr(logger, "propagate", True)


def test_settings_put_the_once_a_minute_filter_on_the_page_cache_logger(settings: Any) -> None:
    logging_conf = settings.LOGGING
    assert logging_conf["filters"]["once_a_minute"]["()"] == "fitplatform.cache.OncePerMinute"
    assert logging_conf["loggers"]["fitplatform.cache"]["filters"] == ["once_a_minute"]
    assert settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS is True
    assert settings.DJANGO_REDIS_LOGGER == "fitplatform.cache"


def test_the_unit_dashboard_is_shown_while_redis_is_down(
    client: Any, org1: OrgPersonas, settings: Any, caplog: Any, new_process: None
) -> None:
    _six_episodes(org1)  # recorded while the (test) cache answers
    settings.CACHES = REDIS_DOWN
    client.force_login(org1.leader)
    url = reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})
    with caplog.at_level(logging.WARNING, logger="fitplatform.cache"):
        page = client.get(url, {"period": "month"})
        again = client.get(url, {"period": "month"})
    assert page.status_code == 200 and again.status_code == 200
    body = page.content.decode()
    # The six clients' figures, computed without the cache: 6 active clients.
    assert 'class="stats-table' in body
    assert again.content.decode().count("stats-table") == body.count("stats-table")
    # One warning a minute (not one per failed call), without any key or traceback.
    warnings = [r for r in caplog.records if r.name == "fitplatform.cache"]
    assert len(warnings) == 1
    assert all("stats:" not in r.getMessage() and r.exc_info is None for r in warnings)


def _tolerant(url: str, timeout: float) -> TolerantCache:
    options = {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": timeout}
    return TolerantCache(url, {"OPTIONS": options})


def test_ignored_failures_are_one_warning_a_minute_with_the_type_only(
    settings: Any, caplog: Any, new_process: None
) -> None:
    """django-redis logs every ignored failure with its traceback; the filter on its
    logger (settings.LOGGING) lets one through a minute, as a warning naming the type."""
    assert settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS is True
    assert settings.DJANGO_REDIS_LOGGER == "fitplatform.cache"
    cache = _tolerant("redis://127.0.0.1:1/0", 0.5)
    with caplog.at_level(logging.WARNING, logger="fitplatform.cache"):
        for _ in range(3):
            assert cache.get("stats:secret-key", "miss") == "miss"
    records = [r for r in caplog.records if r.name == "fitplatform.cache"]
    assert len(records) == 1
    (rec,) = records
    assert rec.levelno == logging.WARNING and rec.exc_info is None
    assert rec.getMessage() == (
        "page cache unavailable (ConnectionError); pages are computed without it"
    )


@pytest.mark.redis
def test_the_page_cache_stores_and_reads_with_redis_up() -> None:
    """The tolerant cache is an ordinary Redis cache while Redis answers."""
    cache = _tolerant(settings.TEST_REDIS_URL, 1)
    cache.set("fit-test:page-cache", {"a": 1}, 30)
    assert cache.get("fit-test:page-cache") == {"a": 1}
    cache.set_many({"fit-test:p1": 1, "fit-test:p2": 2}, 30)
    assert cache.get_many(["fit-test:p1", "fit-test:p2"]) == {"fit-test:p1": 1, "fit-test:p2": 2}
    assert cache.delete("fit-test:page-cache") is True
    assert cache.get("fit-test:page-cache", "gone") == "gone"


def test_the_page_cache_misses_while_redis_is_down() -> None:
    cache = _tolerant("redis://127.0.0.1:1/0", 0.5)
    cache.set("k", 1, 30)  # dropped, no error
    assert cache.get("k", "default") == "default"
    assert cache.get_many(["k"]) == {}
    cache.set_many({"k": 1}, 30)
    assert not cache.delete("k")


def test_settings_with_redis_give_timeouts_and_the_tolerant_page_cache() -> None:
    """A Redis that hangs must not hold a request for ever: connect and socket timeouts
    on every cache, a connect timeout on the broker; pages and template fragments on the
    tolerant cache, the default cache strict (the counters must know)."""
    code = (
        "import json, django.conf as c; from fitplatform.settings import base as b; "
        "print(json.dumps({'caches': b.CACHES, 'broker': b.CELERY_BROKER_TRANSPORT_OPTIONS}))"
    )
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/3", "DJANGO_DEBUG": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    import json

    conf = json.loads(out.stdout.strip().splitlines()[-1])
    caches = conf["caches"]
    assert caches["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    options = caches["default"]["OPTIONS"]
    assert 0 < options["socket_connect_timeout"] <= 5
    assert 0 < options["socket_timeout"] <= 5
    for alias in ("pages", "template_fragments"):
        assert caches[alias]["BACKEND"] == "django_redis.cache.RedisCache"
        options = caches[alias]["OPTIONS"]
        assert options["IGNORE_EXCEPTIONS"] is True
        assert 0 < options["SOCKET_CONNECT_TIMEOUT"] <= 5
        assert 0 < options["SOCKET_TIMEOUT"] <= 5
    assert 0 < conf["broker"]["socket_connect_timeout"] <= 5


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_an_upload_that_cannot_be_queued_fails_with_a_message(
    client: Any,
    org1: OrgPersonas,
    broker_down: None,
    media: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: Any,
) -> None:
    client.force_login(org1.owner)
    client.cookies["django_language"] = "en"
    text = "client_code;therapist;unit;session_date;ors_total\nAB-1;x;ung;2025-01-10;12,5\n"
    with (
        caplog.at_level(logging.WARNING, logger="measures.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        r = client.post(
            reverse("import_upload"), {"file": SimpleUploadedFile("old.csv", text.encode())}
        )
    assert r.status_code == 302
    job = ImportJob.objects.for_org(org1.org).get()
    assert job.status == ImportJob.Status.FAILED and job.finished_at is not None
    assert "task queue does not answer" in job.errors[0]["message"]
    assert not job.file and not any(media.rglob("*.csv"))  # the upload is deleted
    page = client.get(r["Location"])
    assert page.status_code == 200 and "task queue does not answer" in page.content.decode()
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    assert "not queued" in logged and "AB-1" not in logged
