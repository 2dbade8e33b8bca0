"""The Content-Security-Policy in a real browser: every kind of page works under it.

The policy (settings ``CONTENT_SECURITY_POLICY``) allows scripts only from our own static
files. Chromium reports each blocked script, style or image as a
``securitypolicyviolation`` event; an init script collects them on every page, and the
test visits every kind of page as the persona who sees it (``tests/browser/tour.py``: the
graph and the dashboards drawn by plotly, the client's form, the Django admin, the
import page, Swagger UI, the error pages, ...) and requires none, and that what the
scripts draw is there. A test that a policy which blocks something is noticed
(``test_a_blocked_inline_script_is_reported``) keeps the collector honest.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Page, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM
from tests.browser.tour import make_scene, tour, walk

pytestmark = [pytest.mark.browser]

COLLECT = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || ""));
});
"""


@pytest.fixture
def new_page() -> Any:
    """A page in a fresh browser context (its own cookies: one login each)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)

        def make() -> Page:
            return _context(browser).new_page()

        try:
            yield make
        finally:
            browser.close()


def _context(browser: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1180, "height": 820}, locale="da-DK")
    ctx.add_init_script(COLLECT)
    return ctx


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_kind_of_page_works_under_the_policy(live_server: Any, settings: Any) -> None:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    legs = tour(make_scene())
    base = live_server.url
    violations: dict[str, list[str]] = {}
    visited = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for _leg, stop, page, response in walk(browser, base, legs, context=_context):
                visited += 1
                if response is not None:
                    policy = response.headers.get("content-security-policy") or ""
                    assert "script-src 'self'" in policy, stop.path
                found = list(page.evaluate("window.__csp"))
                if found:
                    violations[stop.name] = found
        finally:
            browser.close()

    assert visited == sum(len(leg.stops) for leg in legs)
    assert violations == {}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_blocked_inline_script_is_reported(
    live_server: Any, settings: Any, new_page: Any
) -> None:
    """The collector sees a violation when there is one (else the test above proves
    nothing): an inline script on a page served with the policy is blocked and reported."""
    page = new_page()
    page.goto(live_server.url + "/login/")
    page.evaluate(
        """() => { var s = document.createElement("script");
                   s.textContent = "window.__ran = true;"; document.body.appendChild(s); }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran === undefined")
    assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))
