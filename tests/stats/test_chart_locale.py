"""Charts read right on a Danish iPad: whole therapists on the implementation chart's
right axis (it showed "3.158", read as three thousand in Danish), numbers with a decimal
comma, labels legible over the lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stats.charts import implementation_figure, trajectory_figure

ROOT = Path(__file__).resolve().parents[2]


def _rows(counts: list[int]) -> list[dict[str, object]]:
    return [
        {
            "month": dt.date(2026, m, 1),
            "share_with_ors": 0.9,
            "share_with_srs": 0.8,
            "active_therapists": n,
        }
        for m, n in enumerate(counts, start=1)
    ]


def test_the_therapist_axis_counts_whole_therapists() -> None:
    axis = implementation_figure(_rows([3, 3, 2]))["layout"]["yaxis2"]
    assert (axis["tickmode"], axis["tick0"], axis["dtick"]) == ("linear", 0, 1)
    # 23 therapists: a step of ceil(23 / 5) = 5, still whole numbers.
    assert implementation_figure(_rows([23, 20]))["layout"]["yaxis2"]["dtick"] == 5


def test_plotly_gets_the_pages_decimal_mark() -> None:
    # The dashboards' and the client graph's start-up scripts (static files: CSP).
    for path in ("static/js/charts.js", "static/js/graph.js"):
        text = (ROOT / path).read_text()
        assert 'var da = document.documentElement.lang === "da";' in text
        assert 'separators: da ? ",." : ".,"' in text


def test_cutoff_labels_have_a_background() -> None:
    points = [{"session_number": 1, "ors_median": 20.0, "srs_median": 36.0}]
    for note in trajectory_figure(points)["layout"]["annotations"]:
        assert note["bgcolor"].startswith("rgba(255, 255, 255")
