"""An integration with an API key states its language with ``Accept-Language``; the pages
and the browser's own API calls stay Danish first (a shared iPad set to English)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from datapolicy.api_auth import apikey_create
from tests.conftest import OrgPersonas

SCOPE_EN = "This API key does not have the scope for this request."
INVALID_EN = "Invalid API key."


def danish(text: str) -> str:
    with translation.override("da"):
        result = translation.gettext(text)
    assert result != text, "the test needs a Danish translation to tell the languages apart"
    return result


def read_key(p: OrgPersonas) -> str:
    _key, raw = apikey_create(
        actor=p.therapist_a, organisation=p.org, name="k", user=p.therapist_a, scopes=["read"]
    )
    return raw


def test_a_key_call_follows_accept_language(org1: OrgPersonas) -> None:
    c = APIClient(raise_request_exception=False)
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_key(org1)}")
    english = c.post("/api/v1/clients/", {}, format="json", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8")
    assert english.status_code == 403
    assert english.json() == {"detail": SCOPE_EN}
    assert english["Content-Language"] == "en"
    # Without the header: Danish, the platform's default.
    default = c.post("/api/v1/clients/", {}, format="json")
    assert default.json() == {"detail": danish(SCOPE_EN)}
    assert default["Content-Language"] == "da"
    # An explicit Danish preference too.
    asked = c.post("/api/v1/clients/", {}, format="json", HTTP_ACCEPT_LANGUAGE="da")
    assert asked.json() == {"detail": danish(SCOPE_EN)}


def test_the_language_cookie_still_wins_over_the_header(org1: OrgPersonas) -> None:
    c = APIClient(raise_request_exception=False)
    c.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_key(org1)}")
    c.cookies["django_language"] = "da"
    r = c.post("/api/v1/clients/", {}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert r.json() == {"detail": danish(SCOPE_EN)}


def test_a_bad_key_is_answered_in_the_callers_language(org1: OrgPersonas) -> None:
    c = APIClient(raise_request_exception=False)
    c.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")
    r = c.get("/api/v1/clients/", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code in (401, 403)
    assert r.json() == {"detail": INVALID_EN}


def test_browser_session_api_calls_and_pages_ignore_accept_language(org1: OrgPersonas) -> None:
    c = APIClient(raise_request_exception=False)
    c.force_login(org1.therapist_a)
    r = c.get("/api/v1/clients/", HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200
    assert r["Content-Language"] == "da"
    page = c.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en")
    assert page["Content-Language"] == "da"


def test_a_key_header_outside_the_api_does_not_change_the_pages(org1: OrgPersonas) -> None:
    c = APIClient(raise_request_exception=False)
    r = c.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en", HTTP_AUTHORIZATION="Api-Key nope.nope")
    assert r["Content-Language"] == "da"
