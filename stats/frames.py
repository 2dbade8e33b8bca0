"""The data layer of the statistics: sessions as a tidy pandas frame (the contract of
``stats.engine``), read with one query, never via model instances."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db import connection

from .engine import StatsSettings

FRAME_COLUMNS = [
    "org_id",
    "unit_id",
    "therapist_id",
    "episode_id",
    "age_group",
    "closed_on",
    "session_date",
    "session_number",
    "ors",
    "srs",
]

# One row per session with its outcome and alliance totals. ``{where}`` is filled with
# a fixed, parameterised condition by the callers below (never with user text).
FRAME_SQL = """
SELECT s.organisation_id, e.unit_id, e.therapist_id, s.episode_id, e.age_group,
       e.closed_on, s.date, s.number, o.total, r.total
FROM measures_session s
JOIN clients_episode e ON e.id = s.episode_id
LEFT JOIN measures_score o ON o.session_id = s.id AND o.kind = 'outcome'
LEFT JOIN measures_score r ON r.session_id = s.id AND r.kind = 'alliance'
WHERE {where}
"""


def org_stats_settings(organisation: Any) -> StatsSettings:
    """The organisation's statistics settings (statistics.md defaults where not set)."""
    defaults = StatsSettings()
    cutoffs = dict(defaults.ors_cutoffs)
    for group in ("adult", "youth", "child"):
        override = getattr(organisation, f"ors_cutoff_{group}", None)
        if override is not None:
            cutoffs[group] = float(override)
    return StatsSettings(
        inactivity_days=organisation.inactivity_days,
        small_cell_k=organisation.small_cell_k,
        reliable_change=float(organisation.reliable_change),
        ors_cutoffs=cutoffs,
        srs_cutoff=float(organisation.srs_cutoff),
    )


def frame_from_rows(rows: list[tuple]) -> pd.DataFrame:
    """Typed frame from raw rows in FRAME_COLUMNS order."""
    df = pd.DataFrame.from_records(rows, columns=FRAME_COLUMNS)
    return normalise_frame(df)


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    for col in ("org_id", "unit_id", "therapist_id", "episode_id", "session_number"):
        df[col] = df[col].astype("int64")
    df["age_group"] = df["age_group"].astype(str)
    df["closed_on"] = pd.to_datetime(df["closed_on"]).astype("datetime64[ns]")
    df["session_date"] = pd.to_datetime(df["session_date"]).astype("datetime64[ns]")
    df["ors"] = pd.to_numeric(df["ors"], errors="coerce").astype("float64")
    df["srs"] = pd.to_numeric(df["srs"], errors="coerce").astype("float64")
    return df


def sessions_frame_for_episodes(episode_ids: list[int]) -> pd.DataFrame:
    """Sessions of a few episodes (an episode page, alerts after a new session)."""
    if not episode_ids:
        return frame_from_rows([])
    placeholders = ", ".join(["%s"] * len(episode_ids))
    sql = FRAME_SQL.format(where=f"s.episode_id IN ({placeholders})")
    with connection.cursor() as cursor:
        cursor.execute(sql, list(episode_ids))
        rows = cursor.fetchall()
    return frame_from_rows(rows)


def sessions_frame_for_org(organisation_id: int, *, open_only: bool = False) -> pd.DataFrame:
    """All sessions of one organisation (or of its open episodes), one query."""
    where = "s.organisation_id = %s" + (" AND e.status = 'open'" if open_only else "")
    with connection.cursor() as cursor:
        cursor.execute(FRAME_SQL.format(where=where), [organisation_id])
        rows = cursor.fetchall()
    return frame_from_rows(rows)
