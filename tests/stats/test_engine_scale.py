"""The vectorised engine on a random 200,000-row frame, cross-checked for one therapist
against a plain per-episode computation written independently here."""

from __future__ import annotations

import statistics
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from stats.engine import (
    DAYS_PER_MONTH,
    episode_frame,
    median_trajectory,
    statistics_table,
)

AS_OF = date(2024, 6, 30)
CUTOFF = {"adult": 25.0, "youth": 28.0, "child": 32.0}


def random_sessions(n_episodes: int = 40_000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per_episode = rng.integers(1, 10, n_episodes)  # 1–9 sessions, mean 5 → ~200,000 rows
    episode_id = np.repeat(np.arange(n_episodes, dtype="int64") + 1000, per_episode)
    starts = np.cumsum(per_episode) - per_episode
    number = np.arange(len(episode_id)) - np.repeat(starts, per_episode) + 1
    first_day = pd.Timestamp("2023-06-01") + pd.to_timedelta(rng.integers(0, 390, n_episodes), "D")
    gaps = rng.integers(3, 22, len(episode_id))
    gaps[np.repeat(starts, per_episode) == np.arange(len(episode_id))] = 0
    offsets = pd.Series(gaps).groupby(episode_id).cumsum().to_numpy()
    session_date = (
        np.repeat(first_day.to_numpy(), per_episode) + pd.to_timedelta(offsets, "D").to_numpy()
    )
    therapist = rng.integers(1, 200, n_episodes)
    closed = np.where(
        rng.random(n_episodes) < 0.4,
        first_day + pd.to_timedelta(rng.integers(0, 400, n_episodes), "D"),
        pd.NaT,
    )
    ors = np.round(rng.uniform(0, 40, len(episode_id)), 1)
    ors[rng.random(len(episode_id)) < 0.15] = np.nan
    srs = np.round(rng.uniform(20, 40, len(episode_id)), 1)
    srs[rng.random(len(episode_id)) < 0.2] = np.nan
    frame = pd.DataFrame(
        {
            "org_id": np.repeat(therapist // 50, per_episode).astype("int64"),
            "unit_id": np.repeat(therapist // 10, per_episode).astype("int64"),
            "therapist_id": np.repeat(therapist, per_episode).astype("int64"),
            "episode_id": episode_id,
            "age_group": pd.Categorical(
                np.repeat(rng.choice(["adult", "youth", "child"], n_episodes), per_episode),
                categories=["adult", "youth", "child"],
            ),
            "closed_on": pd.to_datetime(np.repeat(closed, per_episode)).astype("datetime64[ns]"),
            "session_date": pd.to_datetime(session_date).astype("datetime64[ns]"),
            "session_number": number.astype("int64"),
            "ors": ors,
            "srs": srs,
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def brute_force_row(sessions: pd.DataFrame, therapist_id: int, active: bool) -> dict:
    """Per-episode loop over plain Python lists — the statistics.md table, independently."""
    as_of = pd.Timestamp(AS_OF)
    mine = sessions[(sessions.therapist_id == therapist_id) & (sessions.session_date <= as_of)]
    rows: list[dict] = []
    for _eid, ep in mine.groupby("episode_id"):
        ep = ep.sort_values("session_number")
        closed = ep.closed_on.iloc[0]
        is_closed = not pd.isna(closed) and closed <= as_of
        last = ep.session_date.max()
        is_active = (not is_closed) and (as_of - last).days <= 90
        if is_active != active:
            continue
        ors = [x for x in ep.ors if not np.isnan(x)]
        srs = [x for x in ep.srs if not np.isnan(x)]
        rows.append(
            {
                "sessions": len(ep),
                "days": (last - ep.session_date.min()).days,
                "ors": ors,
                "srs": srs,
                "cutoff": CUTOFF[ep.age_group.iloc[0]],
            }
        )

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    ors_start = [r["ors"][0] for r in rows if r["ors"]]
    two = [r for r in rows if len(r["ors"]) >= 2]
    changes = [r["ors"][-1] - r["ors"][0] for r in two]
    srs_changes = [r["srs"][-1] - r["srs"][0] for r in rows if len(r["srs"]) >= 2]
    sd = statistics.stdev([r["ors"][0] for r in two]) if len(two) >= 2 else float("nan")
    improved = [c >= 5 - 1e-9 for c in changes]
    return {
        "episodes": len(rows),
        "sessions": sum(r["sessions"] for r in rows),
        "treatment_months": mean([r["days"] for r in rows]) / DAYS_PER_MONTH,
        "ors_start": mean(ors_start),
        "srs_start": mean([r["srs"][0] for r in rows if r["srs"]]),
        "ors_change": mean(changes),
        "srs_change": mean(srs_changes),
        "effect_size_d": mean(changes) / sd,
        "effect_size_pct": mean(changes) / mean(ors_start) * 100,
        "reliable_improvement": sum(improved),
        "reliable_deterioration": sum(c <= -5 + 1e-9 for c in changes),
        "clinically_significant": sum(
            ok and r["ors"][0] < r["cutoff"] and r["ors"][-1] >= r["cutoff"]
            for ok, r in zip(improved, two, strict=True)
        ),
        "n_classified": len(two),
    }


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return random_sessions()


def test_table_matches_brute_force_for_one_therapist(big: pd.DataFrame):
    assert len(big) > 150_000
    started = time.perf_counter()
    episodes = episode_frame(big, as_of=AS_OF)
    table = statistics_table(episodes, by=["therapist_id"])
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # generous; typically ~0.1 s for 200,000 rows
    therapist = int(big.therapist_id.iloc[0])
    for active in (True, False):
        expected = brute_force_row(big, therapist, active)
        got = table.loc[(therapist, active)]
        assert expected["episodes"] > 5
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key


def test_trajectory_matches_brute_force_for_one_therapist(big: pd.DataFrame):
    therapist = int(big.therapist_id.iloc[0])
    traj = median_trajectory(big, by=["therapist_id"]).loc[therapist]
    mine = big[big.therapist_id == therapist]
    for number in (1, 2, 5):
        values = [x for x in mine.ors[mine.session_number == number] if not np.isnan(x)]
        assert traj.loc[number, "n_ors"] == len(values)
        assert traj.loc[number, "ors_median"] == pytest.approx(statistics.median(values))
