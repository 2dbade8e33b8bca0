"""Template filters that show figures as the dashboards do (one decimal, whole counts, the
language's decimal mark), for pages that render stored figures themselves (the report
page of datapolicy)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django import template

register = template.Library()

# Columns of stored figures that count clients (shown whole); every other number is a
# mean, a median or an effect size (shown with one decimal).
COUNT_COLUMNS = frozenset(
    {
        "episodes",
        "sessions",
        "n_classified",
        "reliable_improvement",
        "reliable_deterioration",
        "no_reliable_change",
        "clinically_significant",
        "n_ors",
        "n_srs",
    }
)


@register.filter
def figure(value: Any, kind: str = "") -> str:
    """A stored figure for display: "–" when missing; with ``kind`` "count" a whole
    number, otherwise rounded half up to one decimal (statistics.md: round for display
    only); in the active language (12.299999999999999 → "12,3" on a Danish page)."""
    from stats.views import display_number

    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    if value != value:  # NaN
        return "–"
    if kind == "count":
        return display_number(value, 0)
    return display_number(value, 1)


@register.simple_tag
def column_figure(value: Any, columns: Sequence[str], index: int) -> str:
    """``figure`` for the ``index``-th of ``columns`` (whole for a count column). Stored
    counts may be floats (a suppressed table's columns become float)."""
    name = columns[index] if 0 <= index < len(columns) else ""
    return figure(value, "count" if name in COUNT_COLUMNS else "")


@register.filter
def iso_date(value: Any) -> dt.date | None:
    """An ISO date string ("2026-09-30", as stored in JSON figures) as a date for the
    ``date`` filter; None when it is not one."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


__all__ = ["COUNT_COLUMNS", "column_figure", "figure", "iso_date"]
