"""Accessibility (WCAG 2.1 AA, webtilgængelighedsloven) of every kind of page, checked in a
real browser at an iPad's size.

Each page of the shared tour (``tests/browser/tour.py``, the same list the CSP test
walks) is opened in Danish as the persona who sees it, in a 1024x768 touch viewport, and
checked by:

* axe-core (bundled by axe-playwright-python) with the rules tagged ``wcag2a``,
  ``wcag2aa``, ``wcag21a`` and ``wcag21aa``; every violation is listed with its rule,
  impact, target and page;
* ``<html lang>`` is the active language (``da``; in English, ``en``);
* a ``<title>`` of its own: not the default, and no two pages of one persona alike;
* every form control (text field, select, checkbox, slider, ...) has a name that the
  browser's accessibility tree computes, from a label or an author's name (a placeholder
  or a tooltip alone does not count: it is gone once typing starts).

Separately, the client's sliders and the paper form's score fields are driven by the
keyboard alone and what they store is checked.

No rule is switched off. A rule may only be waived for one element whose finding is a
documented false positive (``FALSE_POSITIVES``: rule, selector, reason); there is none
now. What this does NOT check (a screen reader's real use, Safari/VoiceOver, cognitive
load, ...) is in docs/accessibility.md.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, sync_playwright

from tests.browser.test_ipad_entry import ARGS, CHROMIUM
from tests.browser.tour import Stop, login, make_scene, tour, walk

pytestmark = [pytest.mark.browser]

IPAD = {"width": 1024, "height": 768}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# axe's rules for the structure a screen reader navigates by (landmarks, headings, table
# headers). axe tags them best-practice, not WCAG, but they serve WCAG 1.3.1 and 2.4.1/2.4.6.
STRUCTURE_RULES = [
    "landmark-one-main",
    "landmark-no-duplicate-main",
    "landmark-unique",
    "region",
    "page-has-heading-one",
    "heading-order",
    "empty-heading",
    "empty-table-header",
    "label-title-only",
]
AXE_RUNS = [
    {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]},
    {"runOnly": {"type": "rule", "values": STRUCTURE_RULES}, "resultTypes": ["violations"]},
]
# (rule id, CSS selector of the one element, why it is a false positive). Empty: keep it
# so unless axe is demonstrably wrong about that element; never a whole rule or page.
FALSE_POSITIVES: list[tuple[str, str, str]] = []
SITE = "fitplatform"

# Roles of form controls in Chromium's accessibility tree.
CONTROL_ROLES = {
    "textbox",
    "searchbox",
    "combobox",
    "listbox",
    "checkbox",
    "radio",
    "slider",
    "spinbutton",
    "switch",
    "PopUpButton",
}
# Where a control's name may come from: a <label> or aria-labelledby (both "relatedElement"
# in Chromium's tree), or aria-label. Not from title or placeholder alone.
LABEL_SOURCES = {"relatedElement", "aria-label"}


def _ipad(browser: Any) -> Any:
    return browser.new_context(
        viewport=IPAD, device_scale_factor=2, is_mobile=True, has_touch=True, locale="da-DK"
    )


def _ipad_in(language: str, base: str) -> Any:
    """A context whose language cookie (set by the header's language switch) asks for
    ``language``."""

    def make(browser: Any) -> Any:
        ctx = _ipad(browser)
        ctx.add_cookies([{"name": "django_language", "value": language, "url": base}])
        return ctx

    return make


def _axe_violations(axe: Axe, page: Page, where: str) -> list[str]:
    found = []
    violations = [
        v for options in AXE_RUNS for v in axe.run(page, options=options).response["violations"]
    ]
    for violation in violations:
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            if any(
                rule == violation["id"] and target == selector
                for rule, selector, _why in FALSE_POSITIVES
            ):
                continue
            found.append(
                f"{where}: {violation['id']} ({violation['impact']}) at {target}: "
                f"{violation['help']}"
            )
    return found


def _axe_version(axe: Axe) -> str:
    found = re.search(r"axe v([\d.]+)", axe.axe_script)
    return f"axe-core {found.group(1) if found else '?'}"


def _unlabelled_controls(page: Page, where: str) -> list[str]:
    """Form controls without a name from a label, by Chromium's own accessibility tree
    (what a screen reader is given)."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    found = []
    for node in nodes:
        role = (node.get("role") or {}).get("value")
        if node.get("ignored") or role not in CONTROL_ROLES:
            continue
        name = node.get("name") or {}
        text = str(name.get("value") or "").strip()
        used = [
            s["type"] if s["type"] == "relatedElement" else s.get("attribute") or s["type"]
            for s in name.get("sources", [])
            if s.get("value") is not None and not s.get("superseded")
        ]
        if not text:
            found.append(f"{where}: a {role} has no accessible name")
        elif not LABEL_SOURCES.intersection(used):
            found.append(f"{where}: the {role} {text!r} is named only by {used or 'its content'}")
    return found


def _figures_without_text(page: Page, where: str) -> list[str]:
    """Every plotly figure is one image with a name, and its values are there as text: a
    table under it (charts.js), or a text it points to (aria-describedby), or, for the
    client's graph, the sessions table named in its label."""
    found = page.evaluate(
        """() => Array.from(document.querySelectorAll("[data-figure], #graph")).map(el => {
             const next = el.nextElementSibling;
             return {
               id: el.id || el.dataset.figure,
               role: el.getAttribute("role"),
               name: (el.getAttribute("aria-label") || "").trim(),
               text: el.id === "graph" || el.hasAttribute("aria-describedby")
                     || (next !== null && next.matches("details.figure-values")),
             };
           })"""
    )
    problems = []
    for fig in found:
        if fig["role"] != "img" or not fig["name"]:
            problems.append(f"{where}: figure {fig['id']} is not an image with a name")
        if not fig["text"]:
            problems.append(f"{where}: figure {fig['id']} has no text alternative")
    return problems


def _accessible_name(page: Page, selector: str) -> str:
    """The name Chromium's accessibility tree gives the element (what a screen reader
    announces)."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        ax = cdp.send("Accessibility.getPartialAXTree", {"nodeId": node, "fetchRelatives": False})
    finally:
        cdp.detach()
    return str(ax["nodes"][0].get("name", {}).get("value", ""))


def _title_problems(stop: Stop, title: str, default: str, seen: dict[str, str]) -> list[str]:
    """A title of the page's own: not empty, not the base template's default, and not
    another page's (of the same persona)."""
    where = f"{stop.name} ({stop.path})"
    head = title.removesuffix(f" · {SITE}").strip()
    if not head or head == default:
        return [f"{where}: no title of its own ({title!r})"]
    if head in seen:
        return [f"{where}: the same title as {seen[head]} ({title!r})"]
    seen[head] = stop.name
    return []


def _plain_error_pages() -> list[tuple[int, str]]:
    """Django's 400 and 500 pages as it renders them (in Danish, without a request)."""
    from django.core.exceptions import SuspiciousOperation
    from django.test import RequestFactory
    from django.views import defaults

    request = RequestFactory().get("/")
    return [
        (400, defaults.bad_request(request, SuspiciousOperation()).content.decode()),
        (500, defaults.server_error(request).content.decode()),
    ]


def _answer(status: int, html: str) -> Any:
    """A route handler that answers with ``html`` (Playwright passes it the route)."""

    def fulfill(route: Any) -> None:
        route.fulfill(status=status, body=html, content_type="text/html; charset=utf-8")

    return fulfill


def _lang_problems(stop: Stop, page: Page, active: str) -> list[str]:
    """``<html lang>`` is the language the page is in: the active one, or the one a page
    is written in whatever is chosen (``Stop.language``, e.g. Swagger UI's English)."""
    expected = stop.language or active
    lang = page.evaluate("document.documentElement.lang")
    if lang != expected:
        return [f"{stop.name} ({stop.path}): <html lang={lang!r}>, the page is in {expected!r}"]
    return []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_kind_of_page_passes_axe_in_danish_on_an_ipad(
    live_server: Any, settings: Any
) -> None:
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    from django.utils import translation

    with translation.override("da"):
        default_title = translation.gettext("FIT platform")
    legs = tour(make_scene())
    axe = Axe()
    problems: list[str] = []
    checked = 0
    titles: dict[str | None, dict[str, str]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for leg, stop, page, _response in walk(browser, live_server.url, legs, context=_ipad):
                checked += 1
                where = f"{stop.name} ({stop.path})"
                # Folded content (the figures' value tables) is checked unfolded.
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                problems += _axe_violations(axe, page, where)
                problems += _figures_without_text(page, where)
                problems += _lang_problems(stop, page, "da")
                seen = titles.setdefault(leg.persona, {})
                problems += _title_problems(stop, page.title(), default_title, seen)
                problems += _unlabelled_controls(page, where)
            # The error pages Django renders without a request (no URL shows them on
            # purpose): served as the live server's answer to a made-up path.
            page = _ipad(browser).new_page()
            for status, html in _plain_error_pages():
                url = f"{live_server.url}/error-{status}/"
                page.route(url, _answer(status, html))
                page.goto(url)
                where = f"{status} page (templates/{status}.html)"
                problems += _axe_violations(axe, page, where)
                problems += _lang_problems(Stop(str(status), url), page, "da")
                problems += _title_problems(Stop(str(status), url), page.title(), default_title, {})
                checked += 1
        finally:
            browser.close()
    assert checked == sum(len(leg.stops) for leg in legs) + 2
    assert not problems, f"{len(problems)} accessibility problems ({_axe_version(axe)}):\n" + (
        "\n".join(problems)
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_page_says_it_is_english_when_english_is_chosen(
    live_server: Any, settings: Any
) -> None:
    """The same tour with English chosen: ``<html lang="en">`` and titles of their own
    (axe's rules do not depend on the language, so they run once, in Danish)."""
    from django.utils import translation

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    with translation.override("en"):
        default_title = translation.gettext("FIT platform")
    legs = tour(make_scene())
    problems: list[str] = []
    titles: dict[str | None, dict[str, str]] = {}
    base = live_server.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            for leg, stop, page, _response in walk(
                browser, base, legs, context=_ipad_in("en", base)
            ):
                problems += _lang_problems(stop, page, "en")
                seen = titles.setdefault(leg.persona, {})
                problems += _title_problems(stop, page.title(), default_title, seen)
        finally:
            browser.close()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def _focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.dataset.input"))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_score_sliders_and_fields_work_by_keyboard_alone(
    live_server: Any, settings: Any
) -> None:
    """The client's four sliders: reached with Tab, each named by its item, set with the
    arrow, Page and Home/End keys, saying their value; confirmed with Enter. The paper
    form's score fields: reached with Tab in order, each with a name of its own, saved
    with Enter. What is stored is what was keyed."""
    from django.utils import translation

    from measures.models import Score
    from tests.conftest import make_episode, make_org

    with translation.override("da"):
        not_marked = translation.gettext("Not marked")  # "Ikke markeret"

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    org = make_org("alpha")
    episode = make_episode(org, code="KB-1001")
    base = live_server.url
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = _ipad(browser).new_page()
            login(page, base, org.therapist_a.username)

            # --- Paper form: date, ORS 1-4, total, SRS 1-4, total, in Tab order ----------
            page.goto(f"{base}/measures/episodes/{episode.pk}/paper/")
            # The date is not what is tested here (a week ago: today's session follows).
            page.fill("#id_date", (dt.date.today() - dt.timedelta(days=7)).isoformat())
            page.focus("#id_date")
            # Tab first walks the date field's own parts (day, month, year).
            for _ in range(4):
                if _focused(page) != "id_date":
                    break
                page.keyboard.press("Tab")
            typed = {"ors": ["5,1", "6,2", "4,3", "7,4"], "srs": ["9,0", "8,5", "9,1", "8,8"]}
            names = []
            for scale in ("ors", "srs"):
                for i, value in enumerate([*typed[scale], ""], start=1):
                    if (scale, i) != ("ors", 1):
                        page.keyboard.press("Tab")
                    expected = f"id_{scale}_{i}" if i <= 4 else f"id_{scale}_total"
                    assert _focused(page) == expected
                    names.append(_accessible_name(page, f"#{expected}"))
                    page.keyboard.type(value)
            assert len(set(names)) == len(names), names  # ORS item 1 is not SRS item 1
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/clients/episodes/{episode.pk}/**")
            stored = {
                s.kind: [str(v) for v in s.items]
                for s in Score.objects.for_org(org.org).filter(session__episode=episode)
            }
            assert stored == {
                "outcome": ["5.1", "6.2", "4.3", "7.4"],
                "alliance": ["9.0", "8.5", "9.1", "8.8"],
            }

            # --- The client's form: four sliders ---------------------------------------
            page.goto(f"{base}/measures/episodes/{episode.pk}/session/new/")
            page.click("button.primary[type=submit]")
            page.wait_for_url(base + "/measures/client/")
            labels = page.locator(".scale-label").all_inner_texts()
            assert len(labels) == 4
            targets = [Decimal("2.5"), Decimal("10.0"), Decimal("0.0"), Decimal("7.3")]
            for n, (label, target) in enumerate(zip(labels, targets, strict=True), start=1):
                page.keyboard.press("Tab")
                assert _focused(page) == f"item{n}"
                slider = page.get_by_role("slider", name=label, exact=True)
                assert slider.evaluate("e => e === document.activeElement")
                # Unmarked, it says so (not a value the client never chose).
                assert slider.get_attribute("aria-valuetext") == not_marked
                page.keyboard.press("End")
                assert slider.get_attribute("aria-valuenow") == "10.0"
                page.keyboard.press("Home")
                assert slider.get_attribute("aria-valuenow") == "0.0"
                for _ in range(int(target)):
                    page.keyboard.press("PageUp")
                for _ in range(round((target % 1) * 10)):
                    page.keyboard.press("ArrowRight")
                assert slider.get_attribute("aria-valuenow") == f"{target:.1f}"
                assert slider.get_attribute("aria-valuetext") == f"{target:.1f} cm".replace(
                    ".", ","
                )
                assert page.input_value(f"#item{n}") == f"{target:.1f}"
            page.keyboard.press("Tab")
            assert _focused(page) == "confirm"
            assert page.locator("#confirm").is_enabled()
            page.keyboard.press("Enter")
            page.wait_for_selector(".handback")
            ors = Score.objects.for_org(org.org).get(
                session__episode=episode, session__date=dt.date.today(), kind="outcome"
            )
            assert [Decimal(str(v)) for v in ors.items] == targets
        finally:
            browser.close()


BROKEN = """<!doctype html><html><head></head><body><main><h1>Broken</h1>
<input id="search" placeholder="Søg">
<div role="slider" tabindex="0"></div>
<p style="color: #aaa">Faint text</p>
</main></body></html>"""


def test_the_checks_see_problems_when_there_are_some() -> None:
    """The checks above find what they look for (else their passing proves nothing): a
    page without lang or title, with a field named by its placeholder only, a slider
    without name or value, and faint text."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = _ipad(browser).new_page()
            page.set_content(BROKEN)
            stop = Stop("broken", "/broken/")
            axe = Axe()
            rules = {line.split(": ")[1].split(" ")[0] for line in _axe_violations(axe, page, "x")}
            assert {"html-has-lang", "document-title", "color-contrast"} <= rules, rules
            assert {"aria-required-attr", "aria-input-field-name"} <= rules, rules
            assert _lang_problems(stop, page, "da")
            assert _title_problems(stop, page.title(), "FIT-platform", {})
            assert sorted(_unlabelled_controls(page, "x")) == [
                "x: a slider has no accessible name",
                "x: the textbox 'Søg' is named only by ['placeholder']",
            ]
        finally:
            browser.close()
