"""Read-time suppression of a snapshot (stats.selectors), no database: the anonymised
figures of one scope alone (a family of one node, stats.siblings)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from stats.engine import STATISTICS_COLUMNS
from stats.models import StatsSnapshot
from stats.selectors import Figures, _figures_data, period_as_of
from stats.siblings import Tree, family_masks


def figures_for(snap: StatsSnapshot, *, anonymised: bool, k: int) -> Figures:
    """The scope as the only node of its family (its other age groups empty)."""
    masks = family_masks({("unit", 1, "all"): snap.payload}, Tree(("unit", 1), {}), k=k)
    mask = masks[("unit", 1, "all")] if anonymised else None
    data = _figures_data(snap.payload, anonymised=anonymised, k=k, mask=mask)
    return Figures(snapshot=snap, anonymised=anonymised, k=k, **data)


def _row(episodes: int, n_change: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(STATISTICS_COLUMNS, 0)
    row.update(
        episodes=episodes,
        sessions=episodes * 3,
        sessions_per_episode=3.0,
        treatment_months=1.0,
        n_ors_start=episodes,
        n_srs_start=episodes,
        ors_start=18.0,
        srs_start=36.0,
        n_ors_change=n_change,
        n_srs_change=n_change,
        ors_change=3.3,
        srs_change=1.0,
        effect_size_d=0.5,
        effect_size_pct=3.3 / 18.0 * 100,
        n_classified=n_change,
        reliable_improvement=n_change,
    )
    return row


def _snapshot(
    spread: list[dict[str, Any]], etr_evaluable: int = 4, n_therapists: int | None = None
) -> StatsSnapshot:
    return StatsSnapshot(
        pk=None,
        scope_kind="unit",
        organisation_id=1,
        scope_id=1,
        as_of=dt.date(2026, 6, 30),
        computed_at=timezone.now(),
        payload={
            "table": {"active": _row(40, 30), "inactive": _row(12, 10)},
            "trajectory": [
                {
                    "session_number": 1,
                    "ors_median": 18.0,
                    "srs_median": 36.0,
                    "n_ors": 40,
                    "n_srs": 4,
                },
            ],
            "etr": {
                "ended_evaluable": etr_evaluable,
                "reaching_target": 3,
                "dropout": 1,
                "reaching_target_share": 0.75,
                "dropout_share": 0.25,
                "n_relative_effect": 30,
                "relative_effect_size": 0.1,
            },
            "therapist_spread": spread,
            "n_therapists": len(spread) if n_therapists is None else n_therapists,
        },
    )


def test_spread_needs_max_5_k_therapists_each_with_k_clients() -> None:
    """(Review round 7: with 3 therapists min/median/max were the three values; now
    only median and quartiles, with at least max(5, k) therapists with values.)"""
    five = [{"episodes": 20, "n_ors_change": n, "ors_change": 1.0} for n in (5, 6, 7, 8, 9)]
    figs = figures_for(_snapshot(five), anonymised=True, k=5)
    assert figs.show_spread
    assert figs.spread == {"n_therapists": 5, "median": 1.0, "q1": 1.0, "q3": 1.0}
    three = five[:3]
    figs = figures_for(_snapshot(three), anonymised=True, k=5)
    assert not figs.show_spread and figs.spread == {} and figs.spread_notice == "few"
    two = three[:2]
    figs = figures_for(_snapshot(two), anonymised=True, k=5)
    assert not figs.show_spread and figs.spread == {}
    # (with 2 therapists the whole scope is hidden; 4 therapists, 2 of them with >= k:)
    figs = figures_for(_snapshot(two, n_therapists=4), anonymised=True, k=5)
    assert figs.hidden_reason is None and figs.table["active"]["episodes"] == 40
    assert not figs.show_spread and figs.spread == {}
    # one of five has only 4 clients with a change: only 4 left → no spread at all
    small = [*five[:4], {"episodes": 9, "n_ors_change": 4, "ors_change": 9.0}]
    assert figures_for(_snapshot(small), anonymised=True, k=5).hidden_reason is None
    assert not figures_for(_snapshot(small), anonymised=True, k=5).show_spread
    # a therapist's own view is never suppressed (no spread there either way)
    own = figures_for(_snapshot(two), anonymised=False, k=5)
    assert own.table["active"]["episodes"] == 40 and own.suppressed["active"] == {}


def test_small_etr_base_and_trajectory_points_are_hidden_for_anonymised_roles() -> None:
    figs = figures_for(_snapshot([], etr_evaluable=4, n_therapists=3), anonymised=True, k=5)
    assert figs.etr["reaching_target_share"] is None
    assert "5" in figs.etr_suppressed["reaching_target_share"]
    assert figs.etr["relative_effect_size"] == 0.1  # 30 episodes: shown
    # SRS at session 1 rests on 4 episodes: hidden; ORS (40) shown
    assert figs.trajectory == [
        {"session_number": 1, "ors_median": 18.0, "srs_median": None, "n_ors": 40.0, "n_srs": None}
    ]
    # 5 ended: the base is shown, but 3 reached the target and 1 dropped out — client
    # counts under k, hidden with their shares (like the outcome classes).
    five = figures_for(_snapshot([], etr_evaluable=5, n_therapists=3), anonymised=True, k=5)
    assert five.etr["ended_evaluable"] == 5
    assert five.etr["reaching_target"] is None and five.etr["reaching_target_share"] is None
    assert five.etr["dropout"] is None and five.etr["dropout_share"] is None
    snap = _snapshot([], etr_evaluable=12, n_therapists=3)
    snap.payload["etr"].update(
        reaching_target=7, dropout=5, reaching_target_share=7 / 12, dropout_share=5 / 12
    )
    twelve = figures_for(snap, anonymised=True, k=5)
    assert twelve.etr["reaching_target"] == 7 and twelve.etr["dropout_share"] == 5 / 12


def test_fixed_periods_end_on_the_last_completed_period() -> None:
    today = dt.date(2026, 11, 25)
    assert period_as_of("all", today) == ("current", today)
    assert period_as_of("month", today) == ("2026-10-31", dt.date(2026, 10, 31))
    assert period_as_of("quarter", today) == ("2026-09-30", dt.date(2026, 9, 30))
    assert period_as_of("year", today) == ("2025-12-31", dt.date(2025, 12, 31))
    assert period_as_of("quarter", dt.date(2026, 2, 1))[1] == dt.date(2025, 12, 31)


def test_a_month_of_fewer_than_three_active_therapists_is_not_shown() -> None:
    """The implementation panel per month: with 1 or 2 active therapists the month's
    registration shares are one or two persons' own figures. April (2 therapists) is
    hidden, and with it a second month (review round 11: the sessions of all months are
    those of both sides of the table, so both sides − May − June would give April's 40
    back): May, the first of the two smallest (20 episodes each). June is shown."""
    snap = _snapshot([], n_therapists=4)

    def month(name: str, therapists: int) -> dict[str, Any]:
        return {
            "month": name,
            "episodes": 20,
            "sessions": 40,
            "sessions_with_ors": 30,
            "sessions_with_srs": 30,
            "sessions_with_both": 25,
            "active_therapists": therapists,
        }

    snap.payload["implementation"] = [
        month("2026-04", 2),
        month("2026-05", 3),
        month("2026-06", 3),
    ]
    figs = figures_for(snap, anonymised=True, k=5)
    assert [r["month"] for r in figs.implementation] == ["2026-06"]
    assert len(figures_for(snap, anonymised=False, k=5).implementation) == 3
