"""Review round 7 (dashboards): the spread between therapists as summary statistics only,
hidden cells that are not small cells, translated suppression reasons, the charts on a
touch device, the platform page's k and the ETR panel's unjudged episodes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import time_machine
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from stats import charts, views
from stats.anonymise import REASON_COMPLEMENTARY, REASON_FEW_THERAPISTS, reason_small
from stats.engine import STATISTICS_COLUMNS
from stats.models import StatsSnapshot
from stats.publications import REASON_CHANGED
from stats.selectors import (
    REASON_FEW_ORGANISATIONS,
    REASON_OTHERS_SMALL,
    Figures,
    _figures_data,
)
from tests.conftest import OrgPersonas, add_therapist, make_episode, record

MASK: dict[str, Any] = {"hidden_scope": False, "spread_hidden": False, "table": {}}


def _payload(values: list[float], n_change: int = 5, n_therapists: int | None = None) -> Any:
    rows = [{"episodes": 9, "n_ors_change": n_change, "ors_change": v} for v in values]
    return {
        "table": {"active": {"episodes": 40}, "inactive": {"episodes": 10}},
        "therapist_spread": rows,
        "n_therapists": len(rows) if n_therapists is None else n_therapists,
    }


# --- 1. the spread between therapists -------------------------------------------------


def test_spread_is_median_and_quartiles_only_rounded() -> None:
    """Six therapists: values 1, 2, 3, 5, 8, 13.0001 (unrounded in the payload).
    numpy linear quartiles: q1 at position 1.25 = 2 + 0.25·1 = 2.25 → 2.3 (half up);
    median (3 + 5)/2 = 4.0; q3 at 3.75 = 5 + 0.75·3 = 7.25 → 7.3."""
    data = _figures_data(
        _payload([1.0, 2.0, 3.0, 5.0, 8.0, 13.0001]), anonymised=True, k=5, mask=MASK
    )
    assert data["spread"] == {"n_therapists": 6, "median": 4.0, "q1": 2.3, "q3": 7.3}
    assert data["show_spread"] and data["spread_notice"] is None
    fig = charts.spread_figure(data["spread"])
    trace = fig["data"][0]
    # no list of values: no y, no points, the whiskers end at the quartiles
    assert "y" not in trace and trace["boxpoints"] is False
    assert trace["lowerfence"] == trace["q1"] == [2.3]
    assert trace["upperfence"] == trace["q3"] == [7.3]
    shipped = json.dumps(fig)
    for value in ("13.0001", "13.0", "1.0,", "8.0"):
        assert value not in shipped
    # the label says what it is over
    with translation.override("en"):
        assert "active episodes" in charts.spread_figure(data["spread"])["data"][0]["name"]


@pytest.mark.parametrize(
    ("n", "k", "shown"),
    [(3, 5, False), (4, 5, False), (5, 5, True), (5, 6, False), (6, 6, True), (6, 7, False)],
)
def test_spread_needs_max_5_k_therapists_with_values(n: int, k: int, shown: bool) -> None:
    values = [float(i) for i in range(n)]
    data = _figures_data(_payload(values, n_change=k), anonymised=True, k=k, mask=MASK)
    assert data["show_spread"] is shown
    assert (data["spread"] != {}) is shown
    assert data["spread_notice"] == (None if shown else "few")


def test_spread_counts_only_therapists_with_k_clients_and_respects_the_hold() -> None:
    rows = _payload([1.0, 2.0, 3.0, 4.0, 5.0])
    rows["therapist_spread"][0]["n_ors_change"] = 4  # one therapist rests on 4 < k clients
    data = _figures_data(rows, anonymised=True, k=5, mask=MASK)
    assert data["spread"] == {} and data["spread_notice"] == "few"
    held = _figures_data(
        _payload([1.0, 2.0, 3.0, 4.0, 5.0]),
        anonymised=True,
        k=5,
        mask={**MASK, "spread_hidden": True},
    )
    assert held["spread"] == {} and held["spread_notice"] == "held"
    # identified figures never carry per-therapist rows either
    own = _figures_data(_payload([1.0, 2.0, 3.0, 4.0, 5.0]), anonymised=False, k=5, mask=None)
    assert own["spread"] == {}


def _at(day: dt.date) -> Any:
    return time_machine.travel(
        dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC), tick=False
    )


def _spread_json(page: str) -> Any:
    m = re.search(r'<script id="fig-spread" type="application/json">(.*?)</script>', page, re.S)
    return None if m is None else json.loads(m.group(1))


@pytest.mark.django_db
def test_unit_page_ships_no_therapist_value(client: Any, org1: OrgPersonas) -> None:
    """Three therapists: a notice, no chart. Six (5 clients each, ORS change 1, 2, 3, 5,
    8, 13): median 4,0, quartiles 2,3 and 7,3 (as above); no therapist's own value."""
    p = org1
    team = [p.therapist_a, p.therapist_b, add_therapist(p, "s3")]
    changes = [1, 2, 3]

    def add(t: Any, change: int, prefix: str) -> None:
        for j in range(5):
            ep = make_episode(p, code=f"{prefix}-{j}", therapist=t, started_on=dt.date(2026, 2, 2))
            record(ep, dt.date(2026, 2, 2), ors="12.0", srs="36.0")
            record(ep, dt.date(2026, 2, 16), ors=f"{12 + change}.0", srs="36.0")

    url = reverse("stats_unit", kwargs={"unit_id": p.unit.pk})
    with _at(dt.date(2026, 3, 5)):
        for i, (t, c) in enumerate(zip(team, changes, strict=True)):
            add(t, c, f"S{i}")
        client.force_login(p.leader)
        page = client.get(url, {"period": "month"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert _spread_json(page) is None
        # the notice (in the page's language; the numbers are the same in both)
        notice = re.search(r'<h2>[^<]*\(([^<]*)\)</h2>\s*<p class="notice">([^<]*)</p>', page)
        assert notice is not None, "no spread notice"
        assert "5" in notice.group(2) and "ORS" in notice.group(2)
    with _at(dt.date(2026, 4, 6)):
        more = [add_therapist(p, f"s{i}") for i in range(4, 7)]
        for i, (t, c) in enumerate(zip(more, [5, 8, 13], strict=True)):
            add(t, c, f"T{i}")
        client.force_login(p.leader)
        page = client.get(url, {"period": "month"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    fig = _spread_json(page)
    assert fig is not None
    trace = fig["data"][0]
    assert (trace["q1"], trace["median"], trace["q3"]) == ([2.3], [4.0], [7.3])
    assert "y" not in trace
    summary = re.search(r'<p class="spread-summary"[^>]*>([^<]*)</p>', page)
    assert summary is not None
    assert all(n in summary.group(1) for n in ("4,0", "2,3", "7,3", "6 ")), summary.group(1)
    assert fig["config"]["displayModeBar"] is False


# --- 2. hidden cells: "hidden" with a footnote (round 10: small cells too) --------------


def _figs(suppressed: dict[str, dict[str, str]], k: int = 5, anonymised: bool = True) -> Figures:
    table = {
        side: {c: (None if c in suppressed[side] else 10.0) for c in STATISTICS_COLUMNS}
        for side in ("active", "inactive")
    }
    return Figures(
        snapshot=StatsSnapshot(as_of=dt.date(2026, 2, 28), computed_at=timezone.now()),
        anonymised=anonymised,
        k=k,
        table=table,
        suppressed=suppressed,
        trajectory=[],
        etr={"ended_evaluable": 12, "ended_single_ors": 3, "ended_no_etr": 2},
        etr_suppressed={},
        implementation=[],
        quality={},
        spread={},
        show_spread=False,
    )


def test_complement_and_held_cells_read_hidden_with_a_footnote() -> None:
    small = reason_small(5)
    effect_small = {"effect_size_d": small, "effect_size_pct": small}
    figs = _figs(
        {
            "active": {"episodes": REASON_COMPLEMENTARY, "ors_change": small, **effect_small},
            "inactive": {"episodes": REASON_CHANGED, "sessions": REASON_COMPLEMENTARY},
        }
    )
    with translation.override("en"):
        rows = views._table_rows(figs)
        by_label = {r["label"]: r for r in rows}
        clients = by_label["Clients"]
        assert clients["active"]["text"] == "hidden" and clients["active"]["mark"] == 1
        assert clients["inactive"]["text"] == "hidden" and clients["inactive"]["mark"] == 2
        assert by_label["Sessions"]["inactive"]["mark"] == 1  # the same reason, same mark
        # review round 10: a small cell reads exactly as its complement ("< 5" would tell
        # them apart, and that can give hidden counts back): "hidden", the same mark
        assert by_label["Average ORS change"]["active"]["text"] == "hidden"
        assert by_label["Average ORS change"]["active"]["mark"] == 1
        effect = rows[-1]
        assert effect["active"]["text"] == "hidden"  # not "hidden / hidden %"
        assert effect["active"]["mark"] == 1
        assert [n["mark"] for n in rows.notes] == [1, 2]
        assert rows.notes[0]["text"].startswith("fewer than 5 clients, or hidden so that")
        assert "earlier published" in rows.notes[1]["text"]
        assert "< 5" not in str(list(rows)) and "neighbouring" not in str(rows.notes)
        html = render_to_string("stats/_table.html", {"table_rows": rows})
    assert '<sup class="note-mark">1</sup>' in html
    assert '<ol class="table-notes">' in html and "earlier published one" in html


def test_effect_cell_with_only_the_percentage_hidden() -> None:
    figs = _figs({"active": {"effect_size_pct": REASON_COMPLEMENTARY}, "inactive": {}})
    with translation.override("en"):
        effect = views._table_rows(figs)[-1]
    assert effect["active"]["text"] == "10.0 / hidden"
    assert effect["active"]["mark"] == 1
    assert effect["inactive"]["text"] == "10.0 / 10.0 %"


# --- 3. the reasons are translated where they are shown --------------------------------

ALL_REASONS = [
    REASON_COMPLEMENTARY,
    REASON_FEW_THERAPISTS,
    REASON_CHANGED,
    REASON_FEW_ORGANISATIONS,
    REASON_OTHERS_SMALL,
    reason_small(7),
]


def test_every_reason_goes_through_gettext() -> None:
    with mock.patch.object(views, "_", side_effect=lambda s: "DA:" + s):
        texts = [views.reason_text(r) for r in ALL_REASONS]
    assert all(t.startswith("DA:") for t in texts), texts
    assert texts[-1] == "DA:fewer than 7 clients"


def test_danish_strings_exist_for_the_reasons() -> None:
    da = json.loads(
        (Path(__file__).resolve().parents[2] / "locale/da/review7_dash.json").read_text("utf-8")
    )
    seen: list[str] = []

    def spy(msgid: str) -> str:
        seen.append(msgid)
        return msgid

    with mock.patch.object(views, "_", side_effect=spy):
        for r in ALL_REASONS:
            views.reason_text(r)
    assert seen and all(msgid in da for msgid in seen), [m for m in seen if m not in da]


@pytest.mark.django_db
def test_export_translates_the_reason(client: Any, org1: OrgPersonas) -> None:
    """The export shows the reason text via reason_text (in the page's language) for a
    reason that is told apart (a change since a publication); a complement reads as every
    hidden cell, the one note (review round 10), never its own reason."""
    from stats import exports

    figs = _figs(
        {"active": {"episodes": REASON_CHANGED}, "inactive": {"episodes": REASON_COMPLEMENTARY}}
    )
    client.force_login(org1.analyst)
    url = reverse(
        "stats_export",
        kwargs={"kind": "unit", "scope_id": org1.unit.pk, "table": "statistics", "fmt": "csv"},
    )
    with (
        mock.patch.object(views, "reason_text", side_effect=lambda r: "OVERSAT"),
        mock.patch.object(views.ExportView, "load", return_value=(figs, {})),
    ):
        response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode("utf-8-sig")
    assert "OVERSAT" in body and REASON_CHANGED not in body
    assert REASON_COMPLEMENTARY not in body and "skjult så et sådant tal" in body
    assert exports.TABLES  # (the export module itself is unchanged)


# --- 4. charts on a touch device -------------------------------------------------------


def test_charts_have_no_modebar_and_room_for_axes_and_legend() -> None:
    rows = [
        {
            "month": "2026-01-01",
            "share_with_ors": 0.9,
            "share_with_srs": 0.8,
            "active_therapists": 12,
        }
    ]
    figs = [
        charts.trajectory_figure([]),
        charts.implementation_figure(rows),
        charts.benchmark_figure([], [], "Alpha"),
        charts.spread_figure({"q1": 1.0, "median": 2.0, "q3": 3.0, "n_therapists": 5}),
    ]
    assert all(f["config"]["displayModeBar"] is False for f in figs)
    assert charts.implementation_figure(rows)["layout"]["margin"]["r"] >= 60
    legend = charts.benchmark_figure([], [], "Alpha")["layout"]["legend"]
    assert legend["y"] > 1 and legend["yanchor"] == "bottom"  # above the plot
    # The dashboards' start-up script (a static file: the CSP forbids inline scripts).
    base = (Path(__file__).resolve().parents[2] / "static/js/charts.js").read_text()
    assert "displayModeBar: false" in base and "fig.config" in base


# --- 5. the platform page names k ------------------------------------------------------


@pytest.mark.django_db
def test_platform_page_names_k(client: Any, operator: Any) -> None:
    client.force_login(operator)
    page = client.get(reverse("stats_platform"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "fewer than 5 clients since" in page or "færre end 5 klienter siden" in page
    assert "fewer than  clients" not in page and "færre end  klienter" not in page


# --- 6. the ETR panel's unjudged episodes ---------------------------------------------


def test_etr_panel_counts_unjudged_on_identified_figures_only() -> None:
    own = views._etr_view(_figs({"active": {}, "inactive": {}}, anonymised=False))
    assert own["ended_single_ors"] == "3" and own["ended_no_etr"] == "2"
    anon = views._etr_view(_figs({"active": {}, "inactive": {}}, anonymised=True))
    # Review round 10: anonymised figures show those without an expected response only
    # as classified (inactive) − judged; here 10 − 12 ≠ 2, so hidden; never single-ORS.
    assert "ended_single_ors" not in anon
    assert anon["ended_no_etr"].startswith("skjult (")
