"""Security review 10: the account pages (password change, reset link) and the PIN pages.

Each finding is reproduced here as a test that failed on the code as reviewed:

1. the pages reached through a reset link sent ``Referrer-Policy: same-origin``: the
   page of a link that cannot be used is shown at the token's URL, and the browser sent
   that URL, token included, as ``Referer`` to the platform's own stylesheet, script and
   links (gunicorn's access log hides it; a proxy's log in front would keep it); they now
   send ``no-referrer`` (and stay uncached, as Django made them);
2. the password-change page could be kept by a browser or proxy cache (Django's view
   sets no cache header, and it is no tenant page, which the platform's base marks
   ``no-store``);
3. the client-mode unlock page and the PIN page did not mask the typed PIN and password
   in error reports (Django's ``sensitive_post_parameters``, which its own login,
   change and reset views use);
4. anyone who knows an address could have the platform send its owner any number of
   reset mails; now at most ``reset_mails_per_hour()`` an hour per user (the page still
   answers the same, and the limit is kept by the worker, so the answer's timing does
   not tell either).

Checked and found right (covered here or in test_accounts.py / test_security_review9.py):
the reset link is redirected to a URL without the token before the form is shown
(Django's pattern; the token waits in the session); the link works once, no longer
after a login or an e-mail change (Django's token covers both), nor after a
deactivation; a new password ends the user's other logins.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.signals import got_request_exception
from django.test import Client
from django.urls import reverse
from django.views.debug import get_exception_reporter_filter

from datapolicy.accounts import reset_mails_per_hour
from datapolicy.counters import counter_clear
from measures import clientmode
from measures.clientmode import SESSION_KEY, user_pin_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_on_commit_at_once")]


def _assert_secret_page(response: Any, *, token_in_url: bool = False) -> None:
    """Never cached. ``no-referrer`` only at a URL that holds the reset token: a form
    posted from a ``no-referrer`` page carries ``Origin: null`` in Chromium and Safari,
    which the CSRF check refuses (tests/browser/test_account_forms.py); elsewhere the
    platform's ``same-origin`` (nothing secret in those URLs)."""
    expected = "no-referrer" if token_in_url else "same-origin"
    assert response["Referrer-Policy"] == expected
    assert "no-store" in response["Cache-Control"]


def _reset_link(client: Client, user: Any) -> str:
    user.email = "anna@alpha.example"
    user.save()
    counter_clear(f"reset-mail:{user.pk}")
    client.post(reverse("password_reset"), {"email": user.email})
    found = re.search(r"https?://[^/\s]+(/password/reset/[^/\s]+/[^/\s]+/)", mail.outbox[-1].body)
    assert found
    return found.group(1)


# --- 1. No Referer from the reset link's pages ------------------------------------------


def test_the_reset_link_pages_send_no_referer_and_are_not_cached(org1: Any) -> None:
    client = Client()
    link = _reset_link(client, org1.therapist_a)
    token = link.rstrip("/").rsplit("/", 1)[1]
    # A link that cannot be used is sent on to a page without the token in its URL
    # (review round 11: its forms, e.g. the language switch, then carry a real Origin).
    unusable = client.get(link[: -len(token) - 1] + "x" * len(token) + "/")
    _assert_secret_page(unusable, token_in_url=True)
    assert unusable.status_code == 302
    assert unusable["Location"] == reverse("password_reset_invalid")
    invalid = client.get(unusable["Location"])
    assert invalid.status_code == 200 and "Linket kan ikke bruges" in invalid.content.decode()
    assert invalid["Referrer-Policy"] == "same-origin"
    # A good one is redirected to a URL without the token (Django's pattern) ...
    opened = client.get(link)
    _assert_secret_page(opened, token_in_url=True)
    assert opened.status_code == 302 and token not in opened["Location"]
    assert opened["Location"].endswith("/set-password/")
    # ... whose form page and its answers hold no token (the platform's same-origin).
    form = client.get(opened["Location"])
    assert form.status_code == 200 and token not in form.content.decode()
    _assert_secret_page(form)
    mismatch = client.post(opened["Location"], {"new_password1": "a", "new_password2": "b"})
    _assert_secret_page(mismatch)


