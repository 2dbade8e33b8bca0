"""Review 10: the therapist's iPad workflow at the iPad viewports, in Chromium with touch.

The sizes are the iPads' CSS viewports in portrait (768×1024 iPad mini and 9.7", 810×1080
iPad 10.2", 820×1180 iPad Air) and the same turned to landscape. Each test proves one
defect found in the review fixed; its docstring says what was wrong before.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser]

PORTRAITS = [(768, 1024), (810, 1080), (820, 1180)]
VIEWPORTS = PORTRAITS + [(h, w) for w, h in PORTRAITS]
PIN = "2468"
TOUCH = 44  # the smallest finger target we accept (Apple's HIG)

# The region a tap on the link hits: the link itself, or the box its ::after covers
# (the account block stretches its link over the name and the organisation).
TAP_REGION = """(a) => {
  const after = getComputedStyle(a, '::after');
  const host = after.position === 'absolute' && after.content !== 'none' ? a.offsetParent : a;
  const r = host.getBoundingClientRect();
  const hits = [[r.left + r.width / 2, r.top + 3], [r.left + r.width / 2, r.bottom - 3],
                [r.left + 3, r.top + r.height / 2], [r.right - 3, r.top + r.height / 2]]
    .map(([x, y]) => document.elementFromPoint(x, y))
    .map((el) => !!el && a.contains(el));
  return {x: r.left, y: r.top, width: r.width, height: r.height, allHit: hits.every(Boolean)};
}"""

# Every box in the top bar must lie inside the viewport (nothing cut off to the right).
TOPBAR_OVERFLOW = """() => {
  const W = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('.topbar, .topbar *')) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > W + 0.5 || r.left < -0.5)) out.push(el.tagName + '.' + el.className);
  }
  return {out, scroll: document.documentElement.scrollWidth, width: W};
}"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        # Chromium would take a sideways swipe that the page lets through as "Back"
        # (iPad Safari does so only from the screen's edge): off, as on the iPad.
        args = [*ARGS, "--disable-features=OverscrollHistoryNavigation"]
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield b
        finally:
            b.close()
            # The ORM calls ran in Playwright's greenlet: close its connection so the test
            # database can be dropped.
            connections.close_all()


@pytest.fixture
def plain_http(settings: Any) -> None:
    # The live server speaks plain HTTP.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def _ipad(browser: Browser, width: int, height: int) -> Page:
    ctx = browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="da-DK",
    )
    return ctx.new_page()


def _login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/clients/")


def _long_names(org: Any) -> Any:
    """A therapist and an organisation with realistic long names (the worst case)."""
    therapist = org.therapist_a
    therapist.first_name, therapist.last_name = "Anne-Mette", "Kristoffersen Holm"
    therapist.save()
    org.org.name = "Helsingør Kommune"
    org.org.save()
    return therapist


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_the_account_link_is_reachable_at_every_ipad_size(
    live_server: Any, browser: Browser
) -> None:
    """It was hidden at 820 px and below (iPad portrait), and 22 px high above."""
    from django.utils.translation import gettext

    from tests.conftest import make_org

    org = make_org("alpha")
    therapist = _long_names(org)
    base = live_server.url
    for width, height in VIEWPORTS:
        size = f"{width}x{height}"
        page = _ipad(browser, width, height)
        _login(page, base, therapist.username)
        link = page.locator(".topbar a.user")
        assert link.is_visible(), size
        region = page.evaluate(TAP_REGION, link.element_handle())
        assert region["width"] >= TOUCH and region["height"] >= TOUCH, (size, region)
        assert region["allHit"], (size, region)
        # The top bar stays one row and nothing in it leaves the screen.
        overflow = page.evaluate(TOPBAR_OVERFLOW)
        assert overflow["out"] == [] and overflow["scroll"] <= overflow["width"], (size, overflow)
        nav = page.locator(".topbar .mainnav").bounding_box()
        who = page.locator(".topbar .who").bounding_box()
        assert nav is not None and who is not None
        assert abs(nav["y"] - who["y"]) < 8, (size, nav, who)  # side by side, not wrapped
        page.touchscreen.tap(region["x"] + region["width"] / 2, region["y"] + region["height"] - 6)
        page.wait_for_url(base + "/password/change/")
        assert page.locator("h1").inner_text() == gettext("Change password")
        page.context.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_in_client_mode_the_account_stays_out_of_reach(live_server: Any, browser: Browser) -> None:
    from measures.clientmode import user_pin_set
    from tests.conftest import make_episode, make_org

    org = make_org("alpha")
    user_pin_set(actor=org.therapist_a, pin=PIN)
    org.therapist_a.save()
    episode = make_episode(org, code="KM-1001")
    base = live_server.url
    page = _ipad(browser, 768, 1024)
    _login(page, base, org.therapist_a.username)
    page.goto(f"{base}/measures/episodes/{episode.pk}/session/new/")
    page.click("button.primary[type=submit]")
    page.wait_for_url(base + "/measures/client/")
    assert page.locator("a.user, a[href$='/password/change/']").count() == 0
    page.goto(base + "/password/change/")
    assert page.url == base + "/measures/client/"


