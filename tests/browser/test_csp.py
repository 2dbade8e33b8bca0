"""The Content-Security-Policy in a real browser: every kind of page works under it.

The policy (settings ``CONTENT_SECURITY_POLICY``) allows scripts only from our own static
files. Chromium reports each blocked script, style or image as a
``securitypolicyviolation`` event; an init script collects them on every page, and the
test visits each role's pages (the graph and the dashboards drawn by plotly, the client's
form, the Django admin, the import page, Swagger UI) and requires none, and that what
the scripts draw is there. A test that a policy which blocks something is noticed
(``test_a_blocked_inline_script_is_reported``) keeps the collector honest.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Page, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]

COLLECT = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || ""));
});
"""


def _login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def _visit(page: Page, url: str, wait_for: str | None = None) -> list[str]:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    if wait_for:
        page.wait_for_selector(wait_for, timeout=15000)
    page.wait_for_load_state("networkidle")
    return list(page.evaluate("window.__csp"))


@pytest.fixture
def new_page() -> Any:
    """A page in a fresh browser context (its own cookies: one login each)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)

        def make() -> Page:
            ctx = browser.new_context(viewport={"width": 1180, "height": 820}, locale="da-DK")
            ctx.add_init_script(COLLECT)
            return ctx.new_page()

        try:
            yield make
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_kind_of_page_works_under_the_policy(
    live_server: Any, settings: Any, new_page: Any
) -> None:
    from tests.conftest import make_episode, make_org, record

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    org = make_org("alpha")
    episode = make_episode(org, code="CS-1001")
    today = dt.date.today()
    for weeks, ors, srs in [(4, "14.0", "33.0"), (3, "17.5", "36.0"), (2, "21.0", "38.0")]:
        record(episode, today - dt.timedelta(weeks=weeks), ors=ors, srs=srs)
    base = live_server.url
    violations: dict[str, list[str]] = {}

    def visit(page: Page, path: str, wait_for: str | None = None) -> None:
        found = _visit(page, base + path, wait_for)
        if found:
            violations[path] = found

    page = new_page()
    _login(page, base, org.therapist_a.username)
    visit(page, "/clients/")
    # The client's graph is drawn by plotly (graph.js): its SVG must be there.
    visit(page, f"/clients/episodes/{episode.pk}/", wait_for="#graph .main-svg")
    visit(page, f"/measures/episodes/{episode.pk}/paper/")
    # The dashboards' figures are drawn by charts.js.
    visit(page, "/stats/mine/", wait_for="[data-figure] .main-svg")
    # Swagger UI starts from a script file (the split view), reads the schema and draws.
    visit(page, "/api/docs/", wait_for=".swagger-ui .information-container")
    # The client's form on the iPad (clientmode.js, scale.js): its marks are drawn by script.
    page.goto(f"{base}/clients/episodes/{episode.pk}/")
    page.click("a[href$='/session/new/']")
    page.click("button.primary[type=submit]")
    page.wait_for_url(base + "/measures/client/")
    page.wait_for_selector(".scale-hit")
    found = list(page.evaluate("window.__csp"))
    if found:
        violations["/measures/client/"] = found
    page.context.close()

    for user, paths in [
        (org.owner, ["/admin/", "/admin/datapolicy/unit/", "/measures/import/", "/api-keys/"]),
        (org.dp_admin, ["/policy/log/", "/policy/settings/"]),
        (org.leader, ["/stats/", f"/stats/unit/{org.unit.pk}/"]),
        (org.analyst, ["/stats/organisation/", "/stats/benchmark/"]),
    ]:
        page = new_page()
        _login(page, base, user.username)
        for path in paths:
            visit(page, path, "[data-figure] .main-svg" if path == "/stats/benchmark/" else None)
        page.context.close()

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
