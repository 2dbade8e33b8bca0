"""Attacks of a second review of stats.publications / stats.siblings, with hand-made
fingerprints, kept as regression tests: each states what must hold."""

from __future__ import annotations

from typing import Any

import numpy as np

from stats.publications import States, held_between
from stats.siblings import family_masks
from tests.stats.test_publications import BASE, FEB, MARCH, TREE, K, episode, states

LATER = 1 << 63  # bit of session numbers >= 64


def _replace(st: States, digest: int, **cols: Any) -> States:
    """A copy of ``st`` with columns of one episode changed."""
    c = {k: v.copy() for k, v in st.columns.items()}
    i = int(np.flatnonzero(c["digest"] == np.uint64(digest))[0])
    for name, value in cols.items():
        c[name][i] = value
    return States(c, st.month)


def _traj_part(points: dict[int, int], n_ther: int = 3) -> dict[str, Any]:
    return {
        "n_therapists": n_ther,
        "trajectory": [
            {"session_number": sn, "n_ors": n, "n_srs": n, "ors_median": 20.0, "srs_median": 36.0}
            for sn, n in points.items()
        ],
    }


def test_trajectory_point_above_64_is_held_back() -> None:
    """Six long episodes in unit 11 have ORS at sessions 1..66. In March one of them gets
    a (new or corrected) score at session 66: the point 66 (n=6 >= k, median shown at
    both dates) changed for ONE client. change_tokens lumps 64.. into 'traj:ors:64',
    and siblings._forced matches only session_number == 64: point 66 is not held."""
    long_eps = [episode(100 + i, 11, sessions=0b11 | LATER) for i in range(6)]
    old = [episode(i, 10) for i in range(12)] + long_eps
    old_st = states(old, FEB)
    new_st = _replace(states(old), 100, state=np.uint64(999_999))  # 100 changed
    held = held_between(old_st, new_st, TREE, k=K)
    tokens = held.get(("unit:11", "all"), set())
    assert "traj:ors:64" in tokens  # the lumped token is held ...
    parts: dict[tuple[str, int, str], Any] = {}
    pts = {1: 18, 2: 18, 64: 6, 65: 6, 66: 6}
    for age in ("all", "adult"):
        parts[("organisation", 1, age)] = _traj_part(pts)
        parts[("unit", 10, age)] = _traj_part({1: 12, 2: 12})
        parts[("unit", 11, age)] = _traj_part({1: 6, 2: 6, 64: 6, 65: 6, 66: 6})
    masks = family_masks(parts, TREE, k=K, held=held, held_reason="held")
    t = masks[("unit", 11, "all")]["trajectory"]
    assert 64 in t  # ... and hides point 64,
    assert 66 in t and t[66].get("n_ors") == "held", f"point 66 shown: {t}"  # but not 66


def test_spread_held_when_a_therapist_loses_an_active_client() -> None:
    """The per-therapist spread is computed over ACTIVE episodes only
    (services.compute_payloads: per_t.xs(True, level='active')). Two of unit 10's
    episodes (therapist 1 and 2) became inactive without any other change: each of those
    therapists' spread rows loses one client (n_ors_change and the mean move by that
    client's ORS change), yet the spread is judged on 'values:ors_change' (both sides),
    which did not change: no 'spread' token."""
    moved = [{**e, "active": e["id"] >= 2} if e["unit"] == 10 else e for e in BASE]
    held = held_between(states(BASE, FEB), states(moved), TREE, k=K)
    assert "active:ors_change" in held[("unit:10", "all")]
    assert "spread" in held[("unit:10", "all")], held[("unit:10", "all")]


def test_spread_held_when_one_episode_is_transferred_to_a_colleague() -> None:
    """episode_transfer hands one episode from therapist 1 to therapist 2 (same unit,
    nothing else changes). Both therapists' spread rows change by exactly that client
    (one loses, one gains its ORS change), but no table family's membership or value
    changed, so no token is sure and 'spread' is not held."""
    old = states(BASE, FEB)
    # episode 3 has therapist 1 + 3 % 3 = 1; hand it to therapist 2 (state changes too)
    new = _replace(states(BASE), 3, therapist=np.uint64(2), state=np.uint64(123_456_789))
    held = held_between(old, new, TREE, k=K)
    assert "spread" in held.get(("unit:10", "all"), set()), held


