"""Hand-computed checks of stats.engine (no database).

Every expected number is worked out on paper in the comment next to it.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from stats.engine import (
    DAYS_PER_MONTH,
    STATISTICS_COLUMNS,
    StatsSettings,
    data_quality,
    episode_alerts,
    episode_frame,
    implementation_by_unit_month,
    median_trajectory,
    sessions_frame,
    statistics_table,
)

AS_OF = date(2024, 6, 30)


def episode(
    episode_id: int,
    visits: list[tuple[date, float | None, float | None]],
    *,
    therapist_id: int = 1,
    unit_id: int = 10,
    org_id: int = 100,
    age_group: str = "adult",
    closed_on: date | None = None,
) -> list[dict]:
    """Session rows for one episode; visits = [(date, ors, srs), …] in date order."""
    return [
        {
            "org_id": org_id,
            "unit_id": unit_id,
            "therapist_id": therapist_id,
            "episode_id": episode_id,
            "age_group": age_group,
            "closed_on": closed_on,
            "session_date": when,
            "ors": np.nan if ors is None else ors,
            "srs": np.nan if srs is None else srs,
        }
        for when, ors, srs in visits
    ]


def frame(*episodes: list[dict]) -> pd.DataFrame:
    rows = [row for ep in episodes for row in ep]
    # shuffle deterministically: the engine must not rely on row order
    return sessions_frame(rows).iloc[::-1].reset_index(drop=True)


def d(month: int, day: int) -> date:
    return date(2024, month, day)


# --------------------------------------------------------------------------- seed check


def seed_sessions() -> pd.DataFrame:
    closed = d(6, 1)
    return frame(
        # active: first ORS 17.0 and 19.0 (mean 18.0), changes 3.0 and 3.6 (mean 3.3)
        episode(1, [(d(6, 1), 17.0, 36.0), (d(6, 15), 20.0, 37.0)]),
        episode(2, [(d(6, 1), 19.0, 36.0), (d(6, 15), 22.6, 36.0)]),
        # inactive (closed): first 15.0, 16.5, 17.0 (mean 48.5/3 = 16.1667),
        # changes 8.0, 9.1, 9.0 (mean 26.1/3 = 8.7)
        episode(3, [(d(5, 1), 15.0, 33.0), (d(5, 20), 23.0, 35.0)], closed_on=closed),
        episode(4, [(d(5, 1), 16.5, 34.0), (d(5, 20), 25.6, 34.0)], closed_on=closed),
        episode(5, [(d(5, 1), 17.0, 33.5), (d(5, 20), 26.0, 34.0)], closed_on=closed),
    )


def test_seed_worked_check_percentages_from_unrounded_values():
    table = statistics_table(episode_frame(seed_sessions(), as_of=AS_OF), by=[])
    active, inactive = table.loc[True], table.loc[False]
    # active: 3.3 / 18.0 * 100 = 18.333… → shown 18.3 %
    assert active["ors_start"] == pytest.approx(18.0)
    assert active["ors_change"] == pytest.approx(3.3)
    assert active["effect_size_pct"] == pytest.approx(18.3333333, rel=1e-7)
    assert round(active["effect_size_pct"], 1) == 18.3
    # inactive: start 48.5/3 = 16.1667 (shown 16.2), change 8.7;
    # 8.7 / 16.1667 * 100 = 26.1 / 48.5 * 100 = 53.8144 → shown 53.8 %
    assert round(inactive["ors_start"], 1) == 16.2
    assert inactive["ors_change"] == pytest.approx(8.7)
    assert inactive["effect_size_pct"] == pytest.approx(2610 / 48.5, rel=1e-9)
    assert round(inactive["effect_size_pct"], 1) == 53.8
    # from the rounded display values one would get 8.7/16.2 = 53.7 % — not what we show
    assert round(8.7 / 16.2 * 100, 1) == 53.7


def test_effect_size_d_uses_sample_sd_of_first_ors():
    table = statistics_table(episode_frame(seed_sessions(), as_of=AS_OF), by=[])
    # active: first ORS 17, 19; mean 18; squared deviations 1 + 1 = 2; /(n−1)=2/1 → sd √2
    # d = 3.3 / 1.414214 = 2.333452
    assert table.loc[True, "effect_size_d"] == pytest.approx(3.3 / math.sqrt(2))
    assert table.loc[True, "effect_size_d"] == pytest.approx(2.333452, abs=1e-6)
    # inactive: first 15, 16.5, 17; mean 16.16667; deviations −1.16667, 0.33333, 0.83333;
    # squares 1.36111 + 0.11111 + 0.69444 = 2.16667; /2 = 1.083333; sd = 1.040833
    # d = 8.7 / 1.040833 = 8.35869
    assert table.loc[False, "effect_size_d"] == pytest.approx(8.35869, abs=1e-5)


def test_seed_counts_srs_and_columns():
    table = statistics_table(episode_frame(seed_sessions(), as_of=AS_OF), by=[])
    assert list(table.columns) == STATISTICS_COLUMNS
    assert list(table.index) == [True, False]
    assert table.loc[True, "episodes"] == 2 and table.loc[True, "sessions"] == 4
    assert table.loc[False, "episodes"] == 3 and table.loc[False, "sessions"] == 6
    # SRS start inactive: (33 + 34 + 33.5) / 3 = 33.5; SRS change (2 + 0 + 0.5) / 3 = 0.8333
    assert table.loc[False, "srs_start"] == pytest.approx(33.5)
    assert table.loc[False, "srs_change"] == pytest.approx(2.5 / 3)
    # treatment months inactive: 19 days each (May 1 → May 20) → 19 / 30.4375 = 0.624230
    assert table.loc[False, "treatment_months"] == pytest.approx(0.624230, abs=1e-6)


# --------------------------------------------------------------------------- table details


def mixed_sessions() -> pd.DataFrame:
    return frame(
        # E1: 3 sessions Jan 1, Jan 15, Feb 12 (42 days); ORS 10→16; SRS 30→35
        episode(1, [(d(1, 1), 10.0, 30.0), (d(1, 15), 12.0, 32.0), (d(2, 12), 16.0, 35.0)]),
        # E2: single session (ORS 20, SRS 38)
        episode(2, [(d(3, 10), 20.0, 38.0)]),
        # E3: SRS only, 34 → 36, Mar 1 → Mar 8 (7 days)
        episode(3, [(d(3, 1), None, 34.0), (d(3, 8), None, 36.0)]),
        # E4: ORS 14 at session 1, session 2 without scores, Mar 1 → Mar 22 (21 days)
        episode(4, [(d(3, 1), 14.0, None), (d(3, 22), None, None)]),
    )


def test_single_session_and_srs_only_episodes():
    episodes = episode_frame(mixed_sessions(), as_of=d(4, 1))
    assert episodes["active"].all()
    row = statistics_table(episodes, by=[]).loc[True]
    assert row["episodes"] == 4  # all four count as clients
    assert row["sessions"] == 8  # 3 + 1 + 2 + 2
    assert row["sessions_per_episode"] == pytest.approx(2.0)  # 8 / 4
    # ORS start over E1, E2, E4 (E3 has no ORS): (10 + 20 + 14) / 3 = 14.6667
    assert row["n_ors_start"] == 3
    assert row["ors_start"] == pytest.approx(44 / 3)
    # SRS start over E1, E2, E3 (E4 has no SRS): (30 + 38 + 34) / 3 = 34.0
    assert row["n_srs_start"] == 3
    assert row["srs_start"] == pytest.approx(34.0)
    # ORS change only E1 (the single-session E2 and one-ORS E4 are left out): 16 − 10 = 6
    assert row["n_ors_change"] == 1
    assert row["ors_change"] == pytest.approx(6.0)
    # SRS change E1 (35 − 30 = 5) and E3 (36 − 34 = 2): 3.5
    assert row["n_srs_change"] == 2
    assert row["srs_change"] == pytest.approx(3.5)
    # d: only one episode with ≥ 2 ORS → SD undefined
    assert np.isnan(row["effect_size_d"])
    # pct: 6 / 14.6667 * 100 = 40.909
    assert row["effect_size_pct"] == pytest.approx(600 / (44 / 3))
    # months: (42 + 0 + 7 + 21) / 4 = 17.5 days / 30.4375 = 0.574949
    assert row["treatment_months"] == pytest.approx(17.5 / DAYS_PER_MONTH)
    assert row["treatment_months"] == pytest.approx(0.574949, abs=1e-6)
    # classification: E1 only, +6 → reliable improvement, 16 < 25 → not clinically significant
    assert row["n_classified"] == 1
    assert row["reliable_improvement"] == 1
    assert row["clinically_significant"] == 0


def test_missing_side_gets_a_zero_row_with_nan_means():
    table = statistics_table(episode_frame(mixed_sessions(), as_of=d(4, 1)), by=[])
    inactive = table.loc[False]
    assert inactive["episodes"] == 0 and inactive["sessions"] == 0
    assert inactive["n_classified"] == 0
    for col in ("sessions_per_episode", "treatment_months", "ors_start", "effect_size_pct"):
        assert np.isnan(inactive[col])


def test_by_therapist_rows_for_each_group_and_flag():
    sessions = frame(
        episode(1, [(d(6, 1), 10.0, None)], therapist_id=7),
        episode(2, [(d(6, 1), 20.0, None)], therapist_id=8, closed_on=d(6, 2)),
    )
    table = statistics_table(episode_frame(sessions, as_of=AS_OF), by=["therapist_id"])
    assert list(table.index) == [(7, True), (7, False), (8, True), (8, False)]
    assert list(table["episodes"]) == [1, 0, 0, 1]
    assert table.loc[(8, False), "ors_start"] == 20.0


def test_empty_frame():
    empty = frame(episode(1, [(d(6, 1), 10.0, None)])).iloc[0:0]
    episodes = episode_frame(empty, as_of=AS_OF)
    assert episodes.empty
    whole = statistics_table(episodes, by=[])
    assert list(whole["episodes"]) == [0, 0]
    assert statistics_table(episodes, by=["unit_id"]).empty


# --------------------------------------------------------------------------- episodes


def test_inactivity_boundary_more_than_90_days():
    as_of = d(4, 1)
    assert (as_of - d(1, 2)).days == 90 and (as_of - d(1, 1)).days == 91
    sessions = frame(
        episode(1, [(d(1, 2), 20.0, None)]),  # 90 days → still active ("more than 90")
        episode(2, [(d(1, 1), 20.0, None)]),  # 91 days → inactive
        episode(3, [(d(3, 30), 20.0, None)], closed_on=d(3, 31)),  # closed → inactive
        episode(4, [(d(3, 30), 20.0, None)], closed_on=d(4, 2)),  # closed after as_of
    )
    episodes = episode_frame(sessions, as_of=as_of)
    assert episodes["active"].to_dict() == {1: True, 2: False, 3: False, 4: True}
    assert pd.isna(episodes.loc[4, "closed_on"])  # a later closure is not known yet
    assert episodes.loc[3, "closed_on"] == pd.Timestamp(d(3, 31))
    custom = episode_frame(sessions, as_of=as_of, settings=StatsSettings(inactivity_days=91))
    assert bool(custom.loc[2, "active"]) is True


def test_as_of_excludes_later_sessions():
    sessions = frame(
        episode(1, [(d(1, 10), 10.0, 30.0), (d(2, 10), 14.0, 31.0), (d(3, 10), 20.0, 32.0)])
    )
    past = episode_frame(sessions, as_of=d(2, 20)).loc[1]
    # only Jan 10 and Feb 10 exist on Feb 20: change 14 − 10 = 4 → no reliable change
    assert past["n_sessions"] == 2 and past["last_ors"] == 14.0
    assert past["last_date"] == pd.Timestamp(d(2, 10))
    assert past["ors_change"] == pytest.approx(4.0)
    assert bool(past["no_reliable_change"]) and not past["reliable_improvement"]
    now = episode_frame(sessions, as_of=d(3, 31)).loc[1]
    # 20 − 10 = 10 → reliable improvement
    assert now["n_sessions"] == 3 and bool(now["reliable_improvement"])
    assert now["last_ors_session_number"] == 3


def test_outcome_classes_and_age_group_cutoffs():
    when = [d(6, 1), d(6, 15)]

    def two(eid: int, first: float, last: float, age: str) -> list[dict]:
        return episode(eid, [(when[0], first, None), (when[1], last, None)], age_group=age)

    sessions = frame(
        two(1, 26.0, 31.0, "youth"),  # +5, 26 < 28 ≤ 31 → clinically significant
        two(2, 26.0, 31.0, "adult"),  # +5, but 26 ≥ 25 at start → not clinically significant
        two(3, 26.0, 31.0, "child"),  # +5, 31 < 32 → not clinically significant
        two(4, 27.0, 32.0, "child"),  # +5, 27 < 32 ≤ 32 ("at or above") → clinically significant
        two(5, 20.0, 24.9, "adult"),  # +4.9 → no reliable change
        two(6, 20.0, 15.0, "adult"),  # −5 → reliable deterioration
        two(7, 11.4, 16.4, "adult"),  # float 4.999999999999998 → still +5: improvement
        two(8, 35.3, 30.3, "adult"),  # float −4.9999999999999964 → still −5: deterioration
        episode(9, [(when[0], 10.0, None)]),  # one ORS → not classified
    )
    ep = episode_frame(sessions, as_of=AS_OF)
    assert ep["reliable_improvement"].tolist()[:8] == [
        True,
        True,
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert ep["clinically_significant"].tolist()[:8] == [
        True,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    assert ep["reliable_deterioration"].tolist()[:8] == [False] * 5 + [True, False, True]
    assert ep["no_reliable_change"].tolist()[:8] == [False] * 4 + [True, False, False, False]
    assert pd.isna(ep.loc[9, "reliable_improvement"]) and not ep.loc[9, "classified"]
    row = statistics_table(ep, by=[]).loc[True]
    # 8 classified: improvement 1,2,3,4,7 = 5; deterioration 6,8 = 2; no change 5 = 1
    assert (row["n_classified"], row["reliable_improvement"]) == (8, 5)
    assert (row["reliable_deterioration"], row["no_reliable_change"]) == (2, 1)
    assert row["clinically_significant"] == 2  # episodes 1 and 4


def test_unknown_age_group_and_out_of_range_scores_are_rejected():
    with pytest.raises(ValueError, match="age group"):
        frame(episode(1, [(d(6, 1), 10.0, None)], age_group="senior"))
    with pytest.raises(ValueError, match="outside 0–40"):
        frame(episode(1, [(d(6, 1), 40.1, None)]))


def test_sessions_frame_numbers_sessions_by_date():
    rows = episode(1, [(d(6, 15), 12.0, None), (d(6, 1), 10.0, None)])
    out = sessions_frame(rows)
    assert out.set_index("session_date")["session_number"].to_dict() == {
        pd.Timestamp(d(6, 15)): 2,
        pd.Timestamp(d(6, 1)): 1,
    }
    assert str(out["session_date"].dtype) == "datetime64[ns]"


# --------------------------------------------------------------------------- trajectory


def test_median_trajectory_even_odd_and_n():
    sessions = frame(
        episode(1, [(d(5, 1), 10.0, 30.0), (d(5, 8), 14.0, None), (d(5, 15), 20.0, 36.0)]),
        episode(2, [(d(5, 1), 12.0, 34.0), (d(5, 8), 18.0, 35.0)]),
        episode(3, [(d(5, 1), 20.0, 38.0)], therapist_id=2, closed_on=d(5, 2)),  # inactive
        episode(4, [(d(5, 1), None, 33.0), (d(5, 8), 16.0, None)], therapist_id=2),
        episode(5, [(d(5, 1), 16.0, None)], therapist_id=2),
    )
    traj = median_trajectory(sessions)
    # session 1 ORS: 10, 12, 16, 20 (even) → (12 + 16) / 2 = 14; SRS 30, 33, 34, 38 → 33.5
    assert traj.loc[1].to_dict() == {
        "ors_median": 14.0,
        "srs_median": 33.5,
        "n_ors": 4,
        "n_srs": 4,
    }
    # session 2 ORS: 14, 16, 18 (odd) → 16; SRS only episode 2: 35
    assert traj.loc[2].to_dict() == {
        "ors_median": 16.0,
        "srs_median": 35.0,
        "n_ors": 3,
        "n_srs": 1,
    }
    assert traj.loc[3, "ors_median"] == 20.0 and traj.loc[3, "n_ors"] == 1
    by = median_trajectory(sessions, by=["therapist_id"])
    # therapist 1, session 1: ORS 10, 12 → 11; therapist 2, session 1: 16, 20 → 18
    assert by.loc[(1, 1), "ors_median"] == 11.0
    assert by.loc[(2, 1), "ors_median"] == 18.0
    assert by.loc[(2, 1), "n_srs"] == 2  # 38 (inactive episode counts) and 33


def test_median_trajectory_as_of():
    sessions = frame(episode(1, [(d(5, 1), 10.0, 30.0), (d(5, 8), 14.0, None)]))
    assert list(median_trajectory(sessions, as_of=d(5, 7)).index) == [1]


# --------------------------------------------------------------------------- alerts


def test_alerts():
    n29, n30 = AS_OF - timedelta(days=29), AS_OF - timedelta(days=30)
    recent = [d(6, 1), d(6, 10), d(6, 20)]
    sessions = frame(
        # 1: last SRS 35.9 < 36 → alliance
        episode(1, [(recent[0], 20.0, 38.0), (recent[1], 21.0, 35.9)]),
        # 2: SRS 38 → 37, dropped exactly 1 → alliance
        episode(2, [(recent[0], 20.0, 38.0), (recent[1], 21.0, 37.0)]),
        # 3: SRS 38 → 37.1 (drop 0.9) and ≥ 36 → no alliance alert
        episode(3, [(recent[0], 20.0, 38.0), (recent[1], 21.0, 37.1)]),
        # 4: SRS 38 at s1, none at s2, 36.5 at s3: 1.5 below the previous SRS → alliance;
        #    ORS 15, 16, 19 at s1–s3: +4 < 5 at session 3 → off track (no ETR)
        episode(4, [(recent[0], 15.0, 38.0), (recent[1], 16.0, None), (recent[2], 19.0, 36.5)]),
        # 5: ORS 15 → 20 by s3: +5 → on track; SRS exactly 36 twice → no alliance alert
        episode(5, [(recent[0], 15.0, 36.0), (recent[1], 16.0, None), (recent[2], 20.0, 36.0)]),
        # 6: ORS 20 → 15 (−5) → deterioration; only 2 sessions → off track not judged
        episode(6, [(recent[0], 20.0, None), (recent[1], 15.0, None)]),
        # 7: ORS 20 → 15.1 (−4.9) → no deterioration
        episode(7, [(recent[0], 20.0, None), (recent[1], 15.1, None)]),
        # 8: last session 29 days ago → no contact alert not yet; 9: 30 days without a
        # session → alert (statistics.md: "no session for 30 days")
        episode(8, [(n29, 20.0, None)]),
        episode(9, [(n30, 20.0, None)]),
        # 10: closed → no alerts at all (not active)
        episode(10, [(recent[0], 20.0, 30.0)], closed_on=recent[1]),
        # 11: session after as_of ignored: as of AS_OF only one ORS → nothing judged
        episode(11, [(recent[0], 20.0, 38.0), (AS_OF + timedelta(days=1), 10.0, 20.0)]),
    )
    alerts = episode_alerts(sessions, as_of=AS_OF)
    assert 10 not in alerts.index
    assert alerts["alliance"].to_dict() == {
        1: True,
        2: True,
        3: False,
        4: True,
        5: False,
        6: False,
        7: False,
        8: False,
        9: False,
        11: False,
    }
    assert alerts.loc[4, "previous_srs"] == 38.0
    assert alerts["off_track"][alerts["off_track"]].index.tolist() == [4]
    assert alerts.loc[4, "off_track_basis"] == "reliable_change"
    assert alerts.loc[5, "off_track_basis"] == "reliable_change"
    assert pd.isna(alerts.loc[6, "off_track_basis"])
    assert alerts["deterioration"][alerts["deterioration"]].index.tolist() == [6]
    assert alerts["no_contact"][alerts["no_contact"]].index.tolist() == [9]
    assert alerts.loc[11, "last_srs"] == 38.0


# --------------------------------------------------------------------------- implementation


def quality_sessions() -> pd.DataFrame:
    return frame(
        # unit 10: ep 1 (therapist 1, closed Feb 10) intake 26 ≥ 25 → above cutoff
        episode(
            1,
            [(d(1, 3), 26.0, 36.0), (d(1, 10), 24.0, None), (d(2, 2), 22.0, 37.0)],
            closed_on=d(2, 10),
        ),
        # ep 2 (therapist 2, open): two sessions on Jan 5 — one SRS only, one with nothing
        episode(2, [(d(1, 5), None, 35.0), (d(1, 5), None, None)], therapist_id=2),
        # unit 20: youth intake 27 < 28 → not above cutoff; recent, open, therapist 3
        episode(3, [(d(6, 1), 27.0, 38.0)], unit_id=20, therapist_id=3, age_group="youth"),
    )


def test_implementation_by_unit_month():
    impl = implementation_by_unit_month(quality_sessions())
    jan = impl.loc[(100, 10, pd.Timestamp(d(1, 1)))]
    # Jan, unit 10: 4 sessions (Jan 3 both, Jan 10 ORS, Jan 5 SRS, Jan 5 nothing)
    assert jan["sessions"] == 4 and jan["episodes"] == 2
    assert jan["share_with_ors"] == pytest.approx(0.5)  # 2 / 4
    assert jan["share_with_srs"] == pytest.approx(0.5)  # 2 / 4
    assert jan["share_with_both"] == pytest.approx(0.25)  # 1 / 4
    assert jan["active_therapists"] == 2 and jan["sessions_per_therapist"] == 2.0  # 4 / 2
    feb = impl.loc[(100, 10, pd.Timestamp(d(2, 1)))]
    assert feb["sessions"] == 1 and feb["share_with_both"] == 1.0
    assert feb["active_therapists"] == 1
    assert impl.loc[(100, 20, pd.Timestamp(d(6, 1))), "sessions"] == 1


def test_data_quality():
    dq = data_quality(quality_sessions(), as_of=AS_OF, deactivated_therapist_ids={2, 3})
    unit10 = dq.loc[(100, 10)].to_dict()
    assert unit10 == {
        "ghost_episodes": 1,  # ep 2: open, therapist 2 deactivated
        "open_past_inactivity": 1,  # ep 2: open, last session Jan 5 (> 90 days); ep 1 closed
        "duplicate_same_date_sessions": 1,  # second session on Jan 5
        "srs_without_ors": 1,  # Jan 5 SRS only
        "intake_above_cutoff": 1,  # ep 1 intake 26 ≥ 25
    }
    unit20 = dq.loc[(100, 20)].to_dict()
    # ep 3 is open, recent, therapist 3 deactivated → a ghost; youth intake 27 < 28
    assert unit20 == {
        "ghost_episodes": 1,
        "open_past_inactivity": 0,
        "duplicate_same_date_sessions": 0,
        "srs_without_ors": 0,
        "intake_above_cutoff": 0,
    }
    nobody = data_quality(quality_sessions(), as_of=AS_OF, deactivated_therapist_ids=set())
    assert nobody["ghost_episodes"].sum() == 0


def test_settings_validation():
    with pytest.raises(ValueError):
        StatsSettings(small_cell_k=2)
    with pytest.raises(ValueError):
        StatsSettings(ors_cutoffs={"adult": 25.0})


def test_table_to_suppression_end_to_end():
    from stats.anonymise import suppress_table

    closed = d(6, 1)
    sessions = frame(
        # 3 active episodes (< 5) and 6 inactive ones for one therapist
        *[episode(i, [(d(6, 1), 15.0, 36.0), (d(6, 15), 20.0, 38.0)]) for i in (1, 2, 3)],
        *[episode(i, [(d(5, 1), 15.0, 36.0)], closed_on=closed) for i in range(4, 10)],
    )
    table = statistics_table(episode_frame(sessions, as_of=AS_OF), by=["therapist_id"])
    out, reasons = suppress_table(table, k=5)
    # active (3) is a small cell; inactive (6) = total 9 − 3 would give it away → hidden too
    assert out.loc[(1, True)].isna().all() and out.loc[(1, False)].isna().all()
    assert reasons.loc[(1, True), "episodes"] == "fewer than 5 clients"
    alone, _ = suppress_table(table, k=5, partition_levels=[])
    assert alone.loc[(1, False), "episodes"] == 6 and alone.loc[(1, False), "ors_start"] == 15.0
    # its ORS change rests on 0 episodes: shown as NaN (no data), not as a suppressed cell
    assert np.isnan(alone.loc[(1, False), "ors_change"])
