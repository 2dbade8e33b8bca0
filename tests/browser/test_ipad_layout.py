"""Every kind of page fits an iPad and is made for fingers, in both orientations.

The shared tour (``tests/browser/tour.py``: every kind of page, as the persona who sees
it) is walked in Danish at the two iPad viewports, 1024x768 (landscape) and 768x1024
(portrait), with touch, and each page is checked for what the iPad review found or must
keep true:

* nothing is wider than the screen: no sideways scrolling of the page (a wide table
  scrolls in its own box, ``.scroll``). Measured against the layout viewport
  (``clientWidth``): in a mobile browser ``innerWidth`` grows with a too-wide page;
* every control a finger must hit (buttons, the menu's links, links styled as buttons or
  standing on their own, a link that is a table cell's whole content, form fields, a
  checkbox or radio with its label, a figure's "values" toggle, the client's scale
  lines) is at least 44x44 CSS px (Apple's HIG);
* every form field's text is at least 16 px (iOS Safari zooms the page into a field
  with smaller text, and the page then sits askew until zoomed out by hand);
* a whole-number field asks the on-screen keyboard for digits (``inputmode``), and a
  client code or user name is not "corrected" or capitalised by it;
* a dashboard figure's legend does not lie over its x-axis title;
* the client's graph has no text under 16 px (the client reads it from beside the
  therapist, an arm's length from the iPad).

What it does not check: Safari itself (Chromium stands in for it; see docs/accessibility.md),
the Django admin and Swagger UI (not our pages), and taste. ``test_the_checks_see_...``
proves that each check finds what it looks for.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM
from tests.browser.tour import Leg, make_scene, tour, walk

pytestmark = [pytest.mark.browser]

VIEWPORTS = {"landscape": (1024, 768), "portrait": (768, 1024)}
TOUCH = 44  # CSS px, the smallest finger target (Apple's Human Interface Guidelines)
FIELD_FONT = 16  # CSS px: below it iOS Safari zooms into the focused field
# Not our pages: Django's admin and Swagger UI bring their own styles.
NOT_OURS = {"Django admin", "Django admin: units", "API docs"}

# What a finger must hit, and the box it hits: a checkbox or radio by its label, a link
# whose ::after covers its block (the account in the top bar) by that block.
CHECK_PAGE = """([touch, font]) => {
  // The layout viewport: in a mobile browser innerWidth grows with a too-wide page (the
  // page is shown zoomed out), so "scrollWidth <= innerWidth" would always hold.
  const W = document.documentElement.clientWidth;
  const shown = (el) => {
    const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden";
  };
  const hitBox = (el) => {
    if (el.type === "checkbox" || el.type === "radio") {
      const label = el.closest("label")
        || (el.id && document.querySelector(`label[for="${el.id}"]`));
      if (label) return label.getBoundingClientRect();
    }
    const after = getComputedStyle(el, "::after");
    if (after.position === "absolute" && after.content !== "none" && el.offsetParent) {
      return el.offsetParent.getBoundingClientRect();
    }
    return el.getBoundingClientRect();
  };
  const name = (el) => {
    const text = el.matches("input, select, textarea") ? el.name || el.id : el.innerText;
    const kind = el.tagName.toLowerCase() + (el.type ? `[${el.type}]` : "");
    return `${kind} "${text.trim().slice(0, 40)}"`;
  };
  const targets = document.querySelectorAll([
    "button", "input:not([type=hidden])", "select", "textarea", "summary", "[role=slider]",
    ".topbar a[href]", "a.button", "a.textlink", "main p > a[href]:only-child",
    "main p > a[href]:last-child", "td > a[href]:only-child", "nav a[href]",
  ].join(", "));
  const small = [];
  for (const el of targets) {
    if (!shown(el)) continue;
    const r = hitBox(el);
    if (r.width < touch - 0.5 || r.height < touch - 0.5) {
      small.push(`${name(el)} ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  const fields = [...document.querySelectorAll("input, select, textarea")].filter(
    (el) => shown(el) && !["checkbox", "radio", "hidden", "range"].includes(el.type));
  const tinyText = fields.filter((el) => parseFloat(getComputedStyle(el).fontSize) < font)
    .map((el) => `${name(el)} ${getComputedStyle(el).fontSize}`);
  const keyboard = fields.filter((el) => el.type === "number"
      && !["numeric", "decimal"].includes(el.getAttribute("inputmode"))).map(name)
    .concat(fields.filter((el) => /^(username|code|client_code|q)$/.test(el.name)
      && (el.getAttribute("autocorrect") !== "off" || el.getAttribute("spellcheck") !== "false"
          || !["none", "characters"].includes(el.getAttribute("autocapitalize"))))
      .map((el) => `${name(el)} is autocorrected or capitalised`));
  const overlap = (a, b) =>
    a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const legends = [];
  for (const fig of document.querySelectorAll("[data-figure]")) {
    const legend = fig.querySelector(".legend");
    if (!legend) continue;
    for (const title of fig.querySelectorAll(".g-xtitle text, .g-x2title text")) {
      if (overlap(legend.getBoundingClientRect(), title.getBoundingClientRect())) {
        legends.push(`figure ${fig.dataset.figure}: its legend lies over "${title.textContent}"`);
      }
    }
  }
  // The client's graph is read from beside the therapist: no text under the field size.
  const graphText = [...new Set([...document.querySelectorAll("#graph text")]
    .filter((t) => t.textContent.trim() && parseFloat(getComputedStyle(t).fontSize) < font)
    .map((t) => `"${t.textContent.trim()}" ${getComputedStyle(t).fontSize}`))].slice(0, 5);
  return {
    graphText,
    wide: document.scrollingElement.scrollWidth > W
      ? [`page ${document.scrollingElement.scrollWidth} px wide in ${W}`] : [],
    small, tinyText, keyboard, legends,
  };
}"""


def problems_on(page: Page, where: str) -> list[str]:
    """What is wrong with the page open in ``page`` for an iPad, one line each."""
    found = page.evaluate(CHECK_PAGE, [TOUCH, FIELD_FONT])
    kinds = {
        "wide": "wider than the screen",
        "small": "smaller than a finger",
        "tinyText": f"field text under {FIELD_FONT} px",
        "keyboard": "wrong keyboard",
        "legends": "legend over the axis title",
        "graphText": f"client graph text under {FIELD_FONT} px",
    }
    return [f"{where}: {kinds[kind]}: {item}" for kind in kinds for item in found[kind]]


def _ipad(width: int, height: int) -> Any:
    def make(browser: Browser) -> Any:
        return browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="da-DK",
        )

    return make


def _ours(legs: list[Leg]) -> list[Leg]:
    return [
        Leg(leg.persona, leg.user, tuple(s for s in leg.stops if s.name not in NOT_OURS))
        for leg in legs
    ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("orientation", sorted(VIEWPORTS))
def test_every_kind_of_page_fits_an_ipad_and_fingers(
    live_server: Any, settings: Any, orientation: str
) -> None:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    legs = _ours(tour(make_scene()))
    width, height = VIEWPORTS[orientation]
    problems: list[str] = []
    checked = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for leg, stop, page, _response in walk(
                browser, live_server.url, legs, context=_ipad(width, height)
            ):
                checked += 1
                where = f"{orientation} {leg.persona or 'anonymous'} {stop.name} ({stop.path})"
                problems += problems_on(page, where)
        finally:
            browser.close()
    assert checked == sum(len(leg.stops) for leg in legs) > 50
    assert not problems, f"{len(problems)} iPad problems:\n" + "\n".join(problems)


BROKEN = """<!doctype html><html lang="da"><head><title>x</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<header class="topbar"><nav><a href="/a">A</a></nav></header>
<main><p>Tip: do this first. <a href="/pin/">Set PIN</a></p>
<button>OK</button>
<input name="code" style="font-size: 14px; width: 2000px; height: 48px">
<input type="number" name="birth_year" style="font-size: 16px; height: 48px">
<label><input type="checkbox" name="c"> c</label>
<div id="graph"><svg><text x="10" y="20" style="font-size: 12px">9,8</text></svg></div>
<div data-figure="f"><svg width="400" height="200">
  <g class="legend"><rect width="300" height="20" y="160"></rect></g>
  <g class="g-xtitle"><text x="150" y="175">Måned</text></g></svg></div>
</main></body></html>"""


def test_the_checks_see_problems_when_there_are_some() -> None:
    """Each check finds what it looks for (else the tour passing proves nothing): a page
    wider than the screen, a small menu link, tip link, button and checkbox, a 14 px
    field, a number field and a code field with the letter keyboard's habits, a legend
    over the axis title and small text on the client's graph."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = _ipad(768, 1024)(browser).new_page()
            page.set_content(BROKEN)
            found = "\n".join(problems_on(page, "x"))
        finally:
            browser.close()
    assert "wider than the screen: page" in found, found
    for small in ('a "A"', 'a "Set PIN"', 'button[submit] "OK"', 'input[checkbox] "c"'):
        assert f"smaller than a finger: {small}" in found, (small, found)
    assert 'field text under 16 px: input[text] "code" 14px' in found, found
    assert 'wrong keyboard: input[number] "birth_year"' in found, found
    assert 'wrong keyboard: input[text] "code" is autocorrected or capitalised' in found, found
    assert 'legend over the axis title: figure f: its legend lies over "Måned"' in found, found
    assert 'client graph text under 16 px: "9,8" 12px' in found, found


def _a_year_of_implementation() -> list[dict[str, Any]]:
    import datetime as dt

    return [
        {
            "month": dt.date(2026, month, 1),
            "share_with_ors": 0.9,
            "share_with_srs": 0.8,
            "active_therapists": 3,
        }
        for month in range(1, 13)
    ]


def test_the_dashboard_legends_leave_the_axis_titles_free_in_portrait() -> None:
    """The dashboards' figures as an iPad in portrait draws them (768 px: a 728 px wide
    figure), in Danish, with a year of months. Before, the implementation figure's legend
    (three long names) lay over its x-axis title "Måned"."""
    import json
    from pathlib import Path

    from django.utils import translation

    from stats import charts

    medians = [{"session_number": n, "ors_median": 15 + n, "srs_median": 36} for n in range(1, 9)]
    with translation.override("da"):
        figures = {
            "trajectory": charts.trajectory_figure(medians),
            "implementation": charts.implementation_figure(_a_year_of_implementation()),
            "benchmark": charts.benchmark_figure(medians, medians, "Demo Kommune"),
        }
    plotly = Path(__file__).resolve().parents[2] / "static" / "vendor" / "plotly.min.js"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = _ipad(768, 1024)(browser).new_page()
            page.set_content(
                '<!doctype html><meta name="viewport" content="width=device-width">'
                + "".join(
                    f'<div data-figure="{name}" style="width: 728px; height: 360px"></div>'
                    for name in figures
                )
            )
            page.add_script_tag(path=str(plotly))
            for name, figure in figures.items():
                page.evaluate(
                    "([name, fig]) => Plotly.newPlot(document.querySelector("
                    "`[data-figure=${name}]`), fig.data, fig.layout, fig.config)",
                    [name, json.loads(json.dumps(figure, default=str))],
                )
            drawn = page.locator("[data-figure] .legend").count()
            found = problems_on(page, "portrait")
        finally:
            browser.close()
    assert drawn == len(figures)
    assert found == []