def _impl_part(rows: list[tuple[str, int, int, int]], n_ther: int) -> dict[str, Any]:
    """rows: (month, episodes, sessions, active_therapists)."""
    return {
        "n_therapists": n_ther,
        "n_therapists_direct": 0,
        "implementation": [
            {
                "month": m,
                "episodes": e,
                "sessions": s,
                "sessions_with_ors": s - 1,
                "sessions_with_srs": s,
                "sessions_with_both": s - 1,
                "share_with_ors": (s - 1) / s,
                "share_with_srs": 1.0,
                "share_with_both": (s - 1) / s,
                "active_therapists": t,
                "sessions_per_therapist": s / t,
            }
            for m, e, s, t in rows
        ],
    }


def test_implementation_month_of_two_therapists_not_derivable_as_org_minus_sibling() -> None:
    """Rule 9: a month of 1-2 active therapists is not shown (their own registration
    figures). _figures_data drops such a row AFTER the grid, which never learns of it: in
    the organisation = unit 10 + unit 11, unit 10's February has 2 active therapists
    (hidden), unit 11's 3 and the organisation's 5 are shown, so
    organisation - unit 11 = the two therapists' sessions and ORS/SRS counts."""
    from stats.selectors import _figures_data

    month = "2026-02-01"
    parts: dict[tuple[str, int, str], Any] = {}
    for age in ("all", "adult"):
        parts[("organisation", 1, age)] = _impl_part([(month, 12, 40, 5)], 6)
        parts[("unit", 10, age)] = _impl_part([(month, 6, 15, 2)], 3)
        parts[("unit", 11, age)] = _impl_part([(month, 6, 25, 3)], 3)
    masks = family_masks(parts, TREE, k=K)
    shown = {
        key: [
            r["month"]
            for r in _figures_data(parts[key], anonymised=True, k=K, mask=masks[key])[
                "implementation"
            ]
        ]
        for key in (("organisation", 1, "all"), ("unit", 10, "all"), ("unit", 11, "all"))
    }
    assert shown[("unit", 10, "all")] == []  # hidden: 2 therapists
    assert not (shown[("organisation", 1, "all")] and shown[("unit", 11, "all")]), shown


def test_ordinary_month_does_not_hold_back_the_whole_implementation_history() -> None:
    """Usability: 18 running episodes (unit 10: 12, unit 11: 6, three therapists each),
    started a year ago; in March each simply has its next session (nothing in a past
    month changed). Every month of the past year is held back in both units and the
    organisation - the implementation panel of every later month-end shows only its
    newest month."""
    year = [{**e, "first": FEB - 11, "last": FEB} for e in BASE]
    old = states(year, FEB)
    c = {k: v.copy() for k, v in states([{**e, "last": FEB + 1} for e in year]).columns.items()}
    c["state"] = c["state"] + np.uint64(1)  # each has one more session (in March)
    c["h_episodes"] = c["h_episodes"] + np.uint64(1)
    new = States(c, FEB + 1)
    held = held_between(old, new, TREE, k=K)
    impl = sorted(t for t in held.get(("unit:11", "all"), set()) if t.startswith("impl:"))
    assert len(impl) <= 1, impl


IMPROVED, DETERIORATED, NO_CHANGE = 0b1111 | 1 << 4, 0b1111 | 1 << 5, 0b1111 | 1 << 6


