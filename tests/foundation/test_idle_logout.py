"""A login left untouched for an hour ends (settings SESSION_IDLE_MINUTES)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def test_an_hour_without_activity_ends_the_login(org1: Any) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        client.force_login(org1.therapist_a)
        assert client.get(reverse("caseload")).status_code == 200
        # Active all morning: every request within the hour keeps the login.
        for _ in range(5):
            clock.shift(dt.timedelta(minutes=55))
            assert client.get(reverse("caseload")).status_code == 200
        # Put down for an hour and a minute: the next request meets the login page.
        clock.shift(dt.timedelta(minutes=61))
        r = client.get(reverse("caseload"))
        assert r.status_code == 302
        assert r["Location"] == f"{reverse('login')}?next={reverse('caseload')}"
        assert "_auth_user_id" not in client.session
        page = client.get(r["Location"]).content.decode()
        assert "Du blev logget ud efter 60 minutter uden aktivitet" in page
        assert client.get(reverse("caseload")).status_code == 302  # stays logged out


def test_the_api_answers_403_after_idling_and_the_limit_can_be_off(
    org1: Any, settings: Any
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        client.force_login(org1.therapist_a)
        assert client.get("/api/v1/clients/").status_code == 200
        clock.shift(dt.timedelta(minutes=61))
        r = client.get("/api/v1/clients/")
        assert r.status_code == 403 and r["Content-Type"].startswith("application/json")
        settings.SESSION_IDLE_MINUTES = 0
        client.force_login(org1.therapist_a)
        assert client.get("/api/v1/clients/").status_code == 200
        clock.shift(dt.timedelta(hours=5))
        assert client.get("/api/v1/clients/").status_code == 200
