"""Hand-computed checks of the ETR (stats.etr) and the ETR-based off-track alert."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from stats.engine import StatsSettings, episode_alerts, sessions_frame
from stats.etr import (
    EtrModel,
    episode_zones,
    etr_expected,
    etr_fit,
    etr_scope_figures,
)

AS_OF = date(2024, 6, 30)
START = date(2024, 5, 1)


def episode(
    episode_id: int,
    ors: list[float | None],
    *,
    age_group: str = "adult",
    closed_on: date | None = None,
    start: date = START,
) -> list[dict]:
    """One session a week from ``start`` with the given ORS totals (None = no ORS)."""
    return [
        {
            "org_id": 1,
            "unit_id": 1,
            "therapist_id": 1,
            "episode_id": episode_id,
            "age_group": age_group,
            "closed_on": closed_on,
            "session_date": start + timedelta(weeks=i),
            "ors": np.nan if score is None else score,
            "srs": 38.0,
        }
        for i, score in enumerate(ors)
    ]


def frame(*episodes: list[dict]) -> pd.DataFrame:
    return sessions_frame([row for ep in episodes for row in ep])


def fit_sessions() -> pd.DataFrame:
    return frame(
        episode(1, [10.0, 14.0, 15.0]),
        episode(2, [20.0, 22.0, 25.0], closed_on=date(2024, 6, 1)),
        episode(3, [30.0, 33.0]),
        episode(4, [40.0]),  # one ORS: no reference pair, not in the intake SD
    )


def test_fit_by_hand():
    model = etr_fit(fit_sessions(), StatsSettings(etr_min_n=3))
    points = model.points.set_index(["age_group", "session_number"])
    s2 = points.loc[("adult", 2)]
    # pairs (intake, ORS at session 2): (10, 14), (20, 22), (30, 33)
    # x̄ = 20, ȳ = 23; dx = −10, 0, 10; dy = −9, −1, 10
    # Sxy = 90 + 0 + 100 = 190, Sxx = 200 → slope 0.95, intercept 23 − 0.95·20 = 4.0
    assert s2["n"] == 3 and bool(s2["available"])
    assert s2["slope"] == pytest.approx(0.95)
    assert s2["intercept"] == pytest.approx(4.0)
    # residuals: 14 − 13.5 = 0.5, 22 − 23 = −1, 33 − 32.5 = 0.5 → sorted −1, 0.5, 0.5
    # 25th percentile (linear): position 0.25·(3 − 1) = 0.5 → −1 + 0.5·(0.5 − (−1)) = −0.25
    assert s2["boundary_offset"] == pytest.approx(-0.25)
    assert (s2["intake_min"], s2["intake_max"]) == (10.0, 30.0)
    # session 3 has only two pairs (< etr_min_n = 3): kept with n, but no coefficients
    s3 = points.loc[("adult", 3)]
    assert s3["n"] == 2 and not s3["available"] and np.isnan(s3["slope"])
    # intake SD over episodes with ≥ 2 ORS: 10, 20, 30 → mean 20, (100 + 0 + 100) / 2 = 100
    # → SD 10 (the single-ORS intake 40 is left out)
    assert model.intake_sd == {"adult": pytest.approx(10.0)}
    assert model.intake_sd_n == {"adult": 3}


def test_expected_by_hand_and_no_extrapolation():
    model = etr_fit(fit_sessions(), StatsSettings(etr_min_n=3))
    target, boundary = etr_expected(model, "adult", [10.0, 20.0, 5.0], 2)
    # 4 + 0.95·10 = 13.5; 4 + 0.95·20 = 23.0; intake 5 is outside the seen range 10–30
    assert target[:2] == pytest.approx([13.5, 23.0])
    assert boundary[:2] == pytest.approx([13.25, 22.75])  # target − 0.25
    assert np.isnan(target[2]) and np.isnan(boundary[2])
    # session 3 (too few) and youth (no data) → no ETR
    t3, b3 = etr_expected(model, ["adult", "youth"], 20.0, [3, 2])
    assert np.isnan(t3).all() and np.isnan(b3).all()


def test_insufficient_data_gives_no_curve():
    model = etr_fit(fit_sessions())  # default etr_min_n = 30
    assert not model.points["available"].any()
    assert model.max_session_number("adult") is None
    target, boundary = etr_expected(model, "adult", 20.0, 2)
    assert np.isnan(target) and np.isnan(boundary)
    zones = episode_zones(fit_sessions(), model)
    assert set(zones["zone"]) == {"grey"}
    second = zones[zones["ors_index"] == 2]
    assert set(second["zone_reason"]) == {"no ETR for this session number and intake"}


def test_model_round_trips_through_json():
    model = etr_fit(fit_sessions(), StatsSettings(etr_min_n=3))
    data = json.loads(json.dumps(model.to_dict()))
    again = EtrModel.from_dict(data)
    pd.testing.assert_frame_equal(again.points, model.points)
    assert again.intake_sd == model.intake_sd and again.min_n == 3


def hand_model(intake_sd: float = 5.0) -> EtrModel:
    """target = intake + 4 at session 2 (boundary −3), intake + 6 at session 3 (boundary −4)."""
    common = {"age_group": "adult", "available": True, "slope": 1.0, "n": 50}
    common |= {"intake_min": 0.0, "intake_max": 40.0}
    return EtrModel.from_dict(
        {
            "method": "hand",
            "min_n": 30,
            "boundary_quantile": 0.25,
            "intake_sd": {"adult": intake_sd},
            "intake_sd_n": {"adult": 50},
            "points": [
                {**common, "session_number": 2, "intercept": 4.0, "boundary_offset": -3.0},
                {**common, "session_number": 3, "intercept": 6.0, "boundary_offset": -4.0},
            ],
        }
    )


def test_zones():
    sessions = frame(
        # intake 20: s2 target 24 (boundary 21) → 24 green; s3 target 26 (boundary 22) → 23
        # orange; s4 has no ETR point → grey
        episode(1, [20.0, 24.0, 23.0, 30.0]),
        episode(2, [20.0, 20.9]),  # 20.9 < 21 → red
        episode(3, [20.0, 21.0]),  # exactly the boundary → orange (not below it)
        episode(4, [20.0, None, 21.9]),  # 2nd ORS at session 3: target 26, boundary 22 → red
        episode(5, [20.0, 24.0], age_group="youth"),  # no youth model → grey
    )
    zones = episode_zones(sessions, hand_model()).set_index(["episode_id", "session_number"])
    assert zones["zone"].astype(str).to_dict() == {
        (1, 1): "grey",
        (1, 2): "green",
        (1, 3): "orange",
        (1, 4): "grey",
        (2, 1): "grey",
        (2, 2): "red",
        (3, 1): "grey",
        (3, 2): "orange",
        (4, 1): "grey",
        (4, 3): "red",
        (5, 1): "grey",
        (5, 2): "grey",
    }
    assert zones.loc[(1, 1), "zone_reason"] == "fewer than two ORS"
    assert zones.loc[(1, 4), "zone_reason"] == "no ETR for this session number and intake"
    assert zones.loc[(1, 3), "target"] == 26.0 and zones.loc[(1, 3), "boundary"] == 22.0
    assert pd.isna(zones.loc[(1, 2), "zone_reason"])


def test_scope_figures():
    closed = date(2024, 6, 1)
    old = date(2024, 1, 1)  # last session Jan 8 → > 90 days before AS_OF: inactive
    sessions = frame(
        episode(1, [20.0, 24.0], closed_on=closed),  # last green → reaching target
        episode(2, [20.0, 22.0], closed_on=closed),  # orange → dropout
        episode(3, [20.0, 20.0], start=old),  # timed out, red → dropout
        episode(4, [20.0], closed_on=closed),  # one ORS: cannot be judged
        episode(5, [20.0, 22.0, 24.0, 30.0], closed_on=closed),  # last at s4: no ETR
        episode(6, [20.0, 25.0]),  # active: counts only in the relative effect size
    )
    figures = etr_scope_figures(sessions, hand_model(intake_sd=5.0), as_of=AS_OF)
    row = figures.loc["all"]
    assert row["ended"] == 5  # episodes 1–5
    assert row["ended_evaluable"] == 3  # episodes 1, 2, 3
    assert row["reaching_target"] == 1 and row["reaching_target_share"] == pytest.approx(1 / 3)
    assert row["dropout"] == 2 and row["dropout_share"] == pytest.approx(2 / 3)
    assert row["ended_single_ors"] == 1 and row["ended_no_etr"] == 1
    # (last − target) / 5: ep1 (24 − 24)/5 = 0; ep2 (22 − 24)/5 = −0.4; ep3 (20 − 24)/5 = −0.8;
    # ep6 (25 − 24)/5 = 0.2 → mean (0 − 0.4 − 0.8 + 0.2) / 4 = −0.25
    assert row["n_relative_effect"] == 4
    assert row["relative_effect_size"] == pytest.approx(-0.25)


def test_off_track_alert_with_etr():
    recent = date(2024, 6, 1)
    sessions = frame(
        # intake 20, session 3 target 26, boundary 22: 21.9 → red → off track
        episode(1, [20.0, 21.0, 21.9], start=recent),
        # 23.0 → orange: not off track although +3 < 5 (ETR is used where it exists)
        episode(2, [20.0, 21.0, 23.0], start=recent),
        # last ORS at session 4: no ETR point → fallback: +4 < 5 → off track
        episode(3, [20.0, 21.0, 23.0, 24.0], start=recent),
    )
    alerts = episode_alerts(sessions, as_of=AS_OF, etr_model=hand_model())
    assert alerts["off_track"].to_dict() == {1: True, 2: False, 3: True}
    assert alerts["off_track_basis"].astype(str).to_dict() == {
        1: "etr",
        2: "etr",
        3: "reliable_change",
    }
    assert alerts["last_zone"].astype(str).to_dict() == {1: "red", 2: "orange", 3: "grey"}
