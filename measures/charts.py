"""The client graph: ORS and SRS per session, cutoffs and the expected trajectory (ETR).

``episode_figure`` is a pure function from plain values to a plotly figure dict (tested
without a database); ``episode_chart`` reads one episode's figures through the stats data
layer and the organisation's ETR model (with the platform fallback its statistics use)
and calls it. The figure is rendered client-side
by our own static ``plotly.min.js``; every value is printed next to its marker so the
graph is readable without hovering (an iPad has no hover).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils.translation import gettext as _

ORS_COLOUR = "#1f5f8b"
SRS_COLOUR = "#7b3f98"
CUTOFF_COLOUR = "#b3261e"
ETR_COLOUR = "#2e7d32"
# How many sessions beyond the last one the expected trajectory is drawn.
ETR_AHEAD = 3
DEFAULT_INTERVAL_DAYS = 7


@dataclass(frozen=True)
class ChartSession:
    date: dt.date
    number: int
    ors: float | None
    srs: float | None


@dataclass(frozen=True)
class EtrBand:
    """Expected ORS (target) and its lower boundary at given dates and session numbers.

    ``projected`` marks points after the last session, placed at the episode's usual
    interval (they have no real date yet).
    """

    dates: list[dt.date]
    numbers: list[int]
    target: list[float]
    boundary: list[float]
    projected: list[bool] = field(default_factory=list)


@dataclass
class EpisodeChart:
    figure: dict[str, Any]
    note: str = ""
    has_band: bool = False


def _number(value: float) -> str:
    # Danish decimal comma in the value labels (the UI is Danish first).
    from django.utils.formats import number_format

    return str(number_format(round(value, 1), decimal_pos=1))


def _hover(scale: str, session: ChartSession, value: float) -> str:
    """A point's text when it is tapped: session number, date and value, in the page's
    language (plotly's own hover would show the date in English order)."""
    from django.utils.formats import date_format

    head = _("Session %(number)s, %(date)s") % {
        "number": session.number,
        "date": date_format(session.date),
    }
    return f"{head}<br>{scale} {_number(value)}"


def _padded_range(dates: list[dt.date]) -> list[str]:
    if not dates:
        today = dt.date.today()
        return [
            (today - dt.timedelta(days=7)).isoformat(),
            (today + dt.timedelta(days=7)).isoformat(),
        ]
    first, last = min(dates), max(dates)
    pad = max(2, (last - first).days // 12)
    return [
        (first - dt.timedelta(days=pad)).isoformat(),
        (last + dt.timedelta(days=pad)).isoformat(),
    ]


def _label_positions(values: list[float], cutoff: float) -> list[str]:
    """Where each point's value label goes: on the side away from the cutoff line (above
    a point at or above it, below a point under it), so that no label sits on the line
    (e.g. "36,0" on the SRS 36 line). The line passes through or beyond the marker on the
    other side."""
    return ["top center" if v >= cutoff else "bottom center" for v in values]


def episode_figure(
    *,
    sessions: list[ChartSession],
    ors_cutoff: float,
    srs_cutoff: float,
    band: EtrBand | None = None,
) -> dict[str, Any]:
    """Plotly figure (as a dict) of one episode: ORS panel above, SRS panel below."""
    ors_pts = [s for s in sessions if s.ors is not None]
    srs_pts = [s for s in sessions if s.srs is not None]
    all_dates = [s.date for s in sessions] + (band.dates if band else [])
    x_range = _padded_range(all_dates)
    traces: list[dict[str, Any]] = []
    if band is not None and band.dates:
        xs = [d.isoformat() for d in band.dates]
        traces.append(
            {
                "type": "scatter",
                "name": _("Expected trajectory: lower boundary"),
                "x": xs,
                "y": band.boundary,
                "mode": "lines",
                "line": {"color": ETR_COLOUR, "width": 1, "dash": "dot"},
                "xaxis": "x",
                "yaxis": "y",
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "name": _("Expected trajectory (ETR)"),
                "x": xs,
                "y": band.target,
                "mode": "lines",
                "line": {"color": ETR_COLOUR, "width": 2, "dash": "dash"},
                "fill": "tonexty",
                "fillcolor": "rgba(46,125,50,0.15)",
                "hovertext": [
                    _("Expected ORS at session %(number)s: %(value)s")
                    % {"number": n, "value": _number(v)}
                    for n, v in zip(band.numbers, band.target, strict=False)
                ],
                "hoverinfo": "text",
                "xaxis": "x",
                "yaxis": "y",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "name": _("Clinical cutoff %(value)s") % {"value": _number(ors_cutoff)},
            "x": x_range,
            "y": [ors_cutoff, ors_cutoff],
            "mode": "lines",
            "line": {"color": CUTOFF_COLOUR, "width": 2, "dash": "dash"},
            "xaxis": "x",
            "yaxis": "y",
            "hoverinfo": "skip",
        }
    )
    traces.append(
        {
            "type": "scatter",
            "name": "ORS",
            "x": [s.date.isoformat() for s in ors_pts],
            "y": [s.ors for s in ors_pts],
            "text": [_number(s.ors) for s in ors_pts if s.ors is not None],
            "customdata": [s.number for s in ors_pts],
            "hovertext": [_hover("ORS", s, s.ors) for s in ors_pts if s.ors is not None],
            "hoverinfo": "text",
            "mode": "lines+markers+text",
            "textposition": _label_positions(
                [s.ors for s in ors_pts if s.ors is not None], ors_cutoff
            ),
            "textfont": {"size": 18, "color": ORS_COLOUR},
            "marker": {"size": 12, "color": ORS_COLOUR},
            "line": {"color": ORS_COLOUR, "width": 3},
            "cliponaxis": False,
            "xaxis": "x",
            "yaxis": "y",
        }
    )
    traces.append(
        {
            "type": "scatter",
            "name": _("Alliance limit %(value)s") % {"value": _number(srs_cutoff)},
            "x": x_range,
            "y": [srs_cutoff, srs_cutoff],
            "mode": "lines",
            "line": {"color": CUTOFF_COLOUR, "width": 1.5, "dash": "dot"},
            "xaxis": "x2",
            "yaxis": "y2",
            "hoverinfo": "skip",
        }
    )
    traces.append(
        {
            "type": "scatter",
            "name": "SRS",
            "x": [s.date.isoformat() for s in srs_pts],
            "y": [s.srs for s in srs_pts],
            "text": [_number(s.srs) for s in srs_pts if s.srs is not None],
            "hovertext": [_hover("SRS", s, s.srs) for s in srs_pts if s.srs is not None],
            "hoverinfo": "text",
            "mode": "lines+markers+text",
            "textposition": _label_positions(
                [s.srs for s in srs_pts if s.srs is not None], srs_cutoff
            ),
            "textfont": {"size": 16, "color": SRS_COLOUR},
            "marker": {"size": 10, "color": SRS_COLOUR, "symbol": "diamond"},
            "line": {"color": SRS_COLOUR, "width": 2},
            "cliponaxis": False,
            "xaxis": "x2",
            "yaxis": "y2",
        }
    )
    # The client reads the graph from beside the therapist, at an arm's length from the
    # iPad: no text under 16 px (the plotly default is 12).
    axis_font = {"size": 16}
    layout = {
        "margin": {"l": 60, "r": 16, "t": 16, "b": 48},
        "font": {"family": "-apple-system, Segoe UI, Roboto, Helvetica, Arial", "size": 16},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "traceorder": "normal",
            "x": 0,
            "y": -0.12,
            "font": {"size": 16},
        },
        "hovermode": "closest",
        # No zooming or panning: on an iPad a finger that lands on the graph (which fills
        # most of the screen) must scroll the page, not zoom the dates away with no way
        # back but plotly's English "Double-click to zoom back out". A tap still shows a
        # point's text.
        "dragmode": False,
        "xaxis": {
            "type": "date",
            "range": x_range,
            "anchor": "y",
            "showticklabels": False,
            "gridcolor": "#e6eaee",
            "fixedrange": True,
        },
        "xaxis2": {
            "type": "date",
            "range": x_range,
            "anchor": "y2",
            "matches": "x",
            "tickformat": "%-d/%-m",
            "tickfont": axis_font,
            "gridcolor": "#e6eaee",
            "fixedrange": True,
        },
        "yaxis": {
            "domain": [0.36, 1.0],
            "range": [0, 42],
            "dtick": 10,
            "title": {"text": _("ORS (outcome)"), "font": axis_font},
            "gridcolor": "#e6eaee",
            "fixedrange": True,
        },
        "yaxis2": {
            "domain": [0.0, 0.26],
            "range": [20, 42],
            "dtick": 5,
            "title": {"text": _("SRS (alliance)"), "font": axis_font},
            "gridcolor": "#e6eaee",
            "fixedrange": True,
        },
    }
    if srs_pts and min(s.srs for s in srs_pts if s.srs is not None) < 20:
        layout["yaxis2"]["range"] = [0, 42]  # type: ignore[index]
    return {"data": traces, "layout": layout}


def figure_config() -> dict[str, Any]:
    return {"responsive": True, "displayModeBar": False, "displaylogo": False}


def _band_end_reason(model: Any, age_group: str, number: int) -> str:
    """Why the reference data gives no expected ORS at session ``number``."""
    point = model.point(age_group, number)
    n = 0 if point is None else int(point["n"])
    if point is not None and bool(point["available"]):
        return _(
            "at session %(number)s the intake score lies outside the range of the reference data"
        ) % {"number": number}
    if n >= model.min_n:
        return _(
            "the reference clients with an ORS at session %(number)s all had the same intake score"
        ) % {"number": number}
    return _(
        "the reference data has %(n)s clients with an ORS at session %(number)s "
        "(at least %(min_n)s are needed)"
    ) % {"n": n, "number": number, "min_n": model.min_n}


def etr_band_for(
    *,
    model: Any,
    age_group: str,
    sessions: list[ChartSession],
    closed: bool = False,
) -> tuple[EtrBand | None, str]:
    """The expected trajectory after the intake ORS, or None with a plain reason.

    The band covers the sessions held and, for an open episode, ``ETR_AHEAD`` sessions
    ahead; a closed episode's band ends at its last session. When the reference data ends
    before the episode's last session, the note says at which session and why. When the
    age group's points come from the platform's reference data (``model.borrowed``,
    stats.etr.etr_with_fallback), the note says so."""
    from stats.etr import etr_expected

    ors_pts = [s for s in sessions if s.ors is not None]
    if not ors_pts:
        return None, _("No ORS yet: the graph starts with the first ORS.")
    intake = ors_pts[0]
    last = sessions[-1]
    borrowed = age_group in getattr(model, "borrowed", ())
    max_point = model.max_session_number(age_group)
    if max_point is None or max_point <= intake.number:
        if borrowed:
            return None, _(
                "No expected trajectory yet: neither the organisation nor the whole "
                "platform has enough episodes of this age group with ORS scores to compute "
                "one (at least %(n)s are needed per session)."
            ) % {"n": model.min_n}
        return None, _(
            "No expected trajectory yet: the organisation has too few episodes of this age "
            "group with ORS scores to compute one (at least %(n)s are needed per session)."
        ) % {"n": model.min_n}
    gaps = [(b.date - a.date).days for a, b in itertools.pairwise(sessions)]
    gaps = [g for g in gaps if g > 0]
    interval = int(np.median(gaps)) if gaps else DEFAULT_INTERVAL_DAYS
    numbers: list[int] = []
    dates: list[dt.date] = []
    projected: list[bool] = []
    for s in sessions:
        if s.number > intake.number:
            numbers.append(s.number)
            dates.append(s.date)
            projected.append(False)
    # A closed episode has no sessions ahead: its band ends at its last session.
    ahead = 0 if closed else ETR_AHEAD
    for k in range(1, ahead + 1):
        numbers.append(last.number + k)
        dates.append(last.date + dt.timedelta(days=interval * k))
        projected.append(True)
    intake_ors = float(intake.ors or 0.0)
    target, boundary = etr_expected(model, age_group, intake_ors, numbers)
    keep = [i for i in range(len(numbers)) if not math.isnan(float(target[i]))]
    if not keep:
        return None, _(
            "No expected trajectory for this client: the intake score lies outside the "
            "range of the organisation's reference data."
        )
    # The band starts at the intake itself so that it reads as a path from there.
    band = EtrBand(
        dates=[intake.date] + [dates[i] for i in keep],
        numbers=[intake.number] + [numbers[i] for i in keep],
        target=[intake_ors] + [round(float(target[i]), 1) for i in keep],
        boundary=[intake_ors] + [round(float(boundary[i]), 1) for i in keep],
        projected=[False] + [projected[i] for i in keep],
    )
    if any(band.projected):
        notes = [
            _(
                "The shaded band is the expected trajectory for clients with the same intake "
                "score; points after the last session are placed at the usual interval."
            )
        ]
    else:
        notes = [
            _("The shaded band is the expected trajectory for clients with the same intake score.")
        ]
    held = [numbers[i] for i in keep if not projected[i]]
    end = max(held) if held else intake.number
    if end < last.number:
        notes.append(
            _("The band ends at session %(end)s: %(reason)s.")
            % {
                "end": end,
                "reason": _band_end_reason(model, age_group, end + 1),
            }
        )
    if borrowed:
        notes.append(
            _(
                "It is built from the whole platform's anonymised reference data: the "
                "organisation has too few episodes of this age group with ORS scores for "
                "its own."
            )
        )
    return band, " ".join(notes)


def episode_chart(episode: Any) -> EpisodeChart:
    """The graph of one episode. Assumes the caller may see the episode (access-logged)."""
    from stats.frames import org_stats_settings, sessions_frame_for_episodes
    from stats.selectors import etr_model_for

    frame = sessions_frame_for_episodes([episode.pk]).sort_values("session_number")
    sessions = [
        ChartSession(
            date=row.session_date.date(),
            number=int(row.session_number),
            ors=None if math.isnan(row.ors) else float(row.ors),
            srs=None if math.isnan(row.srs) else float(row.srs),
        )
        for row in frame.itertuples()
    ]
    settings = org_stats_settings(episode.organisation)
    ors_cutoff = float(settings.ors_cutoffs.get(episode.age_group, 25.0))
    band: EtrBand | None = None
    note = ""
    if sessions:
        band, note = etr_band_for(
            model=etr_model_for(episode.organisation),
            age_group=episode.age_group,
            sessions=sessions,
            closed=episode.status == "closed",
        )
    else:
        note = _("No sessions yet.")
    figure = episode_figure(
        sessions=sessions, ors_cutoff=ors_cutoff, srs_cutoff=settings.srs_cutoff, band=band
    )
    return EpisodeChart(figure=figure, note=note, has_band=band is not None)
