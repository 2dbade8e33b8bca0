"""The nightly recompute fits every organisation's ETR model in one grouped pass
(stats.etr.etr_fit_many). Each model must be exactly the one a separate fit on that
organisation's own points gives, whatever the other organisations contain and whatever
their settings: a population's figures may not depend on its neighbours."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from stats.engine import StatsSettings
from stats.etr import etr_fit, etr_fit_many, ors_points
from tests.stats.test_engine_scale import random_sessions


def _org_sessions() -> pd.DataFrame:
    frame = random_sessions(n_episodes=6_000, seed=11)
    # org 3 (the smallest) gets only youth episodes: its model has no adult/child points
    small = frame["org_id"] == 3
    frame["age_group"] = frame["age_group"].where(~small, "youth")
    return frame


def test_grouped_fit_equals_one_fit_per_organisation():
    frame = _org_sessions()
    pts = ors_points(frame)
    org_of_point = (
        frame.drop_duplicates("episode_id")
        .set_index("episode_id")["org_id"]
        .reindex(pts["episode_id"].to_numpy())
        .to_numpy()
    )
    settings = {
        0: StatsSettings(),
        1: StatsSettings(etr_min_n=5, etr_boundary_quantile=0.1),  # other settings
        2: StatsSettings(etr_min_n=5, etr_boundary_quantile=0.1),
        3: StatsSettings(etr_min_n=10_000),  # no point has enough episodes
    }
    assert sorted(np.unique(org_of_point).tolist()) == [0, 1, 2, 3]

    grouped = etr_fit_many(pts, org_of_point, settings)

    assert sorted(grouped) == [0, 1, 2, 3]
    for oid, st in settings.items():
        alone = etr_fit(frame.loc[frame["org_id"] == oid], st)
        # Byte-identical snapshots: same points, coefficients, SDs and settings.
        assert json.dumps(grouped[oid].to_dict()) == json.dumps(alone.to_dict()), oid
    # The settings really differ in effect (otherwise the test proves little).
    default_1 = etr_fit(frame.loc[frame["org_id"] == 1], StatsSettings())
    assert not np.allclose(
        grouped[1].available_points()["boundary_offset"].to_numpy()[:5],
        default_1.available_points()["boundary_offset"].to_numpy()[:5],
    )
    assert not grouped[3].points["available"].any()
    assert set(grouped[3].intake_sd) == {"youth"}
    assert grouped[0].points["available"].any()


def test_grouped_fit_of_a_population_without_points_is_empty():
    frame = _org_sessions()
    pts = ors_points(frame)
    models = etr_fit_many(pts.iloc[0:0], np.zeros(0, dtype="int64"), {7: StatsSettings()})
    assert models[7].points.empty
    assert models[7].intake_sd == {}


def test_grouped_fit_of_no_population_is_nothing():
    pts = ors_points(_org_sessions())
    assert etr_fit_many(pts, np.zeros(len(pts), dtype="int64"), {}) == {}
