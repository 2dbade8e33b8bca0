"""The platform's own error pages: in the user's language, with a title and a main
landmark (Django's are English, lang="en", without landmarks). Their accessibility in a
browser: tests/browser/test_accessibility.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import SuspiciousOperation
from django.test import RequestFactory
from django.utils import translation
from django.views import defaults


def _lang_and_title(html: str) -> tuple[str, str]:
    lang = re.search(r'<html lang="([^"]*)"', html)
    title = re.search(r"<title>([^<]*)</title>", html)
    assert lang and title and "<main" in html
    return lang.group(1), title.group(1)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["da", "en"])
def test_404_and_403_are_the_platforms_in_the_chosen_language(
    client: Any, org1: Any, language: str
) -> None:
    client.cookies["django_language"] = language
    with translation.override(language):
        not_found, no_access = (
            translation.gettext("Page not found"),
            translation.gettext("No access"),
        )
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert _lang_and_title(page.content.decode()) == (language, f"{not_found} · fitplatform")
    client.force_login(org1.therapist_a)
    page = client.get("/policy/log/")
    assert page.status_code == 403
    assert _lang_and_title(page.content.decode()) == (language, f"{no_access} · fitplatform")


@pytest.mark.parametrize("language", ["da", "en"])
def test_400_and_500_are_the_platforms_without_a_request_context(language: str) -> None:
    request = RequestFactory().get("/")
    with translation.override(language):
        wrong = translation.gettext("Something went wrong")
        unreadable = translation.gettext("The request could not be read")
        server = defaults.server_error(request).content.decode()
        bad = defaults.bad_request(request, SuspiciousOperation()).content.decode()
    assert _lang_and_title(server) == (language, f"{wrong} · fitplatform")
    assert _lang_and_title(bad) == (language, f"{unreadable} · fitplatform")
    # No form: without a request there is no CSRF token for one (e.g. the language switch).
    assert "<form" not in server and "<form" not in bad
