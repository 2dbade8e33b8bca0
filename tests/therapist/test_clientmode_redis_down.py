"""Client mode while Redis (the cache that holds the PIN attempt counter) does not answer.

A real unreachable Redis (a closed port), not a mock: entering client mode and saving the
client's form still work; the unlock screen never answers with a server error. It fails
closed for the PIN (no counter, no PIN checked: no unlimited guessing) and takes the
login password instead, which django-axes counts in the database like a login."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from measures.clientmode import SESSION_KEY, user_pin_set
from tests.conftest import OrgPersonas, make_episode

pytestmark = pytest.mark.django_db

IP = "10.0.0.9"


def _enter(org1: OrgPersonas, *, pin: str | None, code: str = "RD-1") -> tuple[Client, Any]:
    ep = make_episode(org1, code=code)
    if pin:
        user_pin_set(actor=org1.therapist_a, pin=pin)
    client = Client(REMOTE_ADDR=IP)
    client.cookies["django_language"] = "en"  # English msgids; Danish from the .po
    client.force_login(org1.therapist_a)
    r = client.post(reverse("session_new", kwargs={"pk": ep.pk}), {"date": str(dt.date.today())})
    assert r.status_code == 302 and r["Location"] == reverse("client_mode_form")
    return client, ep


def test_the_unlock_page_asks_for_the_password_when_the_counter_is_down(
    redis_down: None, org1: OrgPersonas, caplog: Any
) -> None:
    client, _ep = _enter(org1, pin="2468")  # entering works without Redis too
    with caplog.at_level(logging.WARNING, logger="datapolicy.counters"):
        page = client.get(reverse("client_mode_unlock"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "The PIN cannot be used right now" in body
    assert 'name="typed" value="password"' in body
    assert 'inputmode="numeric"' not in body  # a password field, not the number pad
    assert "Attempts left" not in body
    # Operator-facing warning, with no key (session hash), no user, no client code.
    warnings = [r.getMessage() for r in caplog.records if r.name == "datapolicy.counters"]
    assert warnings and all("REDIS_URL" in w for w in warnings)
    assert not any("RD-1" in w or "clientmode-attempts" in w or "therapist" in w for w in warnings)


def test_a_pin_is_not_checked_without_the_counter(redis_down: None, org1: OrgPersonas) -> None:
    client, _ep = _enter(org1, pin="2468")
    # The right PIN, from a page shown while Redis still answered: refused unchecked.
    r = client.post(reverse("client_mode_unlock"), {"secret": "2468", "typed": "pin"})
    assert r.status_code == 503
    assert "The PIN cannot be used right now" in r.content.decode()
    assert SESSION_KEY in client.session
    assert client.get(reverse("caseload"))["Location"] == reverse("client_mode_form")
    # Nor as "the password" (the PIN is no password).
    r = client.post(reverse("client_mode_unlock"), {"secret": "2468", "typed": "password"})
    assert r.status_code == 400 and "Wrong password" in r.content.decode()
    assert SESSION_KEY in client.session


def test_the_login_password_unlocks_without_the_counter(
    redis_down: None, org1: OrgPersonas
) -> None:
    client, ep = _enter(org1, pin="2468")
    r = client.post(reverse("client_mode_unlock"), {"secret": "pw", "typed": "password"})
    assert r.status_code == 302
    assert r["Location"] == reverse("episode_detail", kwargs={"pk": ep.pk}) + "#graph-card"
    assert SESSION_KEY not in client.session
    assert client.get(reverse("caseload")).status_code == 200


def test_password_guessing_without_the_counter_hits_the_login_lock_out(
    redis_down: None, org1: OrgPersonas, settings: Any
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    client, _ep = _enter(org1, pin="2468")
    for _ in range(2):
        r = client.post(reverse("client_mode_unlock"), {"secret": "guess", "typed": "password"})
        assert r.status_code == 400
    # The third wrong one locks the username at this address (django-axes, database)...
    r = client.post(reverse("client_mode_unlock"), {"secret": "guess", "typed": "password"})
    assert r.status_code == 429
    # ...and then even the right password is refused: no unlimited guessing.
    r = client.post(reverse("client_mode_unlock"), {"secret": "pw", "typed": "password"})
    assert r.status_code == 429
    assert SESSION_KEY in client.session


def test_without_a_pin_the_password_still_unlocks(redis_down: None, org1: OrgPersonas) -> None:
    client, _ep = _enter(org1, pin=None)
    body = client.get(reverse("client_mode_unlock")).content.decode()
    assert "The PIN cannot be used right now" not in body  # no PIN: nothing changes
    assert "you have not set a PIN" in body
    r = client.post(reverse("client_mode_unlock"), {"secret": "wrong", "typed": "password"})
    assert r.status_code == 400
    r = client.post(reverse("client_mode_unlock"), {"secret": "pw", "typed": "password"})
    assert r.status_code == 302 and SESSION_KEY not in client.session


def test_the_client_can_save_the_ors_while_redis_is_down(
    redis_down: None, org1: OrgPersonas, django_capture_on_commit_callbacks: Any
) -> None:
    client, ep = _enter(org1, pin="2468")
    # After commit the statistics are marked dirty and a recompute is queued (cache lock
    # and broker): without Redis the marks wait for the next recompute, no server error.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = client.post(
            reverse("client_mode_form"), {"item1": "5", "item2": "5", "item3": "5", "item4": "5"}
        )
    assert callbacks and r.status_code == 302
    assert ep.sessions.count() == 1
