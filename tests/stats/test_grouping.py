"""The engine groups by one packed int64 key instead of several columns
(stats.engine.group_aggregate) and counts distinct values per group by hashing packed
pairs. Both must give exactly what plain pandas gives: the same index (names, dtypes,
order) and the same figures, for negative ids, booleans, single keys and key sets that do
not fit into one integer (then the plain groupby is used)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stats.engine import (
    _distinct_per_key,
    _packed_key,
    group_aggregate,
    implementation_by_unit_month,
)
from tests.stats.test_engine_scale import random_sessions


def _frame(n: int = 5_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.integers(-3, 4, n),  # negative values too
            "b": rng.integers(0, 50, n) * 1_000_003,  # large, sparse ids
            "flag": rng.random(n) < 0.3,
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(20, 5, n)),
            "y": rng.integers(0, 9, n),
        }
    )


def _agg(g):
    return g.agg(
        n=("x", "size"),
        mean=("x", "mean"),
        median=("x", "median"),
        std=("x", "std"),
        total=("y", "sum"),
        distinct=("y", "nunique"),
    )


def test_packed_grouping_equals_plain_groupby():
    df = _frame()
    for keys in (["a"], ["a", "b"], ["b", "flag"], ["a", "b", "flag"]):
        assert _packed_key(df, keys) is not None, keys
        expected = _agg(df.groupby(keys, sort=True))
        got = group_aggregate(df, keys, _agg)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_keys_that_do_not_fit_fall_back_to_the_plain_groupby():
    df = _frame()
    df["huge"] = np.where(df["flag"], 2**61, 0)  # 62 bits on its own
    df["label"] = np.where(df["flag"], "p", "q")  # not an integer
    for keys in (["huge", "a"], ["label", "a"]):
        assert _packed_key(df, keys) is None
        pd.testing.assert_frame_equal(
            group_aggregate(df, keys, _agg), _agg(df.groupby(keys, sort=True)), check_exact=True
        )


def test_distinct_per_key_equals_nunique():
    df = _frame()
    key, _ = _packed_key(df, ["a", "b"])
    index = pd.Index(np.unique(key))
    expected = df.groupby(key, sort=True)["y"].nunique().to_numpy()
    np.testing.assert_array_equal(_distinct_per_key(key, df["y"], index), expected)
    # Hand-checked: key 7 has values {1, 1, 2} → 2, key 9 has {5} → 1.
    got = _distinct_per_key(np.array([7, 9, 7, 7]), pd.Series([1, 5, 1, 2]), pd.Index([7, 9]))
    assert got.tolist() == [2, 1]


def test_implementation_equals_the_plain_month_grouping():
    s = random_sessions(n_episodes=3_000, seed=5)
    got = implementation_by_unit_month(s)
    w = pd.DataFrame(
        {
            "org_id": s["org_id"],
            "unit_id": s["unit_id"],
            "month": s["session_date"].dt.to_period("M").dt.to_timestamp(),
            "episode_id": s["episode_id"],
            "therapist_id": s["therapist_id"],
            "with_ors": s["ors"].notna().astype("int64"),
            "with_srs": s["srs"].notna().astype("int64"),
            "with_both": (s["ors"].notna() & s["srs"].notna()).astype("int64"),
        }
    )
    plain = w.groupby(["org_id", "unit_id", "month"], sort=True).agg(
        sessions=("episode_id", "size"),
        episodes=("episode_id", "nunique"),
        sessions_with_ors=("with_ors", "sum"),
        sessions_with_srs=("with_srs", "sum"),
        sessions_with_both=("with_both", "sum"),
        active_therapists=("therapist_id", "nunique"),
    )
    pd.testing.assert_frame_equal(got[plain.columns], plain, check_exact=True)
    assert got["episodes"].sum() > got.index.nunique()  # several episodes per month
