"""Plotly figures as plain JSON dicts, built server-side (rendered by our static
plotly.min.js). Plain dicts, not plotly.graph_objects: a page builds them in microseconds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from .engine import AGE_GROUPS, DEFAULT_SETTINGS

FONT = {"family": "system-ui, sans-serif", "size": 14}
CUTOFF_COLOUR = "#b3261e"
ORS_CUTOFF_DASH = {"adult": "dash", "youth": "dashdot", "child": "longdash"}
# Plotly's config for the dashboard charts (templates/stats/_base.html merges it): no
# modebar — on a touch device (iPad) it covers the lines and cannot be moved away.
CONFIG: dict[str, Any] = {"displayModeBar": False, "displaylogo": False, "responsive": True}


def _legend_above() -> dict[str, Any]:
    """The legend in one row above the plot, from its left edge. Below the plot it lay
    over the x-axis title as soon as the figure was narrower than the legend's texts
    (e.g. "Måned" under the implementation figure's legend on an iPad in portrait)."""
    return {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}


def _n_text(n: Any) -> str:
    """The hover text of a point: its n, or that the n is hidden (a point whose count
    could be subtracted from its siblings' keeps its median but not its n)."""
    return _("n hidden") if n is None else f"n = {int(n)}"


def _age_label(age_group: str) -> str:
    return {"adult": _("Adults"), "youth": _("Youth"), "child": _("Children")}[age_group]


def _cutoff_lines(
    ors_cutoffs: Mapping[str, float], srs_cutoff: float, age_group: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Horizontal cutoff lines across the plot (shapes) with their labels (annotations) at
    the right end: the ORS cutoff of the filtered age group, or of each age group when
    the figures mix them, and the SRS alliance cutoff."""
    from .views import display_number  # local: views imports this module

    groups = [age_group] if age_group in AGE_GROUPS else list(AGE_GROUPS)
    lines: list[tuple[str, float, str]] = []
    for group in groups:
        label = _("Clinical cutoff %(value)s") % {
            "value": display_number(float(ors_cutoffs[group]), 1)
        }
        if len(groups) > 1:
            label = f"{label} ({_age_label(group).lower()})"
        lines.append((label, float(ors_cutoffs[group]), ORS_CUTOFF_DASH[group]))
    lines.append(
        (
            _("Alliance limit %(value)s") % {"value": display_number(float(srs_cutoff), 1)},
            float(srs_cutoff),
            "dot",
        )
    )
    shapes = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "yref": "y",
            "y0": value,
            "y1": value,
            "line": {"color": CUTOFF_COLOUR, "width": 1.5, "dash": dash},
            "layer": "below",
        }
        for _label, value, dash in lines
    ]
    annotations = [
        {
            "xref": "paper",
            "x": 1,
            "xanchor": "right",
            "yref": "y",
            "y": value,
            "yanchor": "bottom",
            "text": label,
            "showarrow": False,
            "font": {"size": 12, "color": CUTOFF_COLOUR},
            # Readable where a median line passes behind the label.
            "bgcolor": "rgba(255, 255, 255, 0.85)",
        }
        for label, value, _dash in lines
    ]
    return shapes, annotations


def trajectory_figure(
    points: list[dict[str, Any]],
    *,
    ors_cutoffs: Mapping[str, float] | None = None,
    srs_cutoff: float | None = None,
    age_group: str = "all",
) -> dict[str, Any]:
    """Median ORS and SRS per session number, with n per point in the hover text, and the
    cutoffs (statistics.md): the ORS cutoff of ``age_group`` when the figures are filtered
    to one age group, otherwise each age group's, labelled — all three, not only those
    present, since an anonymised page must not reveal that a scope has, say, one child
    client — and the SRS cutoff. ``ors_cutoffs``/``srs_cutoff``: the organisation's
    settings (statistics.md defaults when not given)."""
    x_ors = [p["session_number"] for p in points if p.get("ors_median") is not None]
    x_srs = [p["session_number"] for p in points if p.get("srs_median") is not None]
    shapes, annotations = _cutoff_lines(
        DEFAULT_SETTINGS.ors_cutoffs if ors_cutoffs is None else ors_cutoffs,
        DEFAULT_SETTINGS.srs_cutoff if srs_cutoff is None else srs_cutoff,
        age_group,
    )
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _("Median ORS"),
                "x": x_ors,
                "y": [p["ors_median"] for p in points if p.get("ors_median") is not None],
                "text": [
                    _n_text(p.get("n_ors")) for p in points if p.get("ors_median") is not None
                ],
                "line": {"color": "#1f5fa8", "width": 3},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _("Median SRS"),
                "x": x_srs,
                "y": [p["srs_median"] for p in points if p.get("srs_median") is not None],
                "text": [
                    _n_text(p.get("n_srs")) for p in points if p.get("srs_median") is not None
                ],
                "line": {"color": "#2e8540", "width": 3, "dash": "dot"},
            },
        ],
        "layout": {
            "font": FONT,
            "xaxis": {"title": {"text": _("Session number")}, "dtick": 1},
            "yaxis": {"title": {"text": _("Score")}, "range": [0, 40]},
            "margin": {"l": 50, "r": 10, "t": 40, "b": 50},
            "legend": _legend_above(),
            "shapes": shapes,
            "annotations": annotations,
        },
        "config": CONFIG,
    }


def implementation_figure(rows: list[dict[str, Any]]) -> dict[str, Any]:
    months = [str(r["month"])[:7] for r in rows]
    # Whole therapists on the right axis (plotly synced its ticks to the left axis and
    # drew "3.158", which a Danish reader takes for three thousand).
    most = max((r["active_therapists"] or 0 for r in rows), default=0)
    step = max(1, math.ceil(most / 5))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _("Share of sessions with ORS"),
                "x": months,
                "y": [r["share_with_ors"] * 100 for r in rows],
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _("Share of sessions with SRS"),
                "x": months,
                "y": [r["share_with_srs"] * 100 for r in rows],
            },
            {
                "type": "bar",
                "name": _("Active therapists"),
                "x": months,
                "y": [r["active_therapists"] for r in rows],
                "yaxis": "y2",
                "opacity": 0.3,
            },
        ],
        "layout": {
            "font": FONT,
            # Also the first column's heading of the values' table under the figure.
            "xaxis": {"title": {"text": _("Month")}},
            "yaxis": {"title": {"text": "%"}, "range": [0, 100]},
            "yaxis2": {
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "title": {"text": _("Active therapists")},
                "automargin": True,
                "tickmode": "linear",
                "tick0": 0,
                "dtick": step,
                "showgrid": False,
            },
            # room for the right axis' tick labels and title (10 px clipped them)
            "margin": {"l": 50, "r": 70, "t": 40, "b": 50},
            "legend": _legend_above(),
        },
        "config": CONFIG,
    }


def benchmark_figure(
    own: list[dict[str, Any]], others: list[dict[str, Any]], own_label: str
) -> dict[str, Any]:
    def trace(points: list[dict[str, Any]], name: str, dash: str) -> dict[str, Any]:
        pts = [p for p in points if p.get("ors_median") is not None]
        return {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": [p["session_number"] for p in pts],
            "y": [p["ors_median"] for p in pts],
            "line": {"dash": dash, "width": 3},
        }

    return {
        "data": [
            trace(own, own_label, "solid"),
            trace(others, _("All organisations"), "dot"),
        ],
        "layout": {
            "font": FONT,
            "xaxis": {"title": {"text": _("Session number")}, "dtick": 1},
            "yaxis": {"title": {"text": _("Median ORS")}, "range": [0, 40]},
            "margin": {"l": 50, "r": 10, "t": 40, "b": 50},
            "legend": _legend_above(),
        },
        "config": CONFIG,
    }


def spread_figure(summary: dict[str, Any]) -> dict[str, Any]:
    """The spread between therapists from its summary only (stats.selectors: median and
    quartiles, rounded): a box from the lower to the upper quartile with the median, no
    whiskers (the fences are the quartiles), no points — no therapist's own value."""
    name = _("Mean ORS change per therapist (active episodes)")
    return {
        "data": [
            {
                "type": "box",
                "name": name,
                "x": [name],
                "q1": [summary["q1"]],
                "median": [summary["median"]],
                "q3": [summary["q3"]],
                "lowerfence": [summary["q1"]],
                "upperfence": [summary["q3"]],
                "boxpoints": False,
                "hoverinfo": "skip",
            }
        ],
        "layout": {
            "font": FONT,
            "margin": {"l": 50, "r": 10, "t": 10, "b": 30},
            "xaxis": {"showticklabels": False},
            "yaxis": {"title": {"text": _("Mean ORS change")}},
        },
        "config": CONFIG,
    }
