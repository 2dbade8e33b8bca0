"""Wrong PINs sent at the same moment from one browser session are each counted.

The tries used to be counted in the Django session: every request read the count when
it started and wrote its own count + 1 when it ended, so requests running at the same
time all read the same old count and a burst of N wrong PINs counted as one. The tries
are now counted in the cache the platform uses in production (Redis), atomically, and
before the PIN is checked. These tests race real requests (threads with a barrier, on
PostgreSQL and Redis); the barrier sits inside the PIN check, so every racing request
has read its session before any of them has written it back: the old counter loses
the tries every time, not only when the timing happens to be unlucky.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from measures import clientmode
from measures.clientmode import SESSION_KEY, user_pin_set
from tests.conftest import OrgPersonas, make_org

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

RACERS = 6
REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": settings.TEST_REDIS_URL,
    }
}


@pytest.fixture
def personas() -> OrgPersonas:
    return make_org("race")


@pytest.fixture
def in_client_mode(personas: OrgPersonas) -> Client:
    """A therapist's browser session in client mode (the iPad handed to the client)."""
    therapist = personas.therapist_a
    user_pin_set(actor=therapist, pin="2468")
    client = Client()
    client.cookies["django_language"] = "en"
    client.force_login(therapist)
    session = client.session
    session[SESSION_KEY] = {"episode_id": 1, "kind": "ors", "date": "2026-03-02", "items": []}
    session.save()
    return client


def _race(client: Client, monkeypatch: Any, *, meet_in_check: int) -> tuple[list[int], int]:
    """RACERS requests of the same browser session post a wrong PIN at once. Those that
    get as far as the PIN check wait there until ``meet_in_check`` have arrived (or 5 s
    have passed). Returns the answers' status codes and how many PINs were checked."""
    real_check = clientmode.user_unlock_check
    in_check = threading.Barrier(meet_in_check, timeout=5)
    checked: list[int] = []

    def check_at_the_same_time(*, actor: Any, secret: str, **kwargs: Any) -> bool:
        checked.append(1)
        with contextlib.suppress(threading.BrokenBarrierError):
            in_check.wait()
        return real_check(actor=actor, secret=secret, **kwargs)

    monkeypatch.setattr(clientmode, "user_unlock_check", check_at_the_same_time)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    start = threading.Barrier(RACERS)
    statuses: list[int] = []

    def one_request() -> None:
        browser_tab = Client()
        browser_tab.cookies[settings.SESSION_COOKIE_NAME] = cookie
        browser_tab.cookies["django_language"] = "en"
        try:
            start.wait()
            response = browser_tab.post(reverse("client_mode_unlock"), {"secret": "0000"})
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_request) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    monkeypatch.setattr(clientmode, "user_unlock_check", real_check)
    assert len(statuses) == RACERS
    return statuses, len(checked)


@override_settings(CACHES=REDIS_CACHE, FITPLATFORM={"CLIENT_MODE_MAX_PIN_ATTEMPTS": 100})
def test_wrong_pins_sent_at_once_are_each_counted(in_client_mode: Client, monkeypatch: Any) -> None:
    statuses, checked = _race(in_client_mode, monkeypatch, meet_in_check=RACERS)
    assert statuses == [400] * RACERS and checked == RACERS
    page = in_client_mode.get(reverse("client_mode_unlock")).content.decode()
    left = re.search(r"Attempts left: (\d+)", page)
    assert left, page
    # 100 - 6, not 100 - 1 (each request having written "old count + 1" = 1).
    assert int(left.group(1)) == 100 - RACERS


@override_settings(CACHES=REDIS_CACHE, FITPLATFORM={"CLIENT_MODE_MAX_PIN_ATTEMPTS": 3})
def test_a_burst_of_wrong_pins_gets_no_more_checks_than_the_limit(
    in_client_mode: Client, monkeypatch: Any
) -> None:
    """Six PINs sent at once with a limit of three: at most three are ever checked
    against the therapist's PIN, and the login ends."""
    statuses, checked = _race(in_client_mode, monkeypatch, meet_in_check=3)
    assert checked <= 3
    assert statuses.count(400) <= 2  # "wrong PIN": only tries 1 and 2
    # The session has ended: no client mode, no therapist's pages, log in again.
    response = in_client_mode.get(reverse("caseload"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in in_client_mode.session
