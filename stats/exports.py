"""CSV and XLSX export of the dashboard tables (the same suppression as the page)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from .reasons import hidden_note
from .selectors import Figures

TABLES = ("statistics", "outcomes", "trajectory", "implementation", "quality")


def table_label_rows() -> list[tuple[str, str]]:
    """(column, Danish label) of the seed's statistics table, in its order."""
    return [
        ("episodes", _("Clients")),
        ("sessions", _("Sessions")),
        ("sessions_per_episode", _("Average number of sessions")),
        ("treatment_months", _("Average treatment period (months)")),
        ("srs_start", _("Average SRS score at start")),
        ("ors_start", _("Average ORS score at start")),
        ("srs_change", _("Average SRS change")),
        ("ors_change", _("Average ORS change")),
    ]


def outcome_label_rows() -> list[tuple[str, str]]:
    return [
        ("n_classified", _("Clients with at least two ORS")),
        ("reliable_improvement", _("Reliable improvement")),
        ("no_reliable_change", _("No reliable change")),
        ("reliable_deterioration", _("Reliable deterioration")),
        ("clinically_significant", _("Clinically significant improvement")),
    ]


def rows_for(figures: Figures, table: str) -> list[list[Any]]:
    """The table as rows (header first); hidden cells as the text of their reason."""

    def cell(side: str, col: str) -> Any:
        value = figures.table[side].get(col)
        if value is None and col in figures.suppressed[side]:
            return _("hidden") + f" ({figures.suppressed[side][col]})"
        return value

    if table in ("statistics", "outcomes"):
        labels = table_label_rows() if table == "statistics" else outcome_label_rows()
        rows: list[list[Any]] = [["", _("Active"), _("Inactive")]]
        for col, label in labels:
            rows.append([label, cell("active", col), cell("inactive", col)])
        if table == "statistics":
            rows.append(
                [
                    _("Effect size (d)"),
                    cell("active", "effect_size_d"),
                    cell("inactive", "effect_size_d"),
                ]
            )
            rows.append(
                [
                    _("Effect size (%)"),
                    cell("active", "effect_size_pct"),
                    cell("inactive", "effect_size_pct"),
                ]
            )
        return rows
    if table == "trajectory":
        head = ["session_number", "ors_median", "n_ors", "srs_median", "n_srs"]
        titles = [
            _("Session number"),
            _("Median ORS"),
            _("Episodes with an ORS"),
            _("Median SRS"),
            _("Episodes with an SRS"),
        ]
        medians = {"n_ors": "ors_median", "n_srs": "srs_median"}

        def point(p: dict[str, Any], c: str) -> Any:
            # A point drawn without its n (hidden as a complement) reads as every hidden
            # cell of the exports, not as an empty cell (the chart says "n hidden").
            if c in medians and p.get(c) is None and p.get(medians[c]) is not None:
                return _("hidden") + f" ({hidden_note(figures.k)})"
            return p.get(c)

        return [titles] + [[point(p, c) for c in head] for p in figures.trajectory]
    if table == "implementation":
        head = [
            "month",
            "sessions",
            "sessions_with_ors",
            "sessions_with_srs",
            "share_with_ors",
            "share_with_srs",
            "active_therapists",
        ]
        titles = [
            _("Month"),
            _("Sessions"),
            _("Sessions with an ORS"),
            _("Sessions with an SRS"),
            _("Share of sessions with an ORS (%)"),
            _("Share of sessions with an SRS (%)"),
            _("Therapists who registered"),
        ]

        def impl(r: dict[str, Any], c: str) -> Any:
            value = r.get(c)
            if c == "month":
                return str(value)[:7]  # 2026-01
            if c.startswith("share_") and isinstance(value, int | float):
                return value * 100  # shown in per cent, as the chart
            return value

        return [titles] + [[impl(r, c) for c in head] for r in figures.implementation]
    if table == "quality":
        names = dict(quality_label_rows())
        return [[_("Figure"), _("Number")]] + [
            [names.get(k, k), v] for k, v in figures.quality.items()
        ]
    raise ValueError("unknown table")


def quality_label_rows() -> list[tuple[str, str]]:
    return [
        ("ghost_episodes", _("Ghost episodes (therapist deactivated)")),
        ("open_past_inactivity", _("Open episodes past the inactivity window")),
        ("duplicate_same_date_sessions", _("Extra sessions on the same date")),
        ("srs_without_ors", _("Sessions with SRS but without ORS")),
        ("intake_above_cutoff", _("Intake ORS above the cutoff")),
    ]


def _display(value: Any) -> Any:
    """A figure as the page shows it: whole numbers as integers, the rest rounded to one
    decimal (statistics.md: round for display only) — an export is a display."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if float(value).is_integer():
        return int(value)
    return round(float(value), 1)


def to_csv(rows: list[list[Any]]) -> bytes:
    """Semicolon-separated with numbers in the language's notation (a decimal comma in
    Danish), so that a Danish spreadsheet reads them as numbers."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    for row in rows:
        cells = []
        for v in row:
            shown = _display(v)
            if shown is None:
                cells.append("")
            elif isinstance(shown, float):
                cells.append(formats.number_format(shown, 1))
            else:
                cells.append(shown)
        writer.writerow(cells)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 correctly


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    for row in rows:
        ws.append([_display(v) for v in row])
    for cells in ws.iter_rows():
        for c in cells:
            if isinstance(c.value, float):
                c.number_format = "0.0"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
