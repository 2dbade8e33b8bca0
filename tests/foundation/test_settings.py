"""Settings: loud failures on bad values, and `check --deploy` clean for production."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from fitplatform.settings.env import env_bool, env_db, env_int

ROOT = Path(__file__).resolve().parents[2]


def test_env_helpers_fail_loudly(monkeypatch) -> None:
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "1")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 5, minimum=3)
    monkeypatch.setenv("X_DB", "nosuchdb://x")
    with pytest.raises(ImproperlyConfigured):
        env_db("X_DB", "sqlite:///x")


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_for_production_settings() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="fitplatform.settings.base",
        DJANGO_SECRET_KEY="q8#v!4s2-this-is-a-long-production-like-secret-key-9f3k2l1m0n",
        DJANGO_ALLOWED_HOSTS="fit.example.dk",
        DJANGO_BASE_URL="https://fit.example.dk",
        EMAIL_URL="smtp+tls://fit:secret@smtp.example.dk:587",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_no_email_is_sent_or_no_base_url_is_set() -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "fitplatform.settings.base",
        "DJANGO_SECRET_KEY": "q8#v!4s2-this-is-a-long-production-like-secret-key-9f3k2l1m0n",
        "DJANGO_ALLOWED_HOSTS": "fit.example.dk",
        "EMAIL_URL": "",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0 and "fitplatform.W001" in result.stderr + result.stdout
    assert "fitplatform.W002" in result.stderr + result.stdout  # no DJANGO_BASE_URL
    bad = _manage("check", **{**env, "EMAIL_URL": "carrier-pigeon://x"})
    assert bad.returncode != 0 and "EMAIL_URL is not a valid e-mail URL" in bad.stderr
    # Production refuses to start with a base URL that is not https (or has a path).
    bad = _manage("check", **{**env, "DJANGO_BASE_URL": "http://fit.example.dk"})
    assert bad.returncode != 0 and "DJANGO_BASE_URL='http://fit.example.dk'" in bad.stderr


def test_check_deploy_refuses_a_catch_all_allowed_hosts() -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "fitplatform.settings.base",
        "DJANGO_SECRET_KEY": "q8#v!4s2-this-is-a-long-production-like-secret-key-9f3k2l1m0n",
        "DJANGO_BASE_URL": "https://fit.example.dk",
        "EMAIL_URL": "smtp+tls://fit:secret@smtp.example.dk:587",
    }
    result = _manage("check", "--deploy", **env, DJANGO_ALLOWED_HOSTS="fit.example.dk,*")
    assert result.returncode != 0 and "fitplatform.E004" in result.stderr + result.stdout
    # A subdomain pattern names the platform's domain: allowed.
    ok = _manage("check", "--deploy", **env, DJANGO_ALLOWED_HOSTS="fit.example.dk,.fit.example.dk")
    assert "fitplatform.E004" not in ok.stderr + ok.stdout


def test_production_refuses_the_development_secret() -> None:
    result = _manage(
        "check", DJANGO_SETTINGS_MODULE="fitplatform.settings.base", DJANGO_DEBUG="false"
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_debug_is_off_unless_asked() -> None:
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DJANGO_SETTINGS_MODULE="fitplatform.settings.base",
        DJANGO_SECRET_KEY="x" * 60,
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_compose_describes_production() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"db", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    assert "noeviction" in services["redis"]["command"]
    # Server settings for bulk writes (docs/import.md, "Server settings").
    db_settings = " ".join(services["db"]["command"])
    assert "shared_buffers=" in db_settings and "max_wal_size=" in db_settings
    assert "gunicorn" in services["web"]["command"]
    assert services["web"]["environment"]["DJANGO_CONN_MAX_AGE"] == "600"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "worker" in services["worker"]["command"] and "beat" in services["beat"]["command"]
    assert "collectstatic" in (ROOT / "Dockerfile").read_text()
    # Uploads saved by web are read by the worker: one shared volume at MEDIA_ROOT.
    assert "media" in compose["volumes"]
    for name in ("web", "worker"):
        assert "media:/app/media" in services[name]["volumes"], name
    assert "mkdir -p /app/media" in (ROOT / "Dockerfile").read_text()
    assert services["web"]["environment"]["DJANGO_TRUSTED_PROXY_COUNT"] == "1"
    # Only migrate connects as the tables' owner; the app runs as the role that cannot
    # alter the access log (datapolicy/dbroles.py, tests/datapolicy/test_app_db_role.py).
    assert "db_app_role" in " ".join(services["migrate"]["command"])
    assert services["migrate"]["environment"]["DJANGO_DB_APP_ROLE"] == "fitplatform_app"
    assert "//fitplatform:" in services["migrate"]["environment"]["DATABASE_URL"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://fitplatform_app:"), name
        assert env["DJANGO_SECRET_KEY"] and env["REDIS_URL"], name
        # The links in account e-mails lead to the configured address (.env).
        assert env["DJANGO_BASE_URL"] == "${DJANGO_BASE_URL:-}", name
        # The owner's password never reaches the app: no whole .env, no POSTGRES_*.
        assert "env_file" not in services[name], name
        assert not any(k.startswith("POSTGRES") for k in env), name
        assert "POSTGRES_PASSWORD" not in env["DATABASE_URL"], name