def test_a_reset_link_ends_with_a_login_or_an_email_change(org1: Any) -> None:
    user = org1.therapist_a
    link = _reset_link(Client(), user)
    Client().force_login(user)  # sets last_login, which the token covers
    again = Client().get(link, follow=True)
    assert again.status_code == 200 and "Linket kan ikke bruges" in again.content.decode()
    assert again.redirect_chain == [(reverse("password_reset_invalid"), 302)]
    link = _reset_link(Client(), user)
    user.email = "anna.new@alpha.example"
    user.save()
    assert "Linket kan ikke bruges" in Client().get(link, follow=True).content.decode()


# --- 2. The password-change page is not cached --------------------------------------


def test_the_password_change_page_is_not_cached(org1: Any) -> None:
    client = Client()
    client.force_login(org1.therapist_a)
    _assert_secret_page(client.get(reverse("password_change")))
    wrong = client.post(
        reverse("password_change"),
        {"old_password": "not-it", "new_password1": "x", "new_password2": "x"},
    )
    _assert_secret_page(wrong)


def test_the_pin_pages_send_no_referer_and_are_not_cached(org1: Any) -> None:
    client = Client()
    client.force_login(org1.therapist_a)
    _assert_secret_page(client.get(reverse("client_mode_pin")))
    session = client.session
    session[SESSION_KEY] = {"episode_id": 1, "kind": "ors", "date": "2026-03-02"}
    session.save()
    _assert_secret_page(client.get(reverse("client_mode_unlock")))
    _assert_secret_page(client.post(reverse("client_mode_unlock"), {"secret": "0000"}))


# --- 3. Typed secrets are masked in error reports -----------------------------------


def _reported_post(client: Client, url: str, data: dict[str, str]) -> dict[str, Any]:
    """POST that fails with a server error; the POST data an error report would show."""
    seen: list[Any] = []

    def keep(sender: Any, request: Any = None, **kwargs: Any) -> None:
        seen.append(request)

    got_request_exception.connect(keep)
    try:
        response = client.post(url, data)
    finally:
        got_request_exception.disconnect(keep)
    assert response.status_code == 500 and seen
    request = seen[0]
    params = get_exception_reporter_filter(request).get_post_parameters(request)
    return {key: params.get(key) for key in params}


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a failure after the secret was read")


def test_the_unlock_pages_pin_is_masked_in_error_reports(org1: Any, monkeypatch: Any) -> None:
    user_pin_set(actor=org1.therapist_a, pin="2468")
    client = Client(raise_request_exception=False)
    client.force_login(org1.therapist_a)
    session = client.session
    session[SESSION_KEY] = {"episode_id": 1, "kind": "ors", "date": "2026-03-02"}
    session.save()
    monkeypatch.setattr(clientmode, "client_mode_unlock", _boom)
    posted = _reported_post(client, reverse("client_mode_unlock"), {"secret": "2468"})
    assert "2468" not in str(posted.values())


def test_the_pin_pages_pin_and_password_are_masked_in_error_reports(
    org1: Any, monkeypatch: Any
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(org1.therapist_a)
    monkeypatch.setattr(clientmode, "user_pin_set", _boom)
    posted = _reported_post(
        client, reverse("client_mode_pin"), {"pin": "4711", "pin_again": "4711", "password": "pw"}
    )
    assert set(posted) == {"pin", "pin_again", "password"}
    assert not {"4711", "pw"} & set(posted.values())


# --- 4. Reset mails per user and hour -------------------------------------------------


def test_a_mailbox_cannot_be_flooded_with_reset_mails(org1: Any) -> None:
    anna, bo = org1.therapist_a, org1.therapist_b
    for user, email in ((anna, "anna@alpha.example"), (bo, "bo@alpha.example")):
        user.email = email
        user.save()
        counter_clear(f"reset-mail:{user.pk}")
    answers = set()
    for _ in range(reset_mails_per_hour() + 3):
        r = Client().post(reverse("password_reset"), {"email": "anna@alpha.example"})
        answers.add((r.status_code, r["Location"]))
    assert len(answers) == 1  # the page answers the same, sent or not
    assert [m.to for m in mail.outbox] == [["anna@alpha.example"]] * reset_mails_per_hour()
    # Another user is not affected.
    Client().post(reverse("password_reset"), {"email": "bo@alpha.example"})
    assert mail.outbox[-1].to == ["bo@alpha.example"]