def _episode_with_history(org: Any, weeks: int = 10) -> Any:
    from tests.conftest import make_episode, record

    episode = make_episode(org, code="GR-1001", started_on=dt.date.today() - dt.timedelta(weeks=20))
    today = dt.date.today()
    for n in range(weeks, 0, -1):
        record(episode, today - dt.timedelta(weeks=n), ors=f"{12 + n / 2:.1f}", srs="35.0")
    return episode


def _swipe(page: Page, x: float, y: float, dx: float, dy: float) -> None:
    """A finger moving over the screen (real touch events, through the compositor)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        point = {"x": x + dx * step / 10, "y": y + dy * step / 10}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(600)


X_RANGE = "JSON.stringify(document.getElementById('graph')._fullLayout.xaxis.range)"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_a_finger_on_the_graph_scrolls_the_page_and_zooms_nothing(
    live_server: Any, browser: Browser
) -> None:
    """The graph fills most of the portrait screen. Before: a vertical swipe that started
    on it did not scroll the page, and a sideways one zoomed the dates (sessions vanished;
    plotly then said "Double-click to zoom back out", in English, on a device without a
    double click)."""
    from tests.conftest import make_org

    org = make_org("alpha")
    episode = _episode_with_history(org)
    base = live_server.url
    page = _ipad(browser, 768, 1024)
    _login(page, base, org.therapist_a.username)
    page.goto(f"{base}/clients/episodes/{episode.pk}/")
    page.wait_for_selector("#graph .main-svg")
    box = page.locator("#graph").bounding_box()
    assert box is not None
    before = page.evaluate(X_RANGE)
    # Sideways over the ORS panel: the dates stay.
    _swipe(page, box["x"] + 120, box["y"] + box["height"] * 0.3, 320, 20)
    assert page.evaluate(X_RANGE) == before
    assert "Double-click" not in (page.locator("#graph").text_content() or "")
    # Upwards from the lower part of the graph: the page scrolls.
    page.evaluate("window.scrollTo(0, 0)")
    _swipe(page, box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75, 0, -300)
    assert page.evaluate("window.scrollY") > 100
    assert page.evaluate(X_RANGE) == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_a_tapped_point_says_session_date_and_value_in_danish(
    live_server: Any, browser: Browser
) -> None:
    """Before: "(nov 12, 2026, 14,2) 14,2 ORS" (plotly's own text, English date order)."""
    from django.utils.formats import date_format

    from measures.models import Session
    from tests.conftest import make_org

    org = make_org("alpha")
    episode = _episode_with_history(org, weeks=3)
    first = Session.objects.for_org(org.org).filter(episode=episode).order_by("date").first()
    assert first is not None
    base = live_server.url
    page = _ipad(browser, 820, 1180)
    _login(page, base, org.therapist_a.username)
    page.goto(f"{base}/clients/episodes/{episode.pk}/")
    page.wait_for_selector("#graph .main-svg")
    point = page.locator("#graph .scatterlayer .trace .points path").first
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    assert box is not None
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#graph .hoverlayer .hovertext")
    text = page.locator("#graph .hoverlayer").text_content() or ""
    assert date_format(first.date) in text  # e.g. "12. november 2026"
    assert "ORS 13,5" in text and str(first.number) in text
    assert f"{first.date:%b} {first.date.day},".lower() not in text.lower()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_the_scale_lines_tell_a_screen_reader_their_ends_and_that_they_are_unmarked(
    live_server: Any, browser: Browser
) -> None:
    """Before: no value at all until marked (read as the midpoint), and nothing said what
    the ends of a line mean."""
    from django.utils.translation import gettext

    from tests.conftest import make_episode, make_org

    org = make_org("alpha")
    episode = make_episode(org, code="SR-1001")
    base = live_server.url
    page = _ipad(browser, 810, 1080)
    _login(page, base, org.therapist_a.username)
    page.goto(f"{base}/measures/episodes/{episode.pk}/session/new/")
    page.click("button.primary[type=submit]")
    page.wait_for_url(base + "/measures/client/")
    hits = page.locator(".scale-hit")
    assert hits.count() == 4
    for i in range(4):
        hit = hits.nth(i)
        assert hit.get_attribute("aria-valuetext") == gettext("Not marked")
        described = page.locator("#" + (hit.get_attribute("aria-describedby") or "missing"))
        ends = [
            hit.locator("xpath=../div[contains(@class,'scale-ends')]/span").nth(k).inner_text()
            for k in (0, 1)
        ]
        description = described.inner_text()
        assert ends[0] in description and ends[1] in description, (description, ends)
    track = hits.nth(0).locator(".scale-track").bounding_box()
    assert track is not None
    page.touchscreen.tap(track["x"] + track["width"] * 0.64, track["y"] + 2)
    assert hits.nth(0).get_attribute("aria-valuetext") == "6,4 cm"
    assert hits.nth(0).get_attribute("aria-valuenow") == "6.4"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_top_bar_and_login_links_are_finger_sized(live_server: Any, browser: Browser) -> None:
    """Before: the brand link 29 px high, a short menu word ("Start") 39 px wide, the
    login page's "Forgotten your password" link 19 px high."""
    from tests.conftest import make_org

    org = make_org("alpha")
    base = live_server.url
    page = _ipad(browser, 768, 1024)
    page.goto(base + "/login/")
    forgot = page.locator("a[href$='/password/reset/']").bounding_box()
    assert forgot is not None and forgot["height"] >= TOUCH, forgot
    _login(page, base, org.therapist_a.username)
    page.goto(base + "/policy/grants/")  # its menu has the short "Start"
    small = page.evaluate(
        """(min) => [...document.querySelectorAll('.topbar a, .topbar button')]
             .filter(el => el.offsetParent !== null && !el.closest('.account'))
             .map(el => [el.textContent.trim(), el.getBoundingClientRect()])
             .filter(([, r]) => r.width < min || r.height < min)
             .map(([t, r]) => t + ' ' + Math.round(r.width) + 'x' + Math.round(r.height))""",
        TOUCH,
    )
    assert small == []


@pytest.mark.django_db
def test_a_session_without_an_srs_shows_a_dash_as_the_caseload_does(org1: Any, client: Any) -> None:
    """Before: today's session, ORS given and SRS still to come, had an empty SRS cell."""
    from tests.conftest import make_episode, record

    episode = make_episode(org1)
    session = record(episode, dt.date.today(), ors="21.0")
    client.force_login(org1.therapist_a)
    html = client.get(f"/clients/episodes/{episode.pk}/").content.decode()
    row = html.split(f'data-session="{session.pk}"', 1)[1].split("</tr>", 1)[0]
    cells = [c.split(">", 1)[1].split("</td>", 1)[0] for c in row.split("<td")[1:]]
    assert cells[2] == "21,0" and cells[3] == "–", cells


@pytest.mark.django_db
def test_the_paper_form_names_each_field_with_its_scale(org1: Any, client: Any) -> None:
    """Before: "Item 1" twice (ORS and SRS); a screen reader on an iPad does not always
    read the fieldset's legend, so the two were the same field to the ear."""
    import re

    from tests.conftest import make_episode

    episode = make_episode(org1)
    client.force_login(org1.therapist_a)
    html = client.get(f"/measures/episodes/{episode.pk}/paper/").content.decode()
    labels = {}
    for target, text in re.findall(r'<label for="(id_[os]rs_\w+)">(.*?)</label>', html):
        labels[target] = re.sub(r"<[^>]+>", "", text).strip()
    assert len(labels) == 10
    for target, text in labels.items():
        assert text.startswith(target[3:6].upper() + " "), (target, text)
    assert len(set(labels.values())) == 10


@pytest.mark.django_db
def test_the_episode_alerts_are_a_named_group(org1: Any, client: Any) -> None:
    """Before: aria-label on a plain div, which screen readers ignore."""
    from tests.conftest import make_episode

    episode = make_episode(org1)
    client.force_login(org1.therapist_a)
    html = client.get(f"/clients/episodes/{episode.pk}/").content.decode()
    assert '<div class="alerts" role="group" aria-label="' in html


@pytest.mark.django_db
def test_codes_and_user_names_are_not_autocorrected(org1: Any, client: Any) -> None:
    """Before: the iPad's keyboard could "correct" a client code or a user name as it is
    typed (autocorrect and the spelling check are on for text inputs by default)."""
    import re

    page = client.get("/login/").content.decode()
    client.force_login(org1.therapist_a)
    pages = page + "".join(
        client.get(url).content.decode() for url in ("/clients/new/", "/clients/")
    )
    inputs = re.findall(r"<input[^>]*name=\"(?:username|code|q)\"[^>]*>", pages)
    assert len(inputs) == 3
    for tag in inputs:
        assert 'autocorrect="off"' in tag and 'spellcheck="false"' in tag, tag


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("plain_http")
def test_a_finger_on_my_statistics_figure_scrolls_the_page(
    live_server: Any, browser: Browser
) -> None:
    """The therapist's own statistics ("Mine tal") on the iPad, as the client graph: a
    swipe that began on a figure did not scroll the page, a sideways one zoomed it."""
    from tests.conftest import make_org

    org = make_org("alpha")
    _episode_with_history(org)
    base = live_server.url
    page = _ipad(browser, 768, 1024)
    _login(page, base, org.therapist_a.username)
    page.goto(base + "/stats/mine/")
    figure = page.locator("[data-figure]").first
    figure.locator(".main-svg").first.wait_for()
    # The figure 150 px below the top of the screen.
    figure.evaluate("(el) => window.scrollBy(0, el.getBoundingClientRect().top - 150)")
    top = page.evaluate("window.scrollY")
    box = figure.bounding_box()
    assert box is not None and top > 300, (box, top)
    x_range = "(el) => JSON.stringify(el._fullLayout.xaxis.range)"
    before = figure.evaluate(x_range)
    _swipe(page, box["x"] + 100, box["y"] + box["height"] * 0.4, 300, 10)
    assert figure.evaluate(x_range) == before
    # Downwards (back up the page) from the figure.
    _swipe(page, box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.3, 0, 250)
    assert page.evaluate("window.scrollY") < top - 100
