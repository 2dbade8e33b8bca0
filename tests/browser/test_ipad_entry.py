"""The iPad flow in real headless Chromium (Debian's package) with touch.

Log in, create a client, start a session, drag each ORS marker to known positions with
touch events and check the stored values to 0.1, unlock with the PIN (a wrong PIN and
navigating away are refused), see the graph; then in landscape the SRS by tapping and
the keyboard. Writes the screenshots under docs/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connections

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test
# itself are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Page, sync_playwright

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PORTRAIT = {"width": 820, "height": 1180}
LANDSCAPE = {"width": 1180, "height": 820}
PIN = "2468"
ORS_TARGETS = [Decimal("2.5"), Decimal("4.0"), Decimal("6.3"), Decimal("8.8")]
SRS_TAPS = [Decimal("9.0"), Decimal("8.2"), Decimal("8.7"), Decimal("9.4")]


def _reference_data(org: Any) -> None:
    """A year of synthetic episodes of a colleague, so that the ETR band exists."""
    from datapolicy.models import Membership, Role
    from measures.demo import generate
    from measures.management.commands.seed_demo import write_generated

    colleague = org.therapist_b
    unit_id = Membership.objects.for_org(org.org).get(user=colleague, role=Role.THERAPIST).unit_id
    gen = generate(
        np.random.default_rng(7),
        n_episodes=500,
        therapist_keys=np.array([colleague.pk]),
        therapist_units=np.array([unit_id]),
        unit_age_weights={unit_id: (1.0, 0.0, 0.0)},
        today=dt.date.today(),
        years=1.0,
    )
    write_generated(org.org, gen, code_prefix="RF")


def _context(browser: Any, viewport: dict[str, int]) -> Any:
    return browser.new_context(
        viewport=viewport,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="da-DK",
    )


def _login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/clients/")


def _point(page: Page, hit: Any, value: Decimal) -> tuple[float, float]:
    hit.scroll_into_view_if_needed()
    box = hit.locator(".scale-track").bounding_box()
    assert box is not None
    return box["x"] + box["width"] * float(value) / 10.0, box["y"] + box["height"] / 2


def _touch(cdp: Any, kind: str, x: float | None = None, y: float | None = None) -> None:
    points = [] if x is None else [{"x": x, "y": y, "radiusX": 6, "radiusY": 6, "force": 1}]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def _drag(page: Page, cdp: Any, hit: Any, start: Decimal, end: Decimal) -> None:
    x0, y = _point(page, hit, start)
    x1, _y = _point(page, hit, end)
    _touch(cdp, "touchStart", x0, y)
    for step in range(1, 9):
        _touch(cdp, "touchMove", x0 + (x1 - x0) * step / 8, y)
    _touch(cdp, "touchEnd")


def _tap(page: Page, cdp: Any, hit: Any, value: Decimal) -> None:
    x, y = _point(page, hit, value)
    _touch(cdp, "touchStart", x, y)
    _touch(cdp, "touchEnd")


def _unlock(page: Page, pin: str) -> None:
    page.click(".therapist-return a")
    page.wait_for_selector("input[name=secret]")
    page.fill("input[name=secret]", pin)
    page.click("button[type=submit]")


def _items(score: Any) -> list[Decimal]:
    return [Decimal(str(v)) for v in score.items]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ipad_ors_srs_graph_and_client_mode(live_server: Any, settings: Any) -> None:
    from clients.models import Episode
    from measures.clientmode import user_pin_set
    from measures.models import Score, SessionDraft
    from tests.conftest import make_org, record

    # The live server speaks plain HTTP.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    org = make_org("alpha")
    user_pin_set(actor=org.therapist_a, pin=PIN)
    _reference_data(org)
    base = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            # --- Portrait: new client, ORS by dragging, client mode, graph -------------
            ctx = _context(browser, PORTRAIT)
            page = ctx.new_page()
            _login(page, base, org.therapist_a.username)
            page.click("a[href$='/clients/new/']")
            page.fill("#id_code", "IP-2041")
            page.select_option("#id_age_group", "adult")
            page.click("button.primary[type=submit]")
            page.wait_for_selector("h1.client-code")
            episode = Episode.objects.for_org(org.org).get(client__code="IP-2041")
            # Five earlier sessions (as if typed from paper), so the graph has a history.
            today = dt.date.today()
            for weeks, ors, srs in [(5, "14.2", "33.5"), (4, "16.8", "35.0"), (3, "17.5", "37.2")]:
                record(episode, today - dt.timedelta(weeks=weeks), ors=ors, srs=srs)
            record(episode, today - dt.timedelta(weeks=2), ors="21.4", srs="38.1")
            record(episode, today - dt.timedelta(weeks=1), ors="20.9", srs="37.9")

            page.reload()
            page.click("a[href$='/session/new/']")
            page.click("button.primary[type=submit]")
            page.wait_for_url(base + "/measures/client/")
            assert page.locator(".topbar").count() == 0  # no menus in client mode
            assert "IP-2041" not in page.content()
            cdp = ctx.new_cdp_session(page)
            hits = page.locator(".scale-hit")
            assert hits.count() == 4
            assert page.locator("#confirm").is_disabled()
            for i, target in enumerate(ORS_TARGETS):
                # Tap in the middle, then drag the mark to where it belongs.
                _drag(page, cdp, hits.nth(i), Decimal("5.0"), target)
                assert page.input_value(f"#item{i + 1}") == f"{target:.1f}"
            # A mark can be moved again before confirming.
            _drag(page, cdp, hits.nth(0), ORS_TARGETS[0], Decimal("3.1"))
            _drag(page, cdp, hits.nth(0), Decimal("3.1"), ORS_TARGETS[0])
            assert page.locator("#confirm").is_enabled()
            # The marks were autosaved as a draft (an interrupted session is not lost).
            expected_draft = [f"{v:.1f}" for v in ORS_TARGETS]
            for _ in range(30):
                draft = SessionDraft.objects.for_org(org.org).filter(episode=episode).first()
                if draft is not None and draft.data.get("items") == expected_draft:
                    break
                page.wait_for_timeout(100)
            assert draft is not None and draft.data["items"] == expected_draft
            # The line is drawn 10 cm long (378 CSS px at 96 dpi).
            width = hits.nth(0).locator(".scale-track").bounding_box()["width"]  # type: ignore[index]
            assert abs(width - 377.95) < 1.0
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(SHOTS / "entry-portrait.png"), full_page=True)
            page.click("#confirm")
            page.wait_for_selector(".handback")

            ors = Score.objects.for_org(org.org).get(
                session__episode=episode, session__date=today, kind="outcome"
            )
            assert _items(ors) == ORS_TARGETS
            assert ors.total == sum(ORS_TARGETS)
            assert not SessionDraft.objects.for_org(org.org).filter(episode=episode).exists()

            # Client mode holds: another page, and Back, lead back to the form.
            page.goto(base + "/clients/")
            assert page.url == base + "/measures/client/"
            page.goto(base + f"/clients/episodes/{episode.pk}/")
            assert page.url == base + "/measures/client/"
            page.go_back()
            assert "/measures/client/" in page.url
            # A wrong PIN is refused.
            _unlock(page, "1111")
            assert page.locator(".error").count() >= 1
            page.goto(base + "/clients/")
            assert page.url == base + "/measures/client/"
            # The right PIN: the therapist is back, on the graph.
            _unlock(page, PIN)
            page.wait_for_url(f"{base}/clients/episodes/{episode.pk}/#graph-card")
            page.wait_for_selector("#graph .main-svg")
            assert page.locator("#graph .scatterlayer .trace").count() >= 4
            assert page.locator("#graph .legend").count() == 1
            page.locator(".graph-card").screenshot(path=str(SHOTS / "graph-portrait.png"))
            ctx.close()

            # --- Landscape: the SRS at the end of the session (tap + keyboard) ---------
            ctx = _context(browser, LANDSCAPE)
            page = ctx.new_page()
            _login(page, base, org.therapist_a.username)
            page.goto(f"{base}/clients/episodes/{episode.pk}/")
            page.click("form[action$='/srs/'] button")
            page.wait_for_url(base + "/measures/client/")
            cdp = ctx.new_cdp_session(page)
            hits = page.locator(".scale-hit")
            for i, value in enumerate(SRS_TAPS):
                _tap(page, cdp, hits.nth(i), value)
            # Keyboard: +0.1 with the arrow, +1.0 with Shift+arrow, -0.1 back.
            hits.nth(1).focus()
            page.keyboard.press("Shift+ArrowRight")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("ArrowRight")
            assert hits.nth(1).get_attribute("aria-valuenow") == "9.3"
            page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
            page.screenshot(path=str(SHOTS / "entry-landscape.png"), full_page=True)
            page.click("#confirm")
            page.wait_for_selector(".handback")
            srs = Score.objects.for_org(org.org).get(
                session__episode=episode, session__date=today, kind="alliance"
            )
            expected_srs = [SRS_TAPS[0], Decimal("9.3"), SRS_TAPS[2], SRS_TAPS[3]]
            assert _items(srs) == expected_srs
            _unlock(page, PIN)
            page.wait_for_selector("#graph .main-svg")
            assert "ETR" in (page.locator("#graph .legend").text_content() or "")
            page.locator(".graph-card").screenshot(path=str(SHOTS / "graph-landscape.png"))
            ctx.close()
        finally:
            browser.close()
            # The ORM calls above ran inside Playwright's greenlet, whose context has its
            # own database connection: close it here, or the test database cannot be
            # dropped at the end of the run.
            connections.close_all()
