"""CSV and XLSX export of the dashboard tables (the same suppression as the page)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.utils.translation import gettext as _

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
        return [head] + [[p.get(c) for c in head] for p in figures.trajectory]
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
        return [head] + [
            [str(r.get(c)) if c == "month" else r.get(c) for c in head]
            for r in figures.implementation
        ]
    if table == "quality":
        return [["figure", "value"]] + [[k, v] for k, v in figures.quality.items()]
    raise ValueError("unknown table")


def to_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 correctly


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
