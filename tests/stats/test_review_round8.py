"""Review round 8 (dashboards): the MI report's figures with one decimal and only ended
periods; what a dashboard period and a report period mean, said on the pages; the data-
quality table's hidden counts as the statistics table shows them; Danish month names on
the charts (plotly's locale); the API's suppression reasons in the request's language with
stable codes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from datapolicy.reports import period_choices, report_create
from stats import views
from stats.anonymise import REASON_COMPLEMENTARY, REASON_FEW_THERAPISTS, reason_small
from stats.models import StatsSnapshot
from stats.publications import REASON_CHANGED
from stats.reasons import REASON_CODES, public_code, reason_code
from stats.selectors import (
    REASON_FEW_ORGANISATIONS,
    REASON_OTHERS_SMALL,
    Figures,
    _figures_data,
    period_as_of,
)
from tests.conftest import OrgPersonas, add_therapist, make_episode, record, team_of_three

ROOT = Path(__file__).resolve().parents[2]


def _at(day: dt.date) -> Any:
    return time_machine.travel(
        dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC), tick=False
    )


def _english(client: Any) -> None:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


# --- 1. the MI report: one decimal, ended periods only ---------------------------------


def _six_q2_episodes(p: OrgPersonas) -> None:
    """Six adult episodes in Q2 2026: intake ORS 5.1, 5.1, 5.1, 5.3, 5.3, 5.3 (4 May),
    second ORS 10.0 (1 June); no SRS."""
    team = team_of_three(p)  # a report of fewer than 3 therapists shows nothing
    for i, intake in enumerate(["5.1", "5.1", "5.1", "5.3", "5.3", "5.3"]):
        ep = make_episode(p, therapist=team[i % 3], code=f"MI-{i}", started_on=dt.date(2026, 5, 4))
        record(ep, dt.date(2026, 5, 4), ors=intake)
        record(ep, dt.date(2026, 6, 1), ors="10.0")


def _cells(page: str) -> list[str]:
    return [c.strip() for c in re.findall(r'<td class="num">([^<]*)</td>', page)]


@pytest.mark.django_db
def test_report_page_shows_one_decimal_and_the_danish_comma(client: Any, org1: OrgPersonas) -> None:
    """Session 1's median ORS is the mean of the middle two intakes, (5.1 + 5.3) / 2 = 5.2
    (as floats 5.199999999999999, which the page showed). Hand-computed table (active):
    6 episodes; 2 sessions per episode → 2,0; months 28 days / 30.4375 = 0.92 → 0,9; ORS
    at start (3·5.1 + 3·5.3) / 6 = 5,2; change (3·4.9 + 3·4.7) / 6 = 4,8; d = 4.8 / sample
    SD of the intakes (√(6·0.01 / 5) = 0.1095) = 43.8 → 43,8; no reliable change in 6."""
    with _at(dt.date(2026, 7, 15)):
        _six_q2_episodes(org1)
        report = report_create(
            actor=org1.analyst,
            organisation=org1.org,
            title="Andet kvartal",
            selection={"scope": "org", "period": "2026-Q2"},
        )
        client.force_login(org1.analyst)
        url = reverse("dp_report", args=[report.pk])
        page = client.get(url).content.decode()
        _english(client)
        english = client.get(url).content.decode()
    assert "5,19999" not in page and "5.19999" not in page
    cells = _cells(page)
    # the trajectory: session, ORS, SRS
    assert cells[-6:-3] == ["1", "5,2", "–"]
    assert cells[-3:] == ["2", "10,0", "–"]
    # the figures table, active row (episodes … clinically significant)
    active = cells[:13]
    assert active[:3] == ["6", "2,0", "0,9"]
    assert active[3:6] == ["5,2", "4,8", "43,8"]
    assert active[8:] == ["6", "0", "0", "6", "0"]
    assert _cells(english)[-6:-3] == ["1", "5.2", "–"]


def test_only_ended_periods_are_offered() -> None:
    """3 December 2026: the year 2026, its second half and Q4 have not ended; Q3 ended on
    30 September. On 30 September itself Q3 is not over yet; on 1 October it is."""
    codes = [c for c, _label in period_choices(dt.date(2026, 12, 3))]
    assert codes[:4] == ["2026-Q3", "2026-H1", "2026-Q2", "2026-Q1"]
    assert not {"2026", "2026-H2", "2026-Q4"} & set(codes)
    assert "2025" in codes and "2025-Q4" in codes
    assert "2026-Q3" not in [c for c, _l in period_choices(dt.date(2026, 9, 30))]
    assert period_choices(dt.date(2026, 10, 1))[0][0] == "2026-Q3"


@pytest.mark.django_db
def test_the_current_quarter_is_refused_and_not_on_the_form(client: Any, org1: OrgPersonas) -> None:
    with _at(dt.date(2026, 12, 3)):
        with pytest.raises(ValidationError) as exc:
            report_create(
                actor=org1.analyst,
                organisation=org1.org,
                title="Igangværende kvartal",
                selection={"scope": "org", "period": "2026-Q4"},
            )
        assert "period" in exc.value.message_dict
        client.force_login(org1.analyst)
        form = client.get(reverse("dp_report_create")).content.decode()
    options = re.findall(r'<option value="(20[0-9-QH]+)"', form)
    assert options and options[0] == "2026-Q3"
    assert "2026-Q4" not in options and "2026" not in options


# --- 2. what a period means ------------------------------------------------------------


@pytest.mark.django_db
def test_dashboard_periods_say_they_are_reference_dates(client: Any, org1: OrgPersonas) -> None:
    """On 3 December 2026 the last month ended 30 November, the last quarter 30 September,
    the last year 31 December 2025."""
    with _at(dt.date(2026, 12, 3)):
        client.force_login(org1.leader)
        url = reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})
        da = client.get(url).content.decode()
        _english(client)
        en = client.get(url).content.decode()
    for text in (
        "Alt til og med udgangen af sidste måned (30. november 2026)",
        "Alt til og med udgangen af sidste kvartal (30. september 2026)",
        "Alt til og med udgangen af sidste år (31. december 2025)",
        "Perioden er en skæringsdato, ikke et tidsvindue",
    ):
        assert text in da, text
    assert "Sidste år<" not in da
    for text in (
        "Everything up to the end of last month (30. November 2026)",
        "Everything up to the end of last year (31. December 2025)",
        "The period is a reference date, not a time window",
    ):
        assert text in en, text


@pytest.mark.django_db
def test_own_figures_page_explains_the_period_too(client: Any, org1: OrgPersonas) -> None:
    client.force_login(org1.therapist_a)
    page = client.get(reverse("stats_mine")).content.decode()
    assert "Til i dag" in page
    assert "Perioden er en skæringsdato" in page


@pytest.mark.django_db
def test_report_pages_say_what_their_period_counts(client: Any, org1: OrgPersonas) -> None:
    with _at(dt.date(2026, 7, 15)):
        _six_q2_episodes(org1)
        report = report_create(
            actor=org1.analyst,
            organisation=org1.org,
            title="Q2",
            selection={"scope": "org", "period": "2026-Q2"},
        )
        client.force_login(org1.analyst)
        page = client.get(reverse("dp_report", args=[report.pk])).content.decode()
        form = client.get(reverse("dp_report_create")).content.decode()
        _english(client)
        english = client.get(reverse("dp_report", args=[report.pk])).content.decode()
    assert (
        "Rapporten tæller de forløb, der har mindst én session fra 1. april 2026 til "
        "30. juni 2026, med alle deres sessioner til og med 30. juni 2026"
    ) in page
    assert "mindst én session i perioden" in form
    assert "with at least one session from 1. April 2026 to 30. June 2026" in english


# --- 3. the data-quality table -----------------------------------------------------------

MASK: dict[str, Any] = {"hidden_scope": False, "spread_hidden": False, "table": {}}


def _quality_figs(quality: dict[str, int], q_mask: dict[str, str]) -> Figures:
    data = _figures_data(
        {"quality": quality}, anonymised=True, k=5, mask={**MASK, "quality": q_mask}
    )
    return Figures(
        snapshot=StatsSnapshot(as_of=dt.date(2026, 11, 30), computed_at=timezone.now()),
        anonymised=True,
        k=5,
        **data,
    )


QUALITY = {
    "ghost_episodes": 0,
    "open_past_inactivity": 12,
    "duplicate_same_date_sessions": 2,
    "srs_without_ors": 9,
    "intake_above_cutoff": 7,
}


# the one note of every hidden cell (stats.reasons.hidden_note, review round 10)
DA_NOTE = "færre end 5 klienter, eller skjult så et sådant tal ikke kan regnes ud"


def test_quality_complements_read_hidden_with_a_reason() -> None:
    """7 intakes above the cutoff hidden as a complement and 9 held back by a publication:
    "skjult" with numbered reasons; the 2 extra sessions are a small cell and read exactly
    as the complement (review round 10: "< 5" would tell them apart); 0 and 12 are
    shown."""
    figs = _quality_figs(
        QUALITY, {"intake_above_cutoff": REASON_COMPLEMENTARY, "srs_without_ors": REASON_CHANGED}
    )
    assert figs.quality["intake_above_cutoff"] is None and figs.quality["srs_without_ors"] is None
    assert figs.quality["duplicate_same_date_sessions"] is None
    rows = views._quality_rows(figs)
    text = {r["label"]: (r["value"]["text"], r["value"]["mark"]) for r in rows}
    assert text["Ekstra sessions på samme dato"] == ("skjult", 1)
    assert text["Sessions med SRS men uden ORS"] == ("skjult", 2)
    assert text["ORS ved start over cutoff"] == ("skjult", 1)
    assert text["Åbne forløb uden kontakt i mere end inaktivitetsperioden"] == ("12", None)
    assert [n["mark"] for n in rows.notes] == [1, 2]
    assert rows.notes[0]["text"].startswith(DA_NOTE)
    assert rows.notes[1]["text"].startswith("skjult, så denne månedsafslutning")
    with translation.override("en"):
        rows = views._quality_rows(figs)
    assert rows[-1]["value"]["text"] == "hidden"
    assert rows.notes[0]["text"].startswith("fewer than 5 clients, or hidden so that")


def _quality_panel(page: str) -> str:
    m = re.search(r'<table class="stats-table quality-table">(.*?)</section>', page, re.S)
    assert m is not None, "no data-quality table"
    return m.group(1)


@pytest.mark.django_db
def test_quality_table_on_the_page_and_in_the_export(client: Any, org1: OrgPersonas) -> None:
    """Youth (cutoff 28): six episodes of three therapists with intake 33 — above the
    cutoff. Adults: two episodes of one therapist with intake 30 (above 25). The adult
    node has one therapist (hidden as a whole), so youth's 6 is hidden as its complement
    (all ages = adult + youth + child, and all ages is shown): "skjult" with the reason,
    not "< 5" — 6 is no small cell."""
    end = period_as_of("month")[1]
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "q3")]
    for i in range(6):
        ep = make_episode(org1, code=f"QY-{i}", therapist=team[i % 3], age_group="youth")
        record(ep, end - dt.timedelta(days=20), ors="33.0")
    for i in range(2):
        ep = make_episode(org1, code=f"QA-{i}", age_group="adult")
        record(ep, end - dt.timedelta(days=20), ors="30.0")
    client.force_login(org1.leader)
    url = reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})
    panel = _quality_panel(client.get(url, {"period": "month", "age": "youth"}).content.decode())
    row = re.search(
        r"ORS ved start over cutoff</th>\s*<td[^>]*>([^<]*)(<sup[^>]*>(\d)</sup>)?", panel
    )
    assert row is not None, panel
    assert row.group(1) == "skjult" and row.group(3) == "1"
    assert "&lt; 5" not in row.group(0)
    assert f'<li value="1">skjult: {DA_NOTE}' in panel
    export = reverse(
        "stats_export",
        kwargs={"kind": "unit", "scope_id": org1.unit.pk, "table": "quality", "fmt": "csv"},
    )
    text = client.get(export, {"period": "month", "age": "youth"}).content.decode("utf-8-sig")
    assert f"ORS ved start over cutoff;skjult ({DA_NOTE}" in text


# --- 4. Danish month names on the charts ----------------------------------------------------


def test_the_danish_plotly_locale_is_our_static_file() -> None:
    js = (ROOT / "static/js/plotly-locale-da.js").read_text("utf-8")
    assert 'moduleType: "locale"' in js and 'name: "da"' in js
    for word in ('"januar"', '"maj"', '"oktober"', '"okt"', '"mandag"', '"søn"'):
        assert word in js, word
    # the same marks as the charts' separators (",." in Danish)
    assert 'decimal: ","' in js and 'thousands: "."' in js
    graph = (ROOT / "static/js/graph.js").read_text("utf-8")
    assert 'locale: da ? "da" : "en"' in graph
    client_page = (ROOT / "templates/clients/episode_detail.html").read_text("utf-8")
    assert client_page.index("plotly.min.js") < client_page.index("plotly-locale-da.js")
    assert client_page.index("plotly-locale-da.js") < client_page.index("js/graph.js")


@pytest.mark.django_db
def test_dashboard_loads_the_locale_from_our_static_files(client: Any, org1: OrgPersonas) -> None:
    client.force_login(org1.therapist_a)
    page = client.get(reverse("stats_mine")).content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    plotly = [s for s in scripts if "plotly" in s]
    assert plotly == ["/static/vendor/plotly.min.js", "/static/js/plotly-locale-da.js"]
    assert all(not s.startswith(("http:", "https:", "//")) for s in scripts)
    # The charts are started by our static charts.js (no inline script: CSP), after the
    # locale is registered, with the page's language.
    assert scripts.index("/static/js/plotly-locale-da.js") < scripts.index("/static/js/charts.js")
    charts = (ROOT / "static/js/charts.js").read_text("utf-8")
    assert 'locale: da ? "da" : "en"' in charts
    assert 'var da = document.documentElement.lang === "da";' in charts


# --- 5. the API's suppression reasons ---------------------------------------------------------


def _api(client: Any, user: Any, kind: str, scope_id: int, **params: Any) -> dict[str, Any]:
    client.force_login(user)
    r = client.get(reverse("api_stats_scope", kwargs={"scope": kind, "scope_id": scope_id}), params)
    assert r.status_code == 200, r.content
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.django_db
def test_api_reasons_follow_the_language_with_stable_codes(client: Any, org1: OrgPersonas) -> None:
    """Three therapists with one active episode each: 3 < k = 5 clients, the row is
    hidden as a small cell — and reads as every hidden cell (review round 10): code
    ``hidden``, the one note, never ``small_cell`` (that told it from a complement)."""
    end = period_as_of("month")[1]
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "api3")]
    for i, t in enumerate(team):
        ep = make_episode(org1, code=f"AP-{i}", therapist=t)
        record(ep, end - dt.timedelta(days=5), ors="15.0")
    da = _api(client, org1.leader, "unit", org1.unit.pk)
    assert da["suppressed"]["active"]["episodes"].startswith(DA_NOTE)
    assert da["suppressed_codes"]["active"]["episodes"] == "hidden"
    assert "small_cell" not in json.dumps(da) and "complement" not in json.dumps(da)
    assert da["hidden_reason"] is None and da["hidden_code"] is None
    assert set(da["suppressed_codes"]["active"]) == set(da["suppressed"]["active"])
    _english(client)
    en = _api(client, org1.leader, "unit", org1.unit.pk)
    assert en["suppressed"]["active"]["episodes"].startswith("fewer than 5 clients, or hidden")
    assert en["suppressed_codes"] == da["suppressed_codes"]


@pytest.mark.django_db
def test_api_hidden_scope_reason_in_danish_with_its_code(client: Any, org1: OrgPersonas) -> None:
    end = period_as_of("month")[1]
    for i, t in enumerate([org1.therapist_a, org1.therapist_b]):
        ep = make_episode(org1, code=f"AH-{i}", therapist=t)
        record(ep, end - dt.timedelta(days=5), ors="15.0")
    body = _api(client, org1.leader, "unit", org1.unit.pk)
    assert body["hidden_code"] == "few_therapists"
    assert (
        body["hidden_reason"]
        == "færre end 3 behandlere i dette udvalg: én behandlers tal kunne regnes ud"
    )
    assert body["suppressed_codes"]["inactive"]["ors_change"] == "few_therapists"


def test_every_reason_has_its_code() -> None:
    reasons = {
        reason_small(5): "small_cell",
        reason_small(7): "small_cell",
        REASON_COMPLEMENTARY: "complement",
        REASON_FEW_THERAPISTS: "few_therapists",
        REASON_CHANGED: "changed_since_publication",
        REASON_FEW_ORGANISATIONS: "few_organisations",
        REASON_OTHERS_SMALL: "others_small",
        "something new": "other",
    }
    for reason, code in reasons.items():
        assert reason_code(reason) == code  # the exact code, for the record (reports)
        assert code in REASON_CODES
        # what is shown: a small cell and a complement alike (review round 10)
        shown = "hidden" if code in ("small_cell", "complement", "others_small") else code
        assert public_code(reason) == shown and shown in REASON_CODES


@pytest.mark.django_db
def test_schema_documents_the_codes(client: Any, org1: OrgPersonas) -> None:
    client.force_login(org1.analyst)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    doc = json.loads(text) if text.lstrip().startswith("{") else None
    if doc is None:
        import yaml

        doc = yaml.safe_load(text)
    props = doc["components"]["schemas"]["StatsResponse"]["properties"]
    enum = props["suppressed_codes"]["additionalProperties"]["additionalProperties"]["enum"]
    assert "hidden" in enum
    assert "small_cell" in enum and "complement" in enum  # kept for old clients, not sent
    assert props["hidden_code"]["nullable"] is True


@pytest.mark.browser
@pytest.mark.django_db
def test_implementation_chart_names_months_in_danish_in_chromium(
    client: Any, org1: OrgPersonas, tmp_path: Path
) -> None:
    """The unit page as the server renders it (Danish), opened in headless Chromium with
    our static plotly and its Danish locale: the time axis of the implementation chart
    names the months in Danish (lower case: "okt", "nov" …), never in English."""
    import os
    import shutil

    end = period_as_of("month")[1]
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "br3")]
    for i in range(6):
        ep = make_episode(
            org1, code=f"BR-{i}", therapist=team[i % 3], started_on=end - dt.timedelta(days=70)
        )
        record(ep, end - dt.timedelta(days=40), ors="15.0", srs="36.0")
        record(ep, end - dt.timedelta(days=10), ors="17.0", srs="37.0")
    client.force_login(org1.leader)
    url = reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})
    page = client.get(url, {"period": "month"}).content.decode()
    assert 'data-figure="fig-implementation"' in page
    static = (ROOT / "static").as_uri()
    html = tmp_path / "unit.html"
    html.write_text(page.replace('src="/static/', f'src="{static}/'), "utf-8")

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            tab = browser.new_page(locale="en-US")  # the page's lang decides, not the browser
            tab.goto(html.as_uri())
            ticks = tab.locator('[data-figure="fig-implementation"] .xtick text')
            ticks.first.wait_for(timeout=15000)
            texts = ticks.all_text_contents()
        finally:
            browser.close()
    danish = {"jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"}
    danish |= {
        "januar", "februar", "marts", "april", "juni", "juli", "august", "september",
        "oktober", "november", "december",
    }  # fmt: skip
    words = [w for t in texts for w in re.findall(r"[^\W\d_]+", t)]
    assert words, texts
    assert all(w in danish for w in words), texts
