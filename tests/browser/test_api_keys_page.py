"""The API-key page in real headless Chromium at iPad portrait width (review round 8,
finding 4; the HTML structure is tested in tests/datapolicy/test_review_round8.py).

Set FIT_SCREENSHOT_DIR to keep a screenshot of the form."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]


# As the other browser tests: serialized rollback (content types restored, not duplicated).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_api_key_scopes_on_an_ipad(live_server: Any, settings: Any) -> None:
    """In real Chromium at iPad portrait width: each checkbox on the line of its label,
    the whole label a touch target, the two scopes side by side."""
    from django.urls import reverse

    from tests.conftest import make_org

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    org = make_org("alpha")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 810, "height": 1080}, locale="da-DK")
            page.goto(live_server.url + "/login/")
            page.fill("#id_username", org.owner.username)
            page.fill("#id_password", "pw")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.goto(live_server.url + reverse("api_keys_page"))
            labels = page.locator("fieldset label.check")
            assert labels.count() == 2
            boxes = []
            for i in range(2):
                label = labels.nth(i)
                lb = label.bounding_box()
                cb = label.locator("input").bounding_box()
                assert lb is not None and cb is not None
                assert lb["height"] >= 44  # a touch target
                assert cb["width"] < 60  # not stretched over the row
                # The box is on the text's line: vertically inside the label's row.
                assert lb["y"] <= cb["y"] and cb["y"] + cb["height"] <= lb["y"] + lb["height"]
                boxes.append(lb)
            assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2  # side by side
            shots = os.environ.get("FIT_SCREENSHOT_DIR")
            if shots:
                page.locator("form:has(fieldset)").screenshot(path=f"{shots}/api-keys-ipad.png")
        finally:
            browser.close()
