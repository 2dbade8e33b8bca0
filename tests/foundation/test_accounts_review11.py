"""Review round 11, accounts.

1. Redis down: the forgotten-password page still answers the same for every address (no
   server error for a known one, whose mail is queued after commit), and the worker
   sends no reset mail whose hourly count it cannot keep (fail closed). A real
   unreachable Redis (a closed port), not a mock.
2. The hourly limit of reset mails is a setting, ``DJANGO_RESET_MAILS_PER_HOUR``
   (``FITPLATFORM["RESET_MAILS_PER_HOUR"]``): a positive whole number, refused at
   start-up otherwise (env_int; check ``fitplatform.E005`` for a value set in code).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from datapolicy.accounts import link_mail_send, reset_mails_per_hour
from datapolicy.counters import counter_clear
from fitplatform.checks import limits_positive
from tests.conftest import REDIS_DOWN

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _with_email(org1: Any) -> Any:
    anna = org1.therapist_a
    anna.email = "anna@alpha.example"
    anna.save()
    counter_clear(f"reset-mail:{anna.pk}")
    return anna


# --- 1. Redis down ----------------------------------------------------------------


def test_the_reset_page_answers_the_same_while_the_broker_is_down(
    org1: Any, broker_down: None, django_capture_on_commit_callbacks: Any, caplog: Any
) -> None:
    _with_email(org1)
    with (
        caplog.at_level(logging.WARNING, logger="datapolicy.accounts"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        known = Client().post(reverse("password_reset"), {"email": "anna@alpha.example"})
        unknown = Client().post(reverse("password_reset"), {"email": "nobody@alpha.example"})
    assert len(callbacks) == 1  # the known address's mail was to be queued
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known.status_code == 302 and mail.outbox == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "reset mail not queued" in logged and "anna" not in logged


def test_the_worker_sends_no_reset_mail_it_cannot_count(
    org1: Any, settings: Any, caplog: Any
) -> None:
    anna = _with_email(org1)
    settings.CACHES = REDIS_DOWN
    with caplog.at_level(logging.WARNING):
        sent = link_mail_send(
            kind="reset",
            user_ids=[anna.pk],
            organisation_name="",
            domain="testserver",
            use_https=False,
            language="da",
        )
    assert sent == 0 and mail.outbox == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "hourly count is unavailable" in logged and "anna" not in logged


# --- 2. The limit is a setting ------------------------------------------------------


@pytest.mark.usefixtures("run_on_commit_at_once")
def test_the_hourly_limit_follows_the_setting(org1: Any, settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "RESET_MAILS_PER_HOUR": 2}
    _with_email(org1)
    assert reset_mails_per_hour() == 2
    answers = set()
    for _ in range(4):
        r = Client().post(reverse("password_reset"), {"email": "anna@alpha.example"})
        answers.add((r.status_code, r["Location"]))
    assert len(answers) == 1
    assert [m.to for m in mail.outbox] == [["anna@alpha.example"]] * 2


def _read_limit(value: str | None) -> subprocess.CompletedProcess:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='fitplatform.settings.base';"
        "django.setup(); from django.conf import settings;"
        "print(settings.FITPLATFORM['RESET_MAILS_PER_HOUR'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_RESET_MAILS_PER_HOUR"}
    env["DJANGO_DEBUG"] = "true"
    if value is not None:
        env["DJANGO_RESET_MAILS_PER_HOUR"] = value
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_the_limit_is_read_from_the_environment_and_checked() -> None:
    assert _read_limit(None).stdout.strip().splitlines()[-1] == "5"
    assert _read_limit("12").stdout.strip().splitlines()[-1] == "12"
    for bad, said in (("0", "below the minimum 1"), ("-3", "below"), ("ten", "not an integer")):
        out = _read_limit(bad)
        assert out.returncode != 0, bad
        assert "DJANGO_RESET_MAILS_PER_HOUR" in out.stderr and said in out.stderr, out.stderr


@pytest.mark.parametrize("value", [0, -1, "5", 2.5, True, None])
def test_a_bad_limit_set_in_code_is_a_check_error(settings: Any, value: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "RESET_MAILS_PER_HOUR": value}
    errors = limits_positive()
    assert [e.id for e in errors] == ["fitplatform.E005"]
    assert "RESET_MAILS_PER_HOUR" in errors[0].msg


def test_good_limits_pass_the_check(settings: Any) -> None:
    settings.FITPLATFORM = {**settings.FITPLATFORM, "RESET_MAILS_PER_HOUR": 1}
    assert limits_positive() == []
    settings.FITPLATFORM = {**settings.FITPLATFORM, "CLIENT_MODE_MAX_PIN_ATTEMPTS": 0}
    assert [e.id for e in limits_positive()] == ["fitplatform.E005"]


def test_compose_and_env_example_carry_the_setting() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in ("web", "worker"):  # the worker counts and sends the mails
        env = compose["services"][name]["environment"]
        assert env["DJANGO_RESET_MAILS_PER_HOUR"] == "${DJANGO_RESET_MAILS_PER_HOUR:-5}"
    assert "\nDJANGO_RESET_MAILS_PER_HOUR=5\n" in (ROOT / ".env.example").read_text()


# --- 1b. The other shared counter in a request path: the API key rate --------------


def test_a_key_call_is_refused_not_a_server_error_while_redis_is_down(
    org1: Any, settings: Any, caplog: Any
) -> None:
    from tests.api.test_api import key_client, key_for

    _key, raw = key_for(org1, ["read"])
    settings.CACHES = REDIS_DOWN
    with caplog.at_level(logging.WARNING, logger="datapolicy.api_auth"):
        r = key_client(raw).get(reverse("api-alert-list"))
    # Fail closed (no uncounted calls), as a JSON error the client can retry on.
    assert r.status_code == 503 and r["Content-Type"].startswith("application/json")
    assert "detail" in r.json()
    assert "rate count is unavailable" in caplog.text and raw not in caplog.text
