"""Leaving client mode without a PIN asks for the login password: a wrong one counts as
a failed login (django-axes), like the login page, the password-change page and the PIN
page, so the unlock screen is no way round the login throttling."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import OrgPersonas, make_episode

pytestmark = pytest.mark.django_db
IP = "10.0.0.7"


def _client_mode_without_pin(org1: OrgPersonas) -> Client:
    ep = make_episode(org1, code="UL-1001")
    client = Client(REMOTE_ADDR=IP)
    client.force_login(org1.therapist_a)
    assert not org1.therapist_a.client_mode_pin
    r = client.post(
        reverse("session_new", kwargs={"pk": ep.pk}), {"date": dt.date.today().isoformat()}
    )
    assert r["Location"] == reverse("client_mode_form")
    return client


def test_wrong_unlock_passwords_count_towards_the_login_lock_out(org1: OrgPersonas) -> None:
    client = _client_mode_without_pin(org1)
    for _ in range(4):  # one fewer than the client-mode limit: still in client mode
        r = client.post(reverse("client_mode_unlock"), {"secret": "not-the-password"})
        assert r.status_code == 400  # wrong: the unlock form again
    # One more wrong password on the login page makes five for this username and address.
    browser = Client(REMOTE_ADDR=IP)
    login = {"username": org1.therapist_a.username, "password": "wrong-again"}
    browser.post(reverse("login"), login)
    right = browser.post(reverse("login"), {**login, "password": "pw"})
    assert right.status_code == 429  # locked: the unlock tries were counted
    assert "_auth_user_id" not in browser.session


def test_the_right_password_still_unlocks(org1: OrgPersonas) -> None:
    client = _client_mode_without_pin(org1)
    r = client.post(reverse("client_mode_unlock"), {"secret": "pw"})
    assert r.status_code == 302
    assert client.get(reverse("caseload")).status_code == 200  # out of client mode
