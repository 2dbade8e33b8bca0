"""Two partitions of one count (review round 11, docs/datapolicy.md "Anonymisation" rule 2).

The implementation panel's months and the trajectory's session numbers split the same
sessions. Both are computed from the same sessions of one scope and age group up to the
reference date — every month from the first session on (no window), every session number
(no cap: the "64" bucket exists only in the publications' change tokens) — and each
session has one month and one session number, at most one per number in an episode. So

    Σ months "Sessions with an ORS"  =  Σ session numbers "Episodes with an ORS" (n_ors)

and the same for the SRS. The months are readable in the implementation export (CSV/XLSX,
"Sessioner med en ORS") and as share × sessions; the trajectory's n in the statistics API
(`trajectory[].n_ors`), the page's values table and the trajectory export. The two grids
were suppressed apart: where exactly one point's n was hidden (the last session number: 1 …
k−1 episodes came that far) and every month was shown, the months minus the shown points
gave it back; the other way round, with every point shown, a hidden month's ORS sessions
were the points minus the shown months.

Likewise the trajectory's n at session 1 is at most the both-sides n_ors_start (the
episodes with an ORS at session 1 ⊆ those with any ORS) and at least … nothing; but the
table also shows "Klienter" ≥ n_ors_start, so where n(1) = the episodes (every episode
started with an ORS, as FIT asks) the hidden n_ors_start is pinned between the two.

Figures are hand-computed in the docstrings and comments.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from stats.anonymise import REASON_COMPLEMENTARY, reason_small
from stats.selectors import period_as_of
from stats.siblings import Tree, family_masks
from tests.conftest import OrgPersonas, add_therapist, make_episode, record
from tests.stats.readers import api_figures, export_rows, months_back

K = 5
T = period_as_of("month")[1]  # the last closed month-end, shown by default


# --------------------------------------------------------------------------- pure

TREE = Tree(("organisation", 1), {10: None, 11: None})
A, B, ORG = ("unit", 10, "all"), ("unit", 11, "all"), ("organisation", 1, "all")
JAN, MAR = "2026-01-01", "2026-03-01"


def _month(back: int, day: int) -> dt.date:
    """Day ``day`` of the month ``back`` months before T's month."""
    return months_back(T, back, day)


def _side(
    episodes: int, sessions: int, ors_start: int | None = None, ors_change: int | None = None
) -> dict[str, Any]:
    """A side of the table; every episode with an SRS at each session; the episodes with
    two ORS (default: all) classified, no reliable change."""
    n_ors = episodes if ors_start is None else ors_start
    n_change = n_ors if ors_change is None else ors_change
    return {
        "episodes": episodes,
        "sessions": sessions,
        "n_ors_start": n_ors,
        "n_srs_start": episodes,
        "n_ors_change": n_change,
        "n_srs_change": episodes,
        "n_classified": n_change,
        "no_reliable_change": n_change,
        "reliable_improvement": 0,
        "reliable_deterioration": 0,
        "clinically_significant": 0,
    }


def _scope(
    active: dict[str, Any],
    inactive: dict[str, Any],
    months: list[tuple[str, int, int, int]],
    points: list[tuple[int, int, int]],
) -> dict[str, Any]:
    """months: (month, episodes, sessions, sessions with an ORS; every session has an
    SRS); points: (session number, n_ors, n_srs)."""
    return {
        "table": {"active": active, "inactive": inactive},
        "implementation": [
            {
                "month": m,
                "episodes": e,
                "sessions": s,
                "sessions_with_ors": o,
                "sessions_with_srs": s,
                "sessions_with_both": o,
                "active_therapists": 3,
            }
            for m, e, s, o in months
        ],
        "trajectory": [
            {"session_number": sn, "n_ors": o, "n_srs": r, "ors_median": 20.0, "srs_median": 36.0}
            for sn, o, r in points
        ],
        "n_therapists": 3,
        "n_therapists_direct": 0,
    }