def test_outcome_classes_change_cannot_be_differenced_within_the_row() -> None:
    """The change grid treats every token on its own: it has no rule 2 (outcome classes
    add up to n_classified). Unit 11: 18 classified clients at the end of February (6
    improved, 6 deteriorated, 6 no change; all shown). In March 11 new classified
    clients from three therapists: 9 improved, 2 no reliable change. n_classified changed
    by 11 and reliable improvement by 9 - both 'large' (>= k after removing any one
    therapist's), both shown in March. no_reliable_change (+2) is held back and
    deterioration is hidden as its complement in March's own grid - but
    (n_classified - improvement)(Mar) - (same)(Feb) = 11 - 9 = 2 clients who did not
    improve (and therapist 1, knowing their own one, learns therapist 2's client's)."""
    old_u11 = [
        episode(100 + i, 11, bits=(IMPROVED, DETERIORATED, NO_CHANGE)[i // 6]) for i in range(18)
    ]
    old = [episode(i, 10, bits=IMPROVED) for i in range(12)] + old_u11
    new = [*old]
    new += [episode(200 + i, 11, bits=IMPROVED, **MARCH) for i in range(9)]
    new += [episode(210 + i, 11, therapist=1 + i, bits=NO_CHANGE, **MARCH) for i in range(2)]
    held = held_between(states(old, FEB), states(new), TREE, k=K)
    tokens = held[("unit:11", "all")]
    assert "active:no_reliable_change" in tokens

    def table(n: int, impr: int, det: int, noc: int) -> dict[str, Any]:
        side = {
            "episodes": n,
            "sessions": 2 * n,
            "n_ors_start": n,
            "n_srs_start": n,
            "n_ors_change": n,
            "n_srs_change": n,
            "n_classified": n,
            "reliable_improvement": impr,
            "reliable_deterioration": det,
            "no_reliable_change": noc,
            "clinically_significant": 0,
        }
        empty = dict.fromkeys(side, 0)
        return {
            "n_therapists": 3,
            "n_therapists_direct": 0,
            "table": {"active": side, "inactive": empty},
        }

    parts = {}
    for age in ("all", "adult"):
        parts[("organisation", 1, age)] = table(41, 27, 6, 8)
        parts[("unit", 10, age)] = table(12, 12, 0, 0)
        parts[("unit", 11, age)] = table(29, 15, 6, 8)
    masks = family_masks(parts, TREE, k=K, held=held, held_reason="held")
    hidden = masks[("unit", 11, "all")]["table"]["active"]
    # The held "no change" is complemented by the next-smallest *changed* class
    # (improvement, +9; deterioration did not change and is known): the two hidden
    # changes together are 11 ≥ k, so the classified's change cannot be split.
    assert "no_reliable_change" in hidden
    assert "n_classified" in hidden or "reliable_improvement" in hidden, hidden
    assert {"active:no_reliable_change", "active:reliable_improvement"} <= tokens


def test_etr_dropout_not_derivable_as_ended_minus_reaching_target() -> None:
    """Single date (rule 9): every ended, judgeable episode either reached the target or
    dropped out, so ended_evaluable = reaching_target + dropout. A dropout of 2 is hidden
    ("< k") with its share, but ended_evaluable (12) and reaching_target (10) stay shown:
    12 - 10 = 2 (and dropout_share = 1 - reaching_target_share)."""
    from stats.selectors import _figures_data

    def etr(ended: int, reach: int) -> dict[str, Any]:
        drop = ended - reach
        return {
            "n_therapists": 3,
            "n_therapists_direct": 0,
            "etr": {
                "ended_evaluable": ended,
                "reaching_target": reach,
                "reaching_target_share": reach / ended,
                "dropout": drop,
                "dropout_share": drop / ended,
                "n_relative_effect": ended,
                "relative_effect_size": 0.1,
            },
        }

    parts = {}
    for age in ("all", "adult"):
        parts[("organisation", 1, age)] = etr(24, 22)
        parts[("unit", 10, age)] = etr(12, 12)
        parts[("unit", 11, age)] = etr(12, 10)
    masks = family_masks(parts, TREE, k=K)
    shown = _figures_data(
        parts[("unit", 11, "all")], anonymised=True, k=K, mask=masks[("unit", 11, "all")]
    )["etr"]
    assert shown["dropout"] is None  # hidden: 2 < k
    assert shown["ended_evaluable"] is None or shown["reaching_target"] is None, shown
