"""Client mode: while the client holds the iPad, only the form is reachable (server-side),
and only the therapist's PIN (or password) ends it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.test import override_settings
from django.urls import reverse

from measures.clientmode import SESSION_KEY
from tests.conftest import OrgPersonas, make_episode

pytestmark = pytest.mark.django_db


@pytest.fixture
def episode(org1: OrgPersonas) -> Any:
    return make_episode(org1, code="CM-1")


@pytest.fixture
def in_client_mode(client: Any, org1: OrgPersonas, episode: Any) -> Any:
    client.cookies["django_language"] = "en"  # English msgids; Danish comes from the .po
    client.force_login(org1.therapist_a)
    from measures.clientmode import user_pin_set

    user_pin_set(actor=org1.therapist_a, pin="2468")
    response = client.post(
        reverse("session_new", kwargs={"pk": episode.pk}), {"date": dt.date.today().isoformat()}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("client_mode_form")
    return client


def test_the_form_page_has_no_menus_and_no_client_code(in_client_mode: Any) -> None:
    body = in_client_mode.get(reverse("client_mode_form")).content.decode()
    assert 'class="scale-hit"' in body
    assert "mainnav" not in body and "topbar" not in body
    assert "CM-1" not in body
    assert reverse("caseload") not in body
    assert reverse("logout") not in body  # no log-out form either (it would end client mode)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("caseload", None),
        ("home", None),
        ("client_new", None),
        ("client_mode_pin", None),
        ("leader_home", None),
        ("episode_detail", "episode"),
        ("paper_entry", "episode"),
        ("session_new", "episode"),
        ("episode_transfer", "episode"),
    ],
)
def test_every_other_page_sends_back_to_the_form(
    in_client_mode: Any, episode: Any, name: str, kwargs: str | None
) -> None:
    url = reverse(name, kwargs={"pk": episode.pk} if kwargs else None)
    for method in ("get", "post"):
        response = getattr(in_client_mode, method)(url)
        assert response.status_code == 302, (name, method)
        assert response["Location"] == reverse("client_mode_form")


def test_admin_api_and_logout_are_refused_too(in_client_mode: Any) -> None:
    for url in ("/admin/", "/api/", "/api/schema/", reverse("logout"), "/no-such-page/"):
        response = in_client_mode.post(url) if url == reverse("logout") else in_client_mode.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == reverse("client_mode_form")
    # Still in client mode after trying.
    assert SESSION_KEY in in_client_mode.session


def test_closing_the_episode_is_refused_in_client_mode(in_client_mode: Any, episode: Any) -> None:
    in_client_mode.post(
        reverse("episode_close", kwargs={"pk": episode.pk}),
        {"closed_on": dt.date.today().isoformat()},
    )
    episode.refresh_from_db()
    assert episode.status == "open"


def test_a_wrong_pin_stays_locked(in_client_mode: Any) -> None:
    response = in_client_mode.post(reverse("client_mode_unlock"), {"secret": "1111"})
    assert response.status_code == 400
    assert "Wrong PIN" in response.content.decode()
    assert in_client_mode.get(reverse("caseload"))["Location"] == reverse("client_mode_form")


def test_the_password_is_not_accepted_when_a_pin_is_set(in_client_mode: Any) -> None:
    response = in_client_mode.post(reverse("client_mode_unlock"), {"secret": "pw"})
    assert response.status_code == 400
    assert SESSION_KEY in in_client_mode.session


def test_the_right_pin_unlocks(in_client_mode: Any, episode: Any) -> None:
    response = in_client_mode.post(reverse("client_mode_unlock"), {"secret": "2468"})
    assert response.status_code == 302
    episode_url = reverse("episode_detail", kwargs={"pk": episode.pk})
    assert response["Location"] == episode_url + "#graph-card"
    assert SESSION_KEY not in in_client_mode.session
    assert in_client_mode.get(reverse("caseload")).status_code == 200


@override_settings(FITPLATFORM={"CLIENT_MODE_MAX_PIN_ATTEMPTS": 3})
def test_too_many_wrong_pins_log_the_user_out(in_client_mode: Any) -> None:
    for _ in range(2):
        assert (
            in_client_mode.post(reverse("client_mode_unlock"), {"secret": "0000"}).status_code
            == 400
        )
    response = in_client_mode.post(reverse("client_mode_unlock"), {"secret": "0000"})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    # Logged out: the caseload needs a login, and the right PIN is no longer any use.
    assert reverse("login") in in_client_mode.get(reverse("caseload"))["Location"]
    assert "_auth_user_id" not in in_client_mode.session


def test_without_a_pin_the_password_unlocks(client: Any, org1: OrgPersonas, episode: Any) -> None:
    client.force_login(org1.therapist_a)
    client.post(
        reverse("session_new", kwargs={"pk": episode.pk}), {"date": dt.date.today().isoformat()}
    )
    assert client.post(reverse("client_mode_unlock"), {"secret": ""}).status_code == 400
    assert client.post(reverse("client_mode_unlock"), {"secret": "wrong"}).status_code == 400
    assert client.post(reverse("client_mode_unlock"), {"secret": "pw"}).status_code == 302
    assert SESSION_KEY not in client.session


def test_the_pin_page_stores_a_hash(client: Any, org1: OrgPersonas) -> None:
    client.force_login(org1.therapist_a)
    bad = client.post(
        reverse("client_mode_pin"), {"pin": "12", "pin_again": "12", "password": "pw"}
    )
    assert bad.status_code == 400
    wrong_pw = client.post(
        reverse("client_mode_pin"), {"pin": "1234", "pin_again": "1234", "password": "nope"}
    )
    assert wrong_pw.status_code == 400
    mismatch = client.post(
        reverse("client_mode_pin"), {"pin": "1234", "pin_again": "1235", "password": "pw"}
    )
    assert mismatch.status_code == 400
    org1.therapist_a.refresh_from_db()
    assert org1.therapist_a.client_mode_pin == ""
    ok = client.post(
        reverse("client_mode_pin"), {"pin": "1234", "pin_again": "1234", "password": "pw"}
    )
    assert ok.status_code == 302
    org1.therapist_a.refresh_from_db()
    assert org1.therapist_a.client_mode_pin != "1234"
    assert check_password("1234", org1.therapist_a.client_mode_pin)


def test_another_users_session_is_not_affected(
    in_client_mode: Any, org1: OrgPersonas, django_user_model: Any
) -> None:
    from django.test import Client

    other = Client()
    other.force_login(org1.therapist_b)
    assert other.get(reverse("caseload")).status_code == 200
