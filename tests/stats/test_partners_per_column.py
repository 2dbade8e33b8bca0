"""Partners without sessions with the score (docs/datapolicy.md, Anonymisation rule 2,
"Every published column"; found after review round 11).

An implementation month is one row of several counts — the clients (which decide what is
small), the sessions, the sessions with an ORS, with an SRS, with both — and the months of
the units add up to the organisation's month in every one of them. The complementary rule
chose a hidden month's partner by the client count alone, so the partner could hold 0
sessions with an ORS: in that column the hidden set had one non-zero cell, and the
organisation's month minus the shown units gave it back exactly, wherever a reader knows
that the partner's ORS sessions are 0 — e.g. a unit whose mean first ORS (over the
episodes with any ORS) is empty, not hidden, on both sides next to shown episodes: it has
no session with an ORS.

Figures are hand-computed in the docstrings and comments.
"""

from __future__ import annotations

from typing import Any

import pytest

from clients.services import episode_close
from stats.anonymise import REASON_COMPLEMENTARY, reason_small, suppress_table
from stats.siblings import family_masks
from tests.conftest import OrgPersonas, add_therapist, make_episode, record
from tests.stats.readers import api_figures, export_rows
from tests.stats.test_trajectory_partitions import (
    JAN,
    MAR,
    TREE,
    A,
    B,
    K,
    _month,
    _parts,
    _scope,
    _side,
)
from tests.stats.test_trajectory_partitions import ORG as ORG_ALL

# --------------------------------------------------------------------------- pure


def _two_units() -> dict[tuple[str, int, str], dict[str, Any]]:
    """k = 5; every episode active, adult, one session each (an ORS and an SRS in unit A,
    an SRS only in unit B). Unit A: 8 episodes, 6 in January and 2 in March. Unit B: 11
    episodes, 6 in January and 5 in March, no ORS at all (n_ors_start 0 on both sides:
    its mean first ORS reads empty, not hidden). The organisation: 19 episodes; January
    12 clients, 12 sessions, 6 with an ORS; March 7 clients, 7 sessions, 2 with an ORS."""
    return _parts(
        org=_scope(
            _side(19, 19, 8, 0), _side(0, 0), [(JAN, 12, 12, 6), (MAR, 7, 7, 2)], [(1, 8, 19)]
        ),
        a=_scope(_side(8, 8, 8, 0), _side(0, 0), [(JAN, 6, 6, 6), (MAR, 2, 2, 2)], [(1, 8, 8)]),
        b=_scope(_side(11, 11, 0, 0), _side(0, 0), [(JAN, 6, 6, 0), (MAR, 5, 5, 0)], [(1, 0, 11)]),
    )


def _month_of(parts: Any, key: Any, month: str, column: str) -> int:
    return int(next(r[column] for r in parts[key]["implementation"] if r["month"] == month))


def test_a_partner_without_ors_sessions_does_not_give_the_hidden_month_back() -> None:
    """A's March (2 clients) is small. By the client count its partner in {organisation
    March 7, A 2, B 5} is B's March (5 < 7), which holds 0 sessions with an ORS; A's
    January (6 < A's 8 of all months) is A's months' complement, and B's January (6 < 12)
    its partner among the units (again 0 ORS sessions). Before, the organisation's months
    were shown: March 2 ORS sessions − B's 0 (B has no ORS: n_ors_start 0 on both sides)
    = A's hidden 2; January 6 − 0 = A's hidden 6.

    Now in the ORS (and "both") column the hidden {A, B} hold one non-zero cell, so the
    only shown non-zero member, the organisation's month, is hidden too (fail closed),
    in March and in January; the organisation's months set {all months 19, January 12,
    March 7} then holds two hidden months. No table cell, point or total is hidden."""
    parts = _two_units()
    masks = family_masks(parts, TREE, k=K)
    b_table = parts[B]["table"]
    assert b_table["active"]["n_ors_start"] == 0 and b_table["inactive"]["n_ors_start"] == 0
    for month, a_ors in ((MAR, 2), (JAN, 6)):
        assert month in masks[A]["implementation"] and month in masks[B]["implementation"]
        # the attacker: the organisation's month (if shown) − B's 0 = A's hidden month
        assert month in masks[ORG_ALL]["implementation"], (month, masks[ORG_ALL])
        assert _month_of(parts, ORG_ALL, month, "sessions_with_ors") - 0 == a_ors
    compl = REASON_COMPLEMENTARY
    for age in ("all", "adult"):
        a, b, org = ((*key[:2], age) for key in (A, B, ORG_ALL))
        assert masks[a]["implementation"] == {JAN: compl, MAR: reason_small(K)}
        assert masks[b]["implementation"] == {JAN: compl, MAR: compl}
        assert masks[org]["implementation"] == {JAN: compl, MAR: compl}
        for key in (a, b, org):
            assert masks[key]["trajectory"] == {}
            assert masks[key]["table"] == {"active": {}, "inactive": {}}


