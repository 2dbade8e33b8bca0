"""Plotly figures as plain JSON dicts, built server-side (rendered by our static
plotly.min.js). Plain dicts, not plotly.graph_objects: a page builds them in microseconds."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

FONT = {"family": "system-ui, sans-serif", "size": 14}


def _n_text(n: Any) -> str:
    """The hover text of a point: its n, or that the n is hidden (a point whose count
    could be subtracted from its siblings' keeps its median but not its n)."""
    return _("n hidden") if n is None else f"n = {int(n)}"


def trajectory_figure(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Median ORS and SRS per session number, with n per point in the hover text."""
    x_ors = [p["session_number"] for p in points if p.get("ors_median") is not None]
    x_srs = [p["session_number"] for p in points if p.get("srs_median") is not None]
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
            "margin": {"l": 50, "r": 10, "t": 10, "b": 50},
            "legend": {"orientation": "h"},
        },
    }


def implementation_figure(rows: list[dict[str, Any]]) -> dict[str, Any]:
    months = [str(r["month"])[:7] for r in rows]
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
            "yaxis": {"title": {"text": "%"}, "range": [0, 100]},
            "yaxis2": {"overlaying": "y", "side": "right", "rangemode": "tozero"},
            "margin": {"l": 50, "r": 10, "t": 10, "b": 50},
            "legend": {"orientation": "h"},
        },
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
            "margin": {"l": 50, "r": 10, "t": 10, "b": 50},
            "legend": {"orientation": "h"},
        },
    }


def spread_figure(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "box",
                "name": _("Mean ORS change per therapist"),
                "y": [r["ors_change"] for r in rows if r.get("ors_change") is not None],
                "boxpoints": False,
            }
        ],
        "layout": {"font": FONT, "margin": {"l": 50, "r": 10, "t": 10, "b": 30}},
    }
