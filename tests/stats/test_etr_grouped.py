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


def test_grouped_figures_equal_one_call_per_organisation():
    """The ETR zones and figures of every organisation in one pass
    (etr_scope_figures_many) equal one etr_scope_figures call per organisation, each
    with its own model — here deliberately different models (one per settings level and
    one without any available point, whose episodes then have no zone)."""
    from stats.engine import episode_frame
    from stats.etr import (
        etr_scope_figures,
        etr_scope_figures_many,
        last_ors_zones_from_points,
        last_ors_zones_many,
    )

    frame = _org_sessions()
    as_of = frame["session_date"].max()
    ep = episode_frame(frame, as_of=as_of)
    pts = ors_points(frame)
    org_of_point = ep["org_id"].reindex(pts["episode_id"].to_numpy()).to_numpy()
    models = etr_fit_many(
        pts,
        org_of_point,
        {
            0: StatsSettings(),
            1: StatsSettings(etr_min_n=5, etr_boundary_quantile=0.1),
            2: StatsSettings(etr_min_n=40),
            3: StatsSettings(etr_min_n=10_000),
        },
    )
    by = ["org_id", "unit_id", "therapist_id"]
    grouped = etr_scope_figures_many(ep, pts, org_of_point, models, group_column="org_id", by=by)
    zones = last_ors_zones_many(pts, org_of_point, models)
    alone = []
    for oid, model in models.items():
        org_frame = frame.loc[frame["org_id"] == oid]
        alone.append(etr_scope_figures(org_frame, model, as_of=as_of, by=by))
        own_zones = last_ors_zones_from_points(pts.loc[org_of_point == oid], model)
        pd.testing.assert_frame_equal(zones.loc[own_zones.index], own_zones, check_exact=True)
    expected = pd.concat(alone)
    pd.testing.assert_frame_equal(grouped, expected, check_exact=True)
    # The models really give different figures: org 3 has no zone at all, org 0 has.
    assert grouped.loc[3, "ended_evaluable"].sum() == 0
    assert grouped.loc[0, "ended_evaluable"].sum() > 0
    assert grouped.loc[0, "relative_effect_size"].notna().any()


def test_grouped_figures_need_the_population_first():
    import pytest

    from stats.engine import episode_frame
    from stats.etr import etr_scope_figures_many

    frame = _org_sessions()
    ep = episode_frame(frame, as_of=frame["session_date"].max())
    pts = ors_points(frame)
    with pytest.raises(ValueError):
        etr_scope_figures_many(
            ep, pts, np.zeros(len(pts)), {}, group_column="org_id", by=["unit_id"]
        )