def test_a_partner_with_ors_sessions_hides_nothing_more() -> None:
    """A guard (passes before and after): as above, but B's sessions have an ORS too
    (B January 6, March 5 ORS sessions; the organisation 12 and 7). Then the hidden
    {A March 2, B March 5} hold two non-zero cells in every column, and {A January 6,
    B January 6} too: the organisation's months stay shown."""
    parts = _parts(
        org=_scope(_side(19, 19), _side(0, 0), [(JAN, 12, 12, 12), (MAR, 7, 7, 7)], [(1, 19, 19)]),
        a=_scope(_side(8, 8), _side(0, 0), [(JAN, 6, 6, 6), (MAR, 2, 2, 2)], [(1, 8, 8)]),
        b=_scope(_side(11, 11), _side(0, 0), [(JAN, 6, 6, 6), (MAR, 5, 5, 5)], [(1, 11, 11)]),
    )
    masks = family_masks(parts, TREE, k=K)
    compl = REASON_COMPLEMENTARY
    assert masks[A]["implementation"] == {JAN: compl, MAR: reason_small(K)}
    assert masks[B]["implementation"] == {JAN: compl, MAR: compl}
    assert masks[ORG_ALL]["implementation"] == {}


def test_suppress_table_sums_one_column() -> None:
    """suppress_table's ``sums`` on a bare set (k = 3; rows x, y, z of a partition level
    "unit_id", whose total may be shown elsewhere): x has 1 client (small) with 4 sessions
    counted in the column, y 3 clients with 0, z 4 clients with 2 (total 8 clients, 6 in
    the column). By clients y is x's partner (3 < 4); in the column the hidden {x 4, y 0}
    hold one non-zero cell, so the only shown non-zero one, z, is hidden as well.
    Without ``sums``: x and y only."""
    import pandas as pd

    table = pd.DataFrame(
        {"episodes": [1, 3, 4], "sessions_with_ors": [4, 0, 2]},
        index=pd.Index(["x", "y", "z"], name="unit_id"),
    )
    _out, plain = suppress_table(table, k=3, partition_levels=["unit_id"])
    assert plain["episodes"].notna().tolist() == [True, True, False]
    _out, reasons = suppress_table(
        table,
        k=3,
        partition_levels=["unit_id"],
        sums={"episodes": ["sessions_with_ors"]},
    )
    small, compl = reason_small(3), REASON_COMPLEMENTARY
    assert reasons["episodes"].tolist() == [small, compl, compl]
    assert reasons["sessions_with_ors"].notna().all()


# --------------------------------------------------------------------------- end to end


def _row_of(rows: list[list[str]], month_prefix: str) -> list[str] | None:
    for r in rows[1:]:
        if r[0].startswith(month_prefix):
            return r
    return None


@pytest.mark.django_db
def test_attacker_organisation_month_minus_a_unit_without_ors(
    client: Any, org1: OrgPersonas
) -> None:
    """k = 5; every episode adult, closed, one session each. Unit A (3 therapists): 6 episodes
    with an ORS and an SRS 3 months before the reference month, 2 (of two therapists) 2
    months before. Unit B (3 therapists of its own): 6 episodes with an SRS only 3 months
    before, 5 two months before. The organisation: −3: 12 clients, 6 sessions with an
    ORS; −2: 7 clients, 2 with an ORS.

    A's −2 (2 clients) is hidden; its partner among the units is B's −2 (5), with no ORS
    session; B's table shows 11 episodes and an empty mean first ORS (over the episodes
    with any ORS) that is not hidden, on both sides: B has no ORS at all.
    Before, the organisation's −2 was shown: 2 ORS sessions − B's 0 = A's hidden 2 (and
    −3: 6 − 0 = A's hidden 6, A's months' complement). Now the organisation's months are
    hidden too."""
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "therapist_c")]
    own = [add_therapist(org1, f"b_{i}", unit=org1.other_unit) for i in range(3)]
    for i in range(8):
        back = 3 if i < 6 else 2
        ep = make_episode(org1, code=f"PA-{i}", therapist=team[i % 3], started_on=_month(back, 1))
        record(ep, _month(back, 3 + i), ors=f"{10 + i}.0", srs="35.0")
        episode_close(actor=ep.therapist, episode=ep, closed_on=_month(back, 20))
    for i in range(11):
        back = 3 if i < 6 else 2
        ep = make_episode(
            org1,
            code=f"PB-{i}",
            therapist=own[i % 3],
            started_on=_month(back, 1),
            unit=org1.other_unit,
        )
        record(ep, _month(back, 3 + i), srs="35.0")
        episode_close(actor=ep.therapist, episode=ep, closed_on=_month(back, 20))
    user = org1.analyst
    b = api_figures(client, user, "unit", org1.other_unit.pk)
    # B has no session with an ORS: its mean first ORS (over the episodes with any ORS)
    # is empty on both sides without being hidden, next to 11 shown episodes
    assert b["inactive"]["episodes"] == 11 and b["active"]["episodes"] == 0
    for side in ("active", "inactive"):
        assert b[side]["ors_start"] is None and "ors_start" not in b["suppressed"][side]
    b_rows = export_rows(client, user, "unit", org1.other_unit.pk, "implementation")
    a_rows = export_rows(client, user, "unit", org1.unit.pk, "implementation")
    org_rows = export_rows(client, user, "organisation", org1.org.pk, "implementation")
    title = "Sessioner med en ORS"
    for back, a_ors in ((2, 2), (3, 6)):
        prefix = _month(back, 1).strftime("%Y-%m")
        assert _row_of(a_rows, prefix) is None  # A's month is hidden
        assert _row_of(b_rows, prefix) is None  # B's month too (its partner)
        org_month = _row_of(org_rows, prefix)
        if org_month is not None:
            b_ors = 0  # n_ors_start 0 on both sides: no ORS at all
            recovered = int(org_month[org_rows[0].index(title)]) - b_ors
            assert recovered != a_ors, (back, org_rows)  # before: A's hidden month
    assert len(org_rows) == 1, org_rows  # now: every month of the organisation hidden
