"""Password guessing is stopped (django-axes, settings "Failed logins").

Five wrong passwords for one username from one address refuse that pair, even with the
right password, for 15 minutes after the last try; a colleague behind the same address
and the same user elsewhere still log in; the admin's login counts too; no password is
stored with the attempts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"


def _post(client: Any, username: str, password: str, *, ip: str = "10.0.0.1", **extra: Any) -> Any:
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip, **extra
    )


def _logged_in(client: Any) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_the_username_at_that_address(org1: Any) -> None:
    name = org1.therapist_a.username
    client = Client()
    for _ in range(4):
        r = _post(client, name, WRONG)
        assert r.status_code == 200  # the login form again, with its message
        assert "Brugernavn og adgangskode passede ikke" in r.content.decode()
    r = _post(client, name, WRONG)  # the fifth
    assert r.status_code == 429
    # Now even the right password is refused, with a page that says why and for how long.
    r = _post(client, name, "pw")
    assert r.status_code == 429 and not _logged_in(client)
    page = r.content.decode()
    assert "For mange mislykkede login" in page
    assert "Prøv igen om 15 minutter" in page
    assert "pw" not in page.split("<main", 1)[-1].split("</main>")[0].split()  # no echo
    # A colleague on the same network (same public address) is not affected ...
    colleague = Client()
    _post(colleague, org1.therapist_b.username, "pw")
    assert _logged_in(colleague)
    # ... nor the same user from another address.
    elsewhere = Client()
    _post(elsewhere, name, "pw", ip="10.0.0.2")
    assert _logged_in(elsewhere)


def test_the_lock_lifts_after_the_cool_off_since_the_last_try(org1: Any) -> None:
    name = org1.therapist_a.username
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        client = Client()
        for _ in range(5):
            _post(client, name, WRONG)
        clock.shift(dt.timedelta(minutes=14))
        assert _post(client, name, "pw").status_code == 429
        # A try during the lock-out starts the 15 minutes again (a guesser who keeps
        # trying stays locked out) ...
        clock.shift(dt.timedelta(minutes=14))
        assert _post(client, name, "pw").status_code == 429
        # ... and 15 minutes of quiet lift it.
        clock.shift(dt.timedelta(minutes=15, seconds=1))
        r = _post(client, name, "pw")
        assert r.status_code == 302 and _logged_in(client)


def test_a_successful_login_resets_the_count(org1: Any) -> None:
    name = org1.therapist_a.username
    client = Client()
    for _ in range(4):
        _post(client, name, WRONG)
    _post(client, name, "pw")
    assert _logged_in(client)
    client.logout()
    for _ in range(4):
        assert _post(client, name, WRONG).status_code == 200
    _post(client, name, "pw")
    assert _logged_in(client)


def test_the_admin_login_counts_and_no_password_is_stored(org1: Any) -> None:
    name = org1.owner.username
    client = Client()
    for _ in range(5):
        client.post(
            reverse("admin:login"), {"username": name, "password": WRONG}, REMOTE_ADDR="10.0.0.9"
        )
    r = client.post(
        reverse("admin:login"), {"username": name, "password": "pw"}, REMOTE_ADDR="10.0.0.9"
    )
    assert r.status_code == 429 and not _logged_in(client)
    attempt = AccessAttempt.objects.get(username=name)
    assert attempt.ip_address == "10.0.0.9" and attempt.failures_since_start >= 5
    assert WRONG not in attempt.post_data and "pw" not in attempt.post_data.split("=")


def test_behind_the_proxy_the_forwarded_address_counts(org1: Any, settings: Any) -> None:
    """With one trusted proxy every request comes from the proxy's address; the address
    the proxy forwards is the one that is locked (as in the access log)."""
    settings.FITPLATFORM = {**settings.FITPLATFORM, "TRUSTED_PROXY_COUNT": 1}
    name = org1.therapist_a.username
    client = Client()
    for _ in range(5):
        _post(client, name, WRONG, ip="172.18.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert (
        _post(client, name, "pw", ip="172.18.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code
        == 429
    )
    other = Client()
    _post(other, name, "pw", ip="172.18.0.2", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert _logged_in(other)


def test_a_password_chosen_through_the_mailed_link_lifts_the_lock(
    org1: Any, run_on_commit_at_once: None
) -> None:
    import re

    from django.core import mail

    user = org1.therapist_a
    user.email = "anna@alpha.example"
    user.save()
    client = Client()
    for _ in range(5):
        _post(client, user.username, WRONG)
    page = _post(client, user.username, "pw").content.decode()
    assert 'href="/password/reset/"' in page  # the lock-out page leads there
    client.post(reverse("password_reset"), {"email": "anna@alpha.example"})
    link = re.search(r"https?://[^/\s]+(/password/reset/\S+/)", mail.outbox[0].body)
    assert link is not None
    r = client.get(link.group(1))
    client.post(
        r["Location"],
        {"new_password1": "Ny-kode-til-anna-7", "new_password2": "Ny-kode-til-anna-7"},
    )
    r = _post(client, user.username, "Ny-kode-til-anna-7")
    assert r.status_code == 302 and _logged_in(client)
