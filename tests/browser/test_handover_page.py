"""The handover page on an iPad (Chromium, touch): a unit leader ticks two colleagues
by tapping their names and hands a departed colleague's open episodes to them.

Checks what the leader's finger and eyes need: every choice is a touch-sized row whose
text ticks the box, each shows the colleague's open episodes in the unit, nothing runs
off the screen, no client code is shown; and that the episodes are spread as promised.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import connections

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Page, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]

TOUCH = 44  # the smallest finger target we accept (Apple's HIG)
CODES = ("HB-1001", "HB-1002", "HB-1003")


@pytest.fixture
def plain_http(settings: Any) -> None:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.mark.parametrize("viewport", [(768, 1024), (1180, 820)], ids=["portrait", "landscape"])
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_a_leader_ticks_two_colleagues_on_the_ipad(
    live_server: Any, viewport: tuple[int, int]
) -> None:
    """Three single clients of Therapist_c to Therapist_a and Therapist_e (none open
    before). By hand: HB-1001 → A (0, A by name), HB-1002 → E (0 < 1), HB-1003 → A
    (1 = 1, A by name). So A gets 2 and E gets 1; Therapist_b, not ticked, none."""
    from clients.models import Episode
    from tests.conftest import add_therapist, make_episode, make_org

    org = make_org("alpha")
    c = add_therapist(org, "therapist_c")
    e = add_therapist(org, "therapist_e")
    episodes = [make_episode(org, therapist=c, code=code) for code in CODES]
    c.is_active = False
    c.save(update_fields=["is_active"])

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            message = _tick_two_and_hand_over(browser, live_server.url, org.leader, viewport)
        finally:
            browser.close()
            # The connection Django opened inside Playwright's event loop (the live
            # server's session lookups) is closed, or the test database cannot be dropped.
            connections.close_all()
    assert "Therapist_a" in message and "Therapist_e" in message, message
    assert "Therapist_b" not in message
    owners = dict(
        Episode.objects.for_org(org.org)
        .filter(pk__in=[ep.pk for ep in episodes])
        .values_list("client__code", "therapist_id")
    )
    assert owners == {"HB-1001": org.therapist_a.pk, "HB-1002": e.pk, "HB-1003": org.therapist_a.pk}


def _tick_two_and_hand_over(browser: Any, base: str, leader: Any, viewport: Any) -> str:
    """Log in, check the page, tick Therapist_a and Therapist_e, submit; the message."""
    width, height = viewport
    ctx = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="da-DK",
    )
    page: Page = ctx.new_page()
    page.goto(base + "/login/")
    page.fill("#id_username", leader.username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    page.goto(base + "/clients/handover/")

    text = page.locator("body").inner_text()
    for code in CODES:
        assert code not in text
    labels = page.locator("label.check")
    assert labels.count() == 3  # the unit's active therapists: A, B, E
    for i in range(3):
        box = labels.nth(i).bounding_box()
        assert box is not None and box["height"] >= TOUCH, (viewport, box)
        assert "(0 " in labels.nth(i).inner_text()  # each shows their open episodes now
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, (viewport, overflow)

    # Tap the names (the label's text, away from the small box itself).
    for name in ("Therapist_a", "Therapist_e"):
        label = page.locator("label.check", has_text=name)
        label.scroll_into_view_if_needed()
        box = label.bounding_box()
        assert box is not None
        page.touchscreen.tap(box["x"] + box["width"] - 12, box["y"] + box["height"] / 2)
        assert label.locator("input").is_checked(), name
    assert not page.locator("label.check", has_text="Therapist_b").locator("input").is_checked()
    page.locator("button.primary[type=submit]").last.tap()
    page.wait_for_selector(".messages li")
    assert page.locator("label.check").count() == 0  # nothing left to hand over
    message = page.locator(".messages li").first.inner_text()
    ctx.close()
    return message