def _parts(**scopes: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """org (id 1) with units A (10) and B (11); every episode adult (all = adult)."""
    ids = {"org": ("organisation", 1), "a": ("unit", 10), "b": ("unit", 11)}
    return {(*ids[n], age): p for n, p in scopes.items() for age in ("all", "adult")}


def _shown_points(masks: Any, parts: Any, key: Any, scale: str) -> int:
    """Σ n of the points a reader sees (the API's trajectory; n < k is dropped)."""
    hidden = masks[key]["trajectory"]
    return sum(
        p[scale]
        for p in parts[key]["trajectory"]
        if p[scale] >= K and scale not in hidden.get(p["session_number"], {})
    )


def _shown_months(masks: Any, parts: Any, key: Any, column: str) -> int:
    """Σ of a column over the months a reader sees (the implementation export)."""
    return sum(
        r[column]
        for r in parts[key]["implementation"]
        if r["month"] not in masks[key]["implementation"] and r["episodes"] >= K
    )


def test_a_lone_hidden_last_point_is_not_the_months_minus_the_points() -> None:
    """k = 5. Unit A (= the organisation; B empty): 6 active episodes, 14 sessions.
    Months: January 6 episodes, 6 sessions; March 6 episodes, 8 sessions; every session
    with an ORS and an SRS, so Σ months = 14 of each. Trajectory: n(1) = 6, n(2) = 6,
    n(3) = 2 (two episodes came that far).

    n(3) = 2 is small. Before, nothing else was hidden: 14 − 6 − 6 = 2. Now the set
    {all session numbers 14, n(1) 6, n(2) 6, n(3) 2} hides the smallest shown non-zero
    point — on a tie the latest, n(2) = 6 — as the complement (its median stays drawn):
    14 − 6 = 8 = n(2) + n(3), two unknowns. No month and no table cell is hidden more."""
    scope = _scope(
        _side(6, 14),
        _side(0, 0),
        [(JAN, 6, 6, 6), (MAR, 6, 8, 8)],
        [(1, 6, 6), (2, 6, 6), (3, 2, 2)],
    )
    parts = _parts(org=scope, a=scope, b=_scope(_side(0, 0), _side(0, 0), [], []))
    masks = family_masks(parts, TREE, k=K)
    for key in (A, ORG):
        for scale, column in (("n_ors", "sessions_with_ors"), ("n_srs", "sessions_with_srs")):
            months = _shown_months(masks, parts, key, column)
            assert months == 14
            assert months - _shown_points(masks, parts, key, scale) != 2  # was 14 − 12
    for key in (A, ORG):
        assert masks[key]["trajectory"] == {
            2: {"n_ors": REASON_COMPLEMENTARY, "n_srs": REASON_COMPLEMENTARY},
            3: {"n_ors": reason_small(K), "n_srs": reason_small(K)},
        }
        assert masks[key]["implementation"] == {}
        assert masks[key]["table"] == {"active": {}, "inactive": {}}


def test_a_hidden_month_is_not_the_points_minus_the_shown_months() -> None:
    """k = 5; every episode active, every session with an ORS and an SRS. Unit A: 10
    episodes with session 1 in January, 2 of them with session 2 in March (12 sessions);
    unit B: 6 episodes, one session each, in March; the organisation 16 episodes, 18
    sessions. Months: A January 10 episodes (10 sessions), March 2 (2); B March 6 (6); the
    organisation January 10 (10), March 8 (8). Trajectory: A n(1) = 10, n(2) = 2; B n(1)
    = 6; the organisation n(1) = 16, n(2) = 2.

    A's March (2 clients) is small; in {org March 8, A 2, B 6} B's March is its
    complement, and B has no other month, so B's all-months total is the second hidden
    member of B's months. Before, B's one point n(1) = 6 was shown (session 1: 16, 10, 6,
    nothing small): Σ B's points − B's shown months = 6 − 0 = B's March, and the
    organisation's shown March 8 − 6 = 2 = A's hidden March. Now B's all-session-numbers
    total is hidden with B's all-months total, and B's n(1), its only point, with it."""
    parts = _parts(
        org=_scope(
            _side(16, 18),
            _side(0, 0),
            [(JAN, 10, 10, 10), (MAR, 8, 8, 8)],
            [(1, 16, 16), (2, 2, 2)],
        ),
        a=_scope(
            _side(10, 12),
            _side(0, 0),
            [(JAN, 10, 10, 10), (MAR, 2, 2, 2)],
            [(1, 10, 10), (2, 2, 2)],
        ),
        b=_scope(_side(6, 6), _side(0, 0), [(MAR, 6, 6, 6)], [(1, 6, 6)]),
    )
    masks = family_masks(parts, TREE, k=K)
    for scale, column in (("n_ors", "sessions_with_ors"), ("n_srs", "sessions_with_srs")):
        b_march = _shown_points(masks, parts, B, scale) - _shown_months(masks, parts, B, column)
        assert b_march != 6  # before: 6 − 0
        assert MAR not in masks[ORG]["implementation"]
        org_march = next(r[column] for r in parts[ORG]["implementation"] if r["month"] == MAR)
        assert org_march - b_march != 2  # before: 8 − 6, A's hidden March
    assert masks[A]["implementation"] == {MAR: reason_small(K)}
    assert masks[B]["implementation"] == {MAR: REASON_COMPLEMENTARY}
    assert masks[ORG]["implementation"] == {}
    assert masks[B]["trajectory"] == {
        1: {"n_ors": REASON_COMPLEMENTARY, "n_srs": REASON_COMPLEMENTARY}
    }


def test_session_one_and_the_start_count_are_hidden_together() -> None:
    """k = 5; everything inactive; session 1 in January, the later ones in March; every
    session with an SRS. Unit A: 5 episodes; 3 with two sessions and no ORS, 2 with four
    sessions and an ORS at sessions 2–4 (none at 1): n_ors 0, 2, 2, 2 at sessions 1–4,
    n_ors_start 2. Unit B: 6 episodes, two sessions, an ORS at both: n_ors 6, 6,
    n_ors_start 6. The organisation: 11 episodes, n_ors 6, 8, 2, 2, n_ors_start 8. Months:
    A January 5 episodes (5 sessions, 0 with an ORS), March 5 (9, 6); B 6 (6, 6) and
    6 (6, 6); the organisation 11 (11, 6) and 11 (15, 12).

    Table: A's n_ors_start 2 is small and B's 6 its complement in {org 8, A 2, B 6},
    while B's 6 episodes are shown. B's active side is 0, so B's both-sides start count
    (6) is the partner of B's hidden 6. Before, B's n_ors(1) = 6 was shown: 6 ≤ B's hidden
    n_ors_start ≤ B's 6 episodes, so 6, and the organisation's 8 − 6 = A's 2.

    Now B's n_ors(1) is hidden with B's start count (a complement, 6 ≥ k); B's n_ors(2)
    was already hidden, as the complement of A's 2 in {org 8, A 2, B 6} at session 2.
    The organisation's n_ors(1) is hidden too — in its all-session-numbers set {18, 6, 8,
    2, 2} the hidden n(3) + n(4) = 4 < k get the smallest shown point, n(1) = 6 — and so
    its both-sides start count, the inactive 8 (fail closed). Likewise the SRS: A's and the
    organisation's n_srs(3), n_srs(4) (2 + 2) get the latest of the smallest shown points,
    n_srs(2) (A 5 = n_srs(1), the organisation 11 = n_srs(1)). No month is hidden, and
    the SRS start counts and the episodes stay shown."""
    parts = _parts(
        org=_scope(
            _side(0, 0),
            _side(11, 26, 8),
            [(JAN, 11, 11, 6), (MAR, 11, 15, 12)],
            [(1, 6, 11), (2, 8, 11), (3, 2, 2), (4, 2, 2)],
        ),
        a=_scope(
            _side(0, 0),
            _side(5, 14, 2),
            [(JAN, 5, 5, 0), (MAR, 5, 9, 6)],
            [(1, 0, 5), (2, 2, 5), (3, 2, 2), (4, 2, 2)],
        ),
        b=_scope(
            _side(0, 0), _side(6, 12), [(JAN, 6, 6, 6), (MAR, 6, 6, 6)], [(1, 6, 6), (2, 6, 6)]
        ),
    )
    masks = family_masks(parts, TREE, k=K)
    # the attacker's sandwich on B, n_ors(1) ≤ n_ors_start ≤ episodes, has no lower end
    assert "n_ors" in masks[B]["trajectory"].get(1, {})  # before: 6 shown = B's 6 episodes
    small, compl = reason_small(K), REASON_COMPLEMENTARY
    assert masks[A]["table"]["inactive"]["n_ors_start"] == small
    assert masks[B]["table"]["inactive"]["n_ors_start"] == compl
    assert masks[ORG]["table"]["inactive"]["n_ors_start"] == compl
    for key in (A, B, ORG):
        for c in ("episodes", "n_srs_start"):
            assert c not in masks[key]["table"]["inactive"]
        assert masks[key]["implementation"] == {}
    assert masks[B]["trajectory"] == {1: {"n_ors": compl}, 2: {"n_ors": compl}}
    assert masks[ORG]["trajectory"] == {
        1: {"n_ors": compl},
        2: {"n_srs": compl},
        3: {"n_ors": small, "n_srs": small},
        4: {"n_ors": small, "n_srs": small},
    }
    # A's n_ors(1) is 0 (hidden with A's start count, whose other side is 0: nothing to
    # give away, and a reader sees no ORS at A's session 1 either way)
    assert masks[A]["trajectory"][2] == {"n_ors": small, "n_srs": compl}


def test_an_ordinary_family_hides_no_more_than_before() -> None:
    """k = 5. A guard (passes before and after): unit A = the organisation, 12 active
    episodes (40 sessions), months January 12 episodes (20 sessions) and March 10 (20),
    trajectory n = 12, 12, 8, 4, 3, 1 at sessions 1–6. The hidden tail 4 + 3 + 1 = 8 holds
    three non-zero points and ≥ k: as before, only n(4)–n(6) are hidden, nothing else —
    no point as a complement, no month, no table cell."""
    scope = _scope(
        _side(12, 40),
        _side(0, 0),
        [(JAN, 12, 20, 20), (MAR, 10, 20, 20)],
        [(1, 12, 12), (2, 12, 12), (3, 8, 8), (4, 4, 4), (5, 3, 3), (6, 1, 1)],
    )
    parts = _parts(org=scope, a=scope, b=_scope(_side(0, 0), _side(0, 0), [], []))
    masks = family_masks(parts, TREE, k=K)
    small = {"n_ors": reason_small(K), "n_srs": reason_small(K)}
    for key in (A, ORG):
        assert masks[key]["trajectory"] == {4: small, 5: small, 6: small}
        assert masks[key]["implementation"] == {}
        assert masks[key]["table"] == {"active": {}, "inactive": {}}


# --------------------------------------------------------------------------- end to end


def _month_column(rows: list[list[str]], title: str) -> int:
    """Σ of one column of the implementation export's months."""
    col = rows[0].index(title)
    return sum(int(r[col]) for r in rows[1:])


@pytest.mark.django_db
def test_attacker_months_minus_shown_points(client: Any, org1: OrgPersonas) -> None:
    """k = 5; unit A, 3 therapists, 6 adult episodes, every session with an ORS and an
    SRS. Session 1 of all six in the month 3 months before the reference month; session 2
    of all six 2 months before; session 3 of two of them (episodes 0 and 1) also 2
    months before.

    Months: −3: 6 episodes, 6 sessions; −2: 6 episodes, 6 + 2 = 8 sessions; both shown
    (6 ≥ k clients, 3 therapists). Σ ORS sessions = 6 + 8 = 14.
    Trajectory: n(1) = 6, n(2) = 6, n(3) = 2 (< k: dropped).
    Before: 14 − 6 − 6 = 2 = the hidden n(3), in the unit and in the organisation (the
    same episodes). Same for the SRS."""
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "therapist_c")]
    for i in range(6):
        ep = make_episode(org1, code=f"TP-{i}", therapist=team[i % 3], started_on=_month(3, 1))
        record(ep, _month(3, 3), ors=f"{10 + i}.0", srs="35.0")
        record(ep, _month(2, 3), ors=f"{14 + i}.0", srs="36.0")
        if i < 2:
            record(ep, _month(2, 10), ors=f"{18 + i}.0", srs="37.0")
    user = org1.analyst
    for kind, sid in (("unit", org1.unit.pk), ("organisation", org1.org.pk)):
        body = api_figures(client, user, kind, sid)
        rows = export_rows(client, user, kind, sid, "implementation")
        assert len(rows) == 3, rows  # both months shown
        for scale, title in (("ors", "Sessioner med en ORS"), ("srs", "Sessioner med en SRS")):
            months = _month_column(rows, title)
            assert months == 14
            points = body["trajectory"]
            shown = [p[f"n_{scale}"] for p in points if p[f"n_{scale}"] is not None]
            hidden = [p for p in points if p[f"n_{scale}"] is None]
            # the attacker: Σ months − Σ shown points, where every point but the dropped
            # session 3 is shown
            assert months - sum(shown) != 2, (kind, scale, points)
            # now one more point's n is hidden (its median is kept): 14 − 6 = 8 = 6 + 2
            assert len(hidden) == 1 and hidden[0][f"{scale}_median"] is not None
        # the trajectory export (as the page's values table) shows the same n: 6 once,
        # the other point's n "skjult" with the one note, as every hidden cell of the
        # exports (not an empty cell)
        traj = export_rows(client, user, kind, sid, "trajectory")
        for title in ("Forløb med en ORS", "Forløb med en SRS"):
            col = traj[0].index(title)
            cells = sorted(r[col] for r in traj[1:])
            assert cells[0] == "6" and cells[1].startswith("skjult (færre end 5 klienter"), traj
            assert len(cells) == 2
