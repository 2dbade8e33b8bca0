"""The account forms submitted in real Chromium: a form posted from a page that sends
``Referrer-Policy: no-referrer`` carries ``Origin: null``, which Django's CSRF check
refuses — the password-change and PIN forms failed this way in every real browser while
the test client (which sends no Origin) passed. The client-mode unlock is submitted in
tests/browser/test_ipad_entry.py."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from django.db import connections
from playwright.sync_api import sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]
NEW = "Havregrød-og-kaffe-42"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_password_change_and_pin_forms_work_in_chromium(live_server: Any, settings: Any) -> None:
    from datapolicy.models import User
    from tests.conftest import make_org

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    org = make_org("alpha")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 810, "height": 1080}, locale="da-DK")
            page.goto(live_server.url + "/login/")
            page.fill("#id_username", org.therapist_a.username)
            page.fill("#id_password", "pw")
            page.click("button[type=submit]")
            page.wait_for_load_state()

            # The client-mode PIN (the page asks for the password as well).
            page.goto(live_server.url + "/measures/pin/")
            page.fill("input[name=pin]", "4711")
            page.fill("input[name=pin_again]", "4711")
            page.fill("input[name=password]", "pw")
            with page.expect_navigation():
                page.click("form button[type=submit]")
            assert "CSRF" not in page.content()
            user = User.objects.get(pk=org.therapist_a.pk)
            assert user.client_mode_pin, "the PIN form was refused"

            # The password.
            page.goto(live_server.url + "/password/change/")
            page.fill("#id_old_password", "pw")
            page.fill("#id_new_password1", NEW)
            page.fill("#id_new_password2", NEW)
            with page.expect_navigation():
                page.click("form button[type=submit]")
            assert page.url.endswith("/password/change/done/"), page.url
            assert User.objects.get(pk=org.therapist_a.pk).check_password(NEW)
        finally:
            browser.close()
            connections.close_all()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_language_switch_works_on_the_page_of_an_unusable_reset_link(
    live_server: Any, settings: Any
) -> None:
    """Review round 11: the "link cannot be used" page was drawn at the token's URL with
    ``no-referrer``, so its language switch posted ``Origin: null`` and was refused (CSRF,
    403). It is now at a URL without the token; no request carries the token in a
    Referer, the redirect from the token's URL included."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from datapolicy.models import User
    from tests.conftest import make_org

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    org = make_org("alpha")
    user = User.objects.get(pk=org.therapist_a.pk)
    token = default_token_generator.make_token(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    user.set_password(NEW)  # the link is used up: the token no longer checks out
    user.save()
    referers: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 810, "height": 1080}, locale="da-DK")
            page.on("request", lambda req: referers.append(req.headers.get("referer", "")))
            page.goto(f"{live_server.url}/password/reset/{uid}/{token}/")
            assert "Linket kan ikke bruges" in page.content()
            with page.expect_navigation() as nav:
                page.click("form.lang button[name=language]")
            response = nav.value
            assert response is not None and response.status == 200, "the switch was refused"
            assert "CSRF" not in page.content()
            assert "The link cannot be used" in page.content()
            # The page is at an address without the token (also after the switch).
            assert page.url.endswith("/password/reset/invalid/"), page.url
            assert token not in page.content()
            # A same-origin link from the page still sends no token anywhere.
            with page.expect_navigation():
                page.click("a.button.primary")
            assert page.url.endswith("/password/reset/"), page.url
        finally:
            browser.close()
            connections.close_all()
    assert referers and not [r for r in referers if token in r]
