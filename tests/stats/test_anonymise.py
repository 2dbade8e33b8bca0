"""Small-cell and complementary suppression (stats.anonymise), by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stats.anonymise import (
    REASON_COMPLEMENTARY,
    may_show_therapist_spread,
    suppress_table,
    suppress_trajectory,
)
from stats.engine import STATISTICS_COLUMNS

SMALL = "fewer than 5 clients"


def table(rows: dict, index: pd.Index) -> pd.DataFrame:
    """A statistics-table-shaped frame: given columns, every other column = episodes."""
    out = pd.DataFrame(rows, index=index)
    for col in STATISTICS_COLUMNS:
        if col not in out.columns:
            out[col] = out["episodes"].astype(float)
    return out[STATISTICS_COLUMNS]


ACTIVE = pd.Index([True, False], name="active")


def test_small_row_and_its_sibling_are_hidden():
    # active 3 clients (< 5) → hidden; inactive 10 would reveal it from the total (13)
    t = table({"episodes": [3, 10], "ors_start": [18.0, 16.0]}, ACTIVE)
    out, reasons = suppress_table(t, k=5)
    assert out.loc[True].isna().all()
    assert reasons.loc[True, "ors_start"] == SMALL
    assert out.loc[False].isna().all()
    assert reasons.loc[False, "episodes"] == REASON_COMPLEMENTARY
    # when no total is published, the sibling may be shown
    shown, _ = suppress_table(t, k=5, partition_levels=[])
    assert shown.loc[False, "episodes"] == 10 and shown.loc[False, "ors_start"] == 16.0


def test_zero_row_is_not_a_small_cell():
    # inactive 0: no client to disclose, and it must not drag the active row along
    t = table({"episodes": [12, 0], "ors_start": [18.0, np.nan]}, ACTIVE)
    out, reasons = suppress_table(t, k=5)
    assert out.loc[True, "episodes"] == 12 and out.loc[True, "ors_start"] == 18.0
    assert out.loc[False, "episodes"] == 0
    assert reasons.isna().all().all()


def test_outcome_classes_complementary_within_row():
    # 20 classified: improvement 12, deterioration 2 (< 5), no change 6; clinically sig. 3
    t = table(
        {
            "episodes": [25, 0],
            "n_classified": [20, 0],
            "reliable_improvement": [12, 0],
            "reliable_deterioration": [2, 0],
            "no_reliable_change": [6, 0],
            "clinically_significant": [3, 0],
        },
        ACTIVE,
    )
    out, reasons = suppress_table(t, k=5)
    row = out.loc[True]
    assert np.isnan(row["reliable_deterioration"])  # 2 < 5
    assert reasons.loc[True, "reliable_deterioration"] == SMALL
    # 20 − 12 − 6 = 2 would give it away → the next-smallest class (6) is hidden too;
    # hidden 2 + 6 = 8 ≥ 5 clients → enough
    assert np.isnan(row["no_reliable_change"])
    assert reasons.loc[True, "no_reliable_change"] == REASON_COMPLEMENTARY
    assert row["reliable_improvement"] == 12 and row["n_classified"] == 20
    assert np.isnan(row["clinically_significant"])  # 3 < 5
    assert row["episodes"] == 25


def test_units_summing_to_an_organisation():
    units = pd.MultiIndex.from_tuples([(1, 1), (1, 2), (1, 3)], names=["org_id", "unit_id"])
    t = table({"episodes": [3, 10, 20]}, units)
    out, reasons = suppress_table(t, k=5)
    # unit 1 (3) primary; unit 2 (10) is the next-smallest sibling; unit 3 stays
    assert out["episodes"].isna().tolist() == [True, True, False]
    assert reasons.loc[(1, 1), "episodes"] == SMALL
    assert reasons.loc[(1, 2), "episodes"] == REASON_COMPLEMENTARY


def test_two_small_siblings_need_k_together():
    units = pd.MultiIndex.from_tuples([(1, 1), (1, 2), (1, 3), (1, 4)], names=["org_id", "unit_id"])
    # 1 and 2 are both small; hidden together they hold 3 < 5 clients (recoverable sum of
    # three people) → the next-smallest, 30, is hidden too; 40 is shown
    t = table({"episodes": [1, 2, 30, 40]}, units)
    out, _ = suppress_table(t, k=5)
    assert out["episodes"].isna().tolist() == [True, True, True, False]


def test_two_dimensional_cascade():
    # units × active, both margins may be published: hiding (unit 1, active) forces its
    # active-sibling and its unit-sibling, which in a 2 × 2 table means all four
    idx = pd.MultiIndex.from_tuples(
        [(1, True), (1, False), (2, True), (2, False)], names=["unit_id", "active"]
    )
    t = table({"episodes": [3, 40, 20, 30]}, idx)
    out, _ = suppress_table(t, k=5)
    assert out["episodes"].isna().all()
    # with three units only the needed cells go: (1,T) small, (1,F) and (2,T) as its
    # siblings, then (2,F) for unit 2 — unit 3 stays
    idx3 = pd.MultiIndex.from_tuples(
        [(u, a) for u in (1, 2, 3) for a in (True, False)], names=["unit_id", "active"]
    )
    t3 = table({"episodes": [3, 40, 20, 30, 50, 60]}, idx3)
    out3, _ = suppress_table(t3, k=5)
    assert out3["episodes"].isna().tolist() == [True, True, True, True, False, False]


def test_cell_level_families_and_percentage():
    # row A: 8 clients but only 4 with an ORS start (none with two ORS); row B: 30 / 30
    t = table(
        {
            "episodes": [8, 30],
            "n_ors_start": [4, 30],
            "ors_start": [17.0, 18.0],
            "n_ors_change": [0, 30],
            "ors_change": [np.nan, 6.0],
            "effect_size_pct": [np.nan, 33.3],
        },
        ACTIVE,
    )
    out, reasons = suppress_table(t, k=5)
    assert out.loc[True, "episodes"] == 8  # the row itself is fine
    assert np.isnan(out.loc[True, "ors_start"]) and reasons.loc[True, "ors_start"] == SMALL
    # B's ORS start is the complement (else A's = total − B's)
    assert np.isnan(out.loc[False, "ors_start"])
    # B's change is shown, but change / pct would reveal B's start → pct hidden
    assert out.loc[False, "ors_change"] == 6.0
    assert np.isnan(out.loc[False, "effect_size_pct"])
    assert reasons.loc[False, "effect_size_pct"] == REASON_COMPLEMENTARY


def test_k_minimum_three():
    t = table({"episodes": [3, 10]}, ACTIVE)
    with pytest.raises(ValueError):
        suppress_table(t, k=2)
    out, _ = suppress_table(t, k=3)  # 3 is not below 3
    assert out["episodes"].tolist() == [3.0, 10.0]


def test_suppress_trajectory():
    traj = pd.DataFrame(
        {
            "ors_median": [14.0, 16.0, 20.0],
            "srs_median": [33.5, 35.0, 36.0],
            "n_ors": [6, 5, 2],
            "n_srs": [5, 4, 1],
        },
        index=pd.Index([1, 2, 3], name="session_number"),
    )
    out = suppress_trajectory(traj, k=5)
    assert list(out.index) == [1, 2]  # session 3: both lines < 5 → not drawn at all
    assert out.loc[1].tolist() == [14.0, 33.5, 6.0, 5.0]  # 5 is enough ("at least 5")
    assert out.loc[2, "ors_median"] == 16.0 and np.isnan(out.loc[2, "srs_median"])
    assert np.isnan(out.loc[2, "n_srs"])


def test_therapist_spread_needs_three_therapists():
    assert not may_show_therapist_spread(2)
    assert may_show_therapist_spread(3)
