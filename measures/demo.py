"""Realistic, deterministic synthetic FIT data (demo organisation and benchmark scale).

Shapes follow statistics.md ("Realistic shapes"): intake ORS mostly 16-19 with some
clients above the cutoff, improvement with noise, a minority deteriorating, SRS high and
skewed (34-40 with dips), many short episodes with a long tail to 20 sessions, gaps of
1-3 weeks. Everything is vectorised with numpy so that a million sessions take seconds.
Client codes are letters + a running number; nothing looks like a CPR number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

CUTOFFS = {"adult": 25.0, "youth": 28.0, "child": 32.0}


@dataclass
class Generated:
    episodes: pd.DataFrame  # episode_key, therapist_key, unit_key, age_group, started_on, closed_on
    sessions: pd.DataFrame  # episode_key, number, date, ors items/total, srs items/total


def _items(rng: np.random.Generator, totals: np.ndarray) -> np.ndarray:
    """Four item marks (cm, one decimal) around total/4; the stored total is their sum."""
    items = totals[:, None] / 4.0 + rng.normal(0.0, 0.9, size=(len(totals), 4))
    return np.clip(np.round(items, 1), 0.0, 10.0)


def generate(
    rng: np.random.Generator,
    *,
    n_episodes: int,
    therapist_keys: np.ndarray,
    therapist_units: np.ndarray,
    unit_age_weights: dict[int, tuple[float, float, float]],
    today: dt.date,
    max_sessions: int = 20,
    years: float = 2.0,
) -> Generated:
    """Episodes spread over ``therapist_keys`` (each in ``therapist_units``)."""
    t_idx = rng.integers(0, len(therapist_keys), size=n_episodes)
    therapists = therapist_keys[t_idx]
    units = therapist_units[t_idx]
    groups = np.array(["adult", "youth", "child"])
    weights = np.array([unit_age_weights.get(int(u), (1.0, 0.0, 0.0)) for u in np.unique(units)])
    unit_pos = {int(u): i for i, u in enumerate(np.unique(units))}
    cum = np.cumsum(weights, axis=1)
    r = rng.random(n_episodes)
    row = cum[[unit_pos[int(u)] for u in units]]
    age = groups[(r[:, None] > row).sum(axis=1).clip(0, 2)]

    # Sessions per episode: many short, a long tail to max_sessions (mean about 4).
    n_sess = np.minimum(rng.geometric(0.24, size=n_episodes), max_sessions)
    gap_mean = rng.uniform(7, 21, size=n_episodes)
    span_days = int(years * 365)
    start_offset = rng.integers(0, span_days, size=n_episodes)
    started = np.datetime64(today) - start_offset.astype("timedelta64[D]")

    # Per-session rows.
    ep = np.repeat(np.arange(n_episodes), n_sess)
    number = (
        np.concatenate([np.arange(1, k + 1) for k in n_sess]) if n_episodes else np.array([], int)
    )
    gaps = np.maximum(1, rng.normal(gap_mean[ep], 3.0)).round().astype(int)
    gaps[number == 1] = 0
    cum_days = pd.Series(gaps).groupby(ep).cumsum().to_numpy()
    dates = started[ep] + cum_days.astype("timedelta64[D]")
    keep = dates <= np.datetime64(today)
    ep, number, dates = ep[keep], number[keep], dates[keep]
    # Renumber after dropping future sessions (numbers stay 1..k).
    number = pd.Series(1, index=range(len(ep))).groupby(ep).cumsum().to_numpy()

    # ORS: intake mostly 16-19, some above cutoff; change towards a personal target.
    cutoff = np.vectorize(CUTOFFS.get)(age)
    intake = rng.normal(16.8, 4.8, size=n_episodes)
    above = rng.random(n_episodes) < 0.12
    intake[above] = cutoff[above] + rng.uniform(0, 8, size=above.sum())
    intake = np.clip(intake, 1.0, 39.0)
    change = rng.normal(8.5, 5.0, size=n_episodes)
    change[above] = rng.normal(-1.0, 4.0, size=above.sum())  # start high, often fall
    worse = rng.random(n_episodes) < 0.08
    change[worse] = rng.normal(-7.0, 2.5, size=worse.sum())
    t = (number - 1).astype(float)
    ors_total = intake[ep] + change[ep] * (1 - np.exp(-t / 2.5)) + rng.normal(0, 2.0, size=len(ep))
    ors_total = np.clip(ors_total, 0.4, 39.6)

    # SRS: high and skewed, occasional dips.
    srs_total = 40.0 - rng.gamma(1.4, 1.6, size=len(ep))
    dips = rng.random(len(ep)) < 0.07
    srs_total[dips] -= rng.uniform(4, 12, size=dips.sum())
    srs_total = np.clip(srs_total, 4.0, 40.0)

    ors_items = _items(rng, ors_total)
    srs_items = _items(rng, srs_total)
    has_ors = rng.random(len(ep)) > 0.05
    has_srs = rng.random(len(ep)) > 0.08

    sessions = pd.DataFrame(
        {
            "episode_key": ep,
            "number": number,
            "date": pd.to_datetime(dates).date,
            "has_ors": has_ors,
            "has_srs": has_srs,
        }
    )
    for i in range(4):
        sessions[f"ors_{i + 1}"] = ors_items[:, i]
        sessions[f"srs_{i + 1}"] = srs_items[:, i]
    sessions["ors_total"] = ors_items.sum(axis=1).round(1)
    sessions["srs_total"] = srs_items.sum(axis=1).round(1)

    # Episodes: first/last session; closed when the last session is old, mostly.
    present = np.bincount(ep, minlength=n_episodes) > 0
    last = pd.Series(dates).groupby(ep).max()
    first = pd.Series(dates).groupby(ep).min()
    ep_ids = np.flatnonzero(present)
    last_d = pd.to_datetime(last.reindex(ep_ids).to_numpy())
    first_d = pd.to_datetime(first.reindex(ep_ids).to_numpy())
    age_days = (pd.Timestamp(today) - last_d).days.to_numpy()
    closed = (age_days > 45) & (rng.random(len(ep_ids)) < 0.8)
    closing = last_d + pd.to_timedelta(rng.integers(0, 10, len(ep_ids)), unit="D")
    closing = closing.where(closing <= pd.Timestamp(today), pd.Timestamp(today))
    closed_on = pd.Series(closing).where(closed)  # NaT where the episode is open
    episodes = pd.DataFrame(
        {
            "episode_key": ep_ids,
            "therapist_key": therapists[ep_ids],
            "unit_key": units[ep_ids],
            "age_group": age[ep_ids],
            "started_on": first_d.date,
            "closed_on": closed_on.to_numpy(),
        }
    )
    return Generated(episodes=episodes, sessions=sessions)
