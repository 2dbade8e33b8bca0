"""A lone hidden cell across a set whose total is shown elsewhere (review round 11).

Complementary suppression picks only non-zero shown cells as complements. In a set
whose other members are all 0, a hidden cell had no partner; wherever the set's total
can be read, total − 0 gave it back. The totals a reader can read that are no member of
the set given to the suppression:

* **both sides** of a scope (active + inactive). The statistics table shows the two sides
  only, but the *sessions* of both sides are exactly the sessions of all months of the
  implementation panel (chart and CSV/XLSX export; same scope, age group and reference
  date, every session up to it). A hidden inactive row next to an active side of 0 gave
  its sessions back as Σ months − 0; with a sum over units, a small unit's sessions too.
* **all months**: the same total read the other way round — with both sides shown, the
  sessions of a hidden month were both sides − the shown months.

Now each grid has that total as a row in a set with its parts (stats.siblings, rule 6 of
stats.anonymise), and a total hidden in one grid is hidden in the other. Other sets keep
their total as a member (all ages, a parent unit), and no page, export or API answer shows
a both-sides total of any other figure (tested below). Figures are hand-computed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse

from clients.services import episode_close
from datapolicy.models import Unit, User
from stats.anonymise import REASON_COMPLEMENTARY, reason_small, suppress_table
from stats.selectors import period_as_of
from stats.siblings import Tree, family_masks
from tests.conftest import OrgPersonas, add_therapist, make_episode, record
from tests.stats.readers import api_figures, export_rows, months_back

K = 5
T = period_as_of("month")[1]  # the last closed month-end, shown by default


# --------------------------------------------------------------------------- pure


def _month(back: int, day: int) -> dt.date:
    """Day ``day`` of the month ``back`` months before T's month."""
    return months_back(T, back, day)


def _impl(months: list[tuple[str, int, int]], therapists: int = 3) -> list[dict[str, Any]]:
    """Implementation rows (month, distinct episodes, sessions); every session has both
    scales."""
    return [
        {
            "month": m,
            "episodes": e,
            "sessions": s,
            "sessions_with_ors": s,
            "sessions_with_srs": s,
            "sessions_with_both": s,
            "active_therapists": therapists,
        }
        for m, e, s in months
    ]


def _payload(
    active: tuple[int, int], inactive: tuple[int, int], months: list[tuple[str, int, int]]
) -> dict[str, Any]:
    """A scope with (episodes, sessions) per side; every episode has two ORS (classified,
    no reliable change) and its implementation months."""

    def side(episodes: int, sessions: int) -> dict[str, Any]:
        return {
            "episodes": episodes,
            "sessions": sessions,
            "n_ors_start": episodes,
            "n_ors_change": episodes,
            "n_classified": episodes,
            "no_reliable_change": episodes,
            "reliable_improvement": 0,
            "reliable_deterioration": 0,
            "clinically_significant": 0,
        }

    return {
        "table": {"active": side(*active), "inactive": side(*inactive)},
        "implementation": _impl(months),
        "n_therapists": 3,
        "n_therapists_direct": 0,
    }


def _family(**scopes: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """org (id 1) with units A (10) and B (11); all episodes adult (all = adult)."""
    ids = {"org": ("organisation", 1), "a": ("unit", 10), "b": ("unit", 11)}
    return {(*ids[n], age): p for n, p in scopes.items() for age in ("all", "adult")}


TREE = Tree(("organisation", 1), {10: None, 11: None})
JAN, MAR, APR = "2026-01-01", "2026-03-01", "2026-04-01"


def _shown_months(masks: Any, parts: Any, key: tuple[str, int, str]) -> dict[str, int]:
    hidden = masks[key]["implementation"]
    return {
        r["month"]: r["sessions"]
        for r in parts[key]["implementation"]
        if r["month"] not in hidden and not 0 < r["episodes"] < K
    }


def _side_sessions(masks: Any, parts: Any, key: tuple[str, int, str], side: str) -> int | None:
    if "sessions" in masks[key]["table"][side]:
        return None
    return int(parts[key]["table"][side]["sessions"])


def test_a_lone_hidden_inactive_row_is_not_all_months_minus_zero() -> None:
    """k = 5. Unit A: 2 inactive episodes, 4 sessions (January). Unit B: 6 inactive
    episodes, 12 sessions (6 in March, 6 in April). Both units' active sides are 0. The
    organisation: 8 inactive, 16 sessions.

    A's 2 are small and hidden; in {org 8, A 2, B 6} B (6 < 8) is hidden as their
    complement. B's active side is 0, so the set {B active 0, B inactive 6} has no
    partner for B's 6. Before: B's March and April were shown (6 episodes each, 3
    therapists): 6 + 6 − 0 = 12 = B's inactive sessions, and the organisation's 16 − 12
    = 4 = A's sessions (2 clients). Now the both-sides total of B (6 episodes, 12
    sessions) is hidden, so B's months are: the first of the smallest, March (6 = 6),
    hidden with it, and in {org March 6, A March 0, B March 6} the organisation's March
    as its complement."""
    parts = _family(
        org=_payload((0, 0), (8, 16), [(JAN, 2, 4), (MAR, 6, 6), (APR, 6, 6)]),
        a=_payload((0, 0), (2, 4), [(JAN, 2, 4)]),
        b=_payload((0, 0), (6, 12), [(MAR, 6, 6), (APR, 6, 6)]),
    )
    masks = family_masks(parts, TREE, k=K)
    a, b, org = ("unit", 10, "all"), ("unit", 11, "all"), ("organisation", 1, "all")
    assert masks[a]["table"]["inactive"]["episodes"] == reason_small(K)
    assert masks[b]["table"]["inactive"]["episodes"] == REASON_COMPLEMENTARY
    assert masks[b]["table"]["active"] == {}  # 0 episodes: shown as 0
    assert masks[b]["implementation"] == {MAR: REASON_COMPLEMENTARY}
    assert masks[org]["implementation"] == {JAN: reason_small(K), MAR: REASON_COMPLEMENTARY}
    assert _shown_months(masks, parts, b) == {APR: 6}
    assert _shown_months(masks, parts, org) == {APR: 6}
    # The attacker: Σ shown months − the shown side is no hidden side's sessions.
    for key, true in ((a, 4), (b, 12), (org, 16)):
        for side in ("active", "inactive"):
            other = "inactive" if side == "active" else "active"
            mine, theirs = (_side_sessions(masks, parts, key, s) for s in (side, other))
            if mine is None and theirs is not None:
                guess = sum(_shown_months(masks, parts, key).values()) - theirs
                assert guess != true, (key, side)
    # ... and the organisation's 16 − B's months no longer gives A's 4.
    assert sum(_shown_months(masks, parts, org).values()) == 6  # 16 − 6 = 10 = 4 + 6


def test_a_hidden_month_is_not_both_sides_minus_the_other_months() -> None:
    """k = 5. Unit B: active 10 episodes with 30 sessions, inactive 10 with 30; months
    January 2 episodes (2 sessions, small), March 20 (28), April 20 (30). Both sides are
    shown (30 + 30 = 60 sessions), so before: January = 60 − 28 − 30 = 2 sessions of a
    hidden month. Now the month set {all months 60, Jan 2, Mar 28, Apr 30} hides the
    smallest shown non-zero month, March (20 episodes), with January."""
    months = [(JAN, 2, 2), (MAR, 20, 28), (APR, 20, 30)]
    parts = _family(
        org=_payload((10, 30), (10, 30), months),
        a=_payload((0, 0), (0, 0), []),
        b=_payload((10, 30), (10, 30), months),
    )
    masks = family_masks(parts, TREE, k=K)
    b = ("unit", 11, "all")
    assert masks[b]["table"] == {"active": {}, "inactive": {}}
    assert masks[b]["implementation"] == {JAN: reason_small(K), MAR: REASON_COMPLEMENTARY}
    assert _shown_months(masks, parts, b) == {APR: 30}  # 60 − 30 = 30 = Jan + Mar


def test_a_lone_hidden_month_hides_a_side_of_the_table() -> None:
    """k = 5; every episode active, every table cell shown (A 10 episodes, 30 sessions;
    B 6, 12; the organisation 16, 42). Months: A January 10 episodes (28 sessions) and
    March 2 (2); B March only, 6 (12); the organisation January 10 (28), March 8 (14).

    A's March (2) is small; in {org March 8, A 2, B 6} B's March (6) is its complement.
    B has no other month: before, B's 12 + 0 sessions of both sides were its hidden
    March. Now B's all-months total (12) is the complement, so B's both-sides total is
    hidden, and with it B's active side (its one non-zero side); then, in {org 16, A 10,
    B 6}, A's active side (10 < 16), and so A's both-sides and all-months totals: these
    are the second hidden member of A's months {all, January 28, March 2}, so January
    stays shown. The attacker has A's March + B's March = 14 (the organisation's March,
    and again 42 − 28 from the sides) and nothing else on them: two unknowns."""
    parts = _family(
        org=_payload((16, 42), (0, 0), [(JAN, 10, 28), (MAR, 8, 14)]),
        a=_payload((10, 30), (0, 0), [(JAN, 10, 28), (MAR, 2, 2)]),
        b=_payload((6, 12), (0, 0), [(MAR, 6, 12)]),
    )
    masks = family_masks(parts, TREE, k=K)
    a, b, org = ("unit", 10, "all"), ("unit", 11, "all"), ("organisation", 1, "all")
    assert masks[b]["implementation"] == {MAR: REASON_COMPLEMENTARY}
    assert masks[a]["implementation"] == {MAR: reason_small(K)}
    assert masks[org]["implementation"] == {}
    assert masks[b]["table"]["active"]["sessions"] == REASON_COMPLEMENTARY
    assert masks[a]["table"]["active"]["sessions"] == REASON_COMPLEMENTARY
    assert masks[org]["table"] == {"active": {}, "inactive": {}}
    for key in (a, b, org):
        assert masks[key]["table"]["inactive"] == {}  # 0 episodes: shown as 0


def test_an_ordinary_family_hides_no_more_than_before() -> None:
    """k = 5. Every cell ≥ k, and a small cell with non-zero siblings: exactly what rule 3
    hid before. A: active 12 (40 sessions), inactive 3 (9): inactive small, active (the
    non-zero sibling) hidden as its complement; B: 9 and 7, all shown. Months: A January
    15 episodes (49 sessions); B January 16 (50); org 31 (99). Nothing more is hidden:
    no both-sides or all-months total, no month."""
    parts = _family(
        org=_payload((21, 68), (10, 30), [(JAN, 31, 98)]),
        a=_payload((12, 40), (3, 9), [(JAN, 15, 49)]),
        b=_payload((9, 28), (7, 21), [(JAN, 16, 49)]),
    )
    masks = family_masks(parts, TREE, k=K)
    a, b, org = ("unit", 10, "all"), ("unit", 11, "all"), ("organisation", 1, "all")
    assert masks[a]["table"]["inactive"]["episodes"] == reason_small(K)
    assert masks[a]["table"]["active"]["episodes"] == REASON_COMPLEMENTARY
    # the set of A's complement across the units: {org 21, A 12, B 9} → B's active 9,
    # and {org 10, A 3, B 7} → B's inactive 7, as before
    assert masks[b]["table"]["active"]["episodes"] == REASON_COMPLEMENTARY
    assert masks[b]["table"]["inactive"]["episodes"] == REASON_COMPLEMENTARY
    assert masks[org]["table"] == {"active": {}, "inactive": {}}
    for key in (a, b, org):
        assert masks[key]["implementation"] == {}


def _why(reasons: pd.DataFrame) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in reasons["episodes"]]


def test_suppress_table_totals_rule() -> None:
    """rule 6 of stats.anonymise, on a bare table (k = 5): a set {active 0, inactive 3,
    total 3}. Before (no total row) nothing but the 3 was hidden; the total, a member of
    the set, is now its complement. A total is never hidden for its own size: {active 2,
    inactive 0, total 2} hides the 2 (small) and, as its complement, the total."""
    index = pd.MultiIndex.from_tuples(
        [("x", "active"), ("x", "inactive"), ("x", "both")], names=["scope", "side"]
    )
    table = pd.DataFrame({"episodes": [0, 3, 3]}, index=index)
    sets = (np.zeros(3, dtype=np.int64), np.arange(3, dtype=np.int64))
    totals = np.array([False, False, True])
    _out, reasons = suppress_table(
        table, k=K, partition_levels=[], sibling_sets=sets, totals=totals
    )
    assert _why(reasons) == [None, reason_small(K), REASON_COMPLEMENTARY]
    # without the total in the set: the lone 3 has no partner (the gap)
    _out, reasons = suppress_table(
        table.iloc[:2], k=K, partition_levels=[], sibling_sets=(sets[0][:2], sets[1][:2])
    )
    assert _why(reasons) == [None, reason_small(K)]
    # a total row of 4 with parts 2 + 2 hidden (2 non-zero, 4 < k): no candidate left,
    # and the total itself is not small-suppressed for its own size
    table = pd.DataFrame({"episodes": [2, 2, 4]}, index=index)
    _out, reasons = suppress_table(
        table, k=K, partition_levels=[], sibling_sets=sets, totals=totals
    )
    assert _why(reasons) == [
        reason_small(K),
        reason_small(K),
        REASON_COMPLEMENTARY,
    ]


# --------------------------------------------------------------------------- end to end


def _closed_episodes(
    personas: OrgPersonas,
    prefix: str,
    therapists: list[User],
    dates: list[dt.date],
    n: int,
    unit: Unit | None = None,
) -> None:
    """n episodes, one ORS/SRS session on each date, closed 5 days after the last."""
    for i in range(n):
        therapist = therapists[i % len(therapists)]
        ep = make_episode(
            personas,
            code=f"{prefix}-{i}",
            therapist=therapist,
            unit=unit,
            started_on=dates[0] - dt.timedelta(days=1),
        )
        for j, d in enumerate(dates):
            record(ep, d, ors=f"{12 + i + j}.0", srs="35.0")
        episode_close(actor=therapist, episode=ep, closed_on=dates[-1] + dt.timedelta(days=5))


def _month_sessions(rows: list[list[str]]) -> int:
    """Σ of the export's months' sessions (column 2: "Sessioner")."""
    assert rows[0][1] == "Sessioner", rows[0]
    return sum(int(r[1]) for r in rows[1:])


@pytest.mark.django_db
def test_attacker_on_the_api_and_the_implementation_export(client: Any, org1: OrgPersonas) -> None:
    """The first pure case through the database (k = 5; every episode adult, closed, one
    session in each of its months). Unit A (3 therapists): 2 episodes, sessions in the
    month 4 months before the reference month (4 sessions). Unit B (3 therapists of its
    own): 6 episodes, sessions 2 months and 1 month before (12 sessions). Organisation:
    8 inactive episodes, 16 sessions; every active side 0.

    The attack (it worked before the fix): B's inactive row is hidden (the complement of
    A's 2), its active sessions read 0, B's export lists two months of 6 sessions: 12 − 0
    = 12; the organisation's inactive 16 − 12 = 4 = A's hidden sessions. Now B lists
    one month only (6)."""
    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "therapist_c")]
    own = [add_therapist(org1, f"b_{i}", unit=org1.other_unit) for i in range(3)]
    _closed_episodes(org1, "UA", team, [_month(4, 3), _month(4, 10)], 2)
    _closed_episodes(org1, "UB", own, [_month(2, 5), _month(1, 5)], 6, unit=org1.other_unit)
    user = org1.analyst
    a, b = (
        api_figures(client, user, "unit", org1.unit.pk),
        api_figures(client, user, "unit", org1.other_unit.pk),
    )
    org = api_figures(client, user, "organisation", org1.org.pk)
    assert org["inactive"]["episodes"] == 8 and org["inactive"]["sessions"] == 16
    assert org["active"]["sessions"] == 0
    assert a["inactive"]["sessions"] is None and b["inactive"]["sessions"] is None
    assert b["active"]["episodes"] == 0 and b["active"]["sessions"] == 0
    assert b["suppressed_codes"]["inactive"]["sessions"] == "hidden"
    b_months = _month_sessions(
        export_rows(client, user, "unit", org1.other_unit.pk, "implementation")
    )
    org_months = _month_sessions(
        export_rows(client, user, "organisation", org1.org.pk, "implementation")
    )
    recovered_b = b_months - b["active"]["sessions"]
    assert recovered_b != 12  # before: 6 + 6 − 0 = 12, B's hidden inactive sessions
    assert org["inactive"]["sessions"] - recovered_b != 4  # before: 16 − 12 = A's 4
    assert b_months == 6 and org_months == 6
    # the organisation's hidden months (−4: 4 sessions, −2: 6) are not 16 − the shown
    # months alone: two unknowns
    assert org["active"]["sessions"] + org["inactive"]["sessions"] - org_months == 4 + 6


@pytest.mark.django_db
def test_no_view_shows_a_both_sides_total(client: Any, org1: OrgPersonas) -> None:
    """Every other both-sides total: the statistics and outcome tables (page, CSV export,
    API) and the stored report show the two sides only — no "both"/"i alt" column or key
    that would give a lone hidden class back as total − 0. These fail if one is added.
    Data: unit A 6 active episodes with two ORS, nothing inactive (a class of the
    inactive side is 0 everywhere)."""
    from datapolicy.reports import report_figures

    team = [org1.therapist_a, org1.therapist_b, add_therapist(org1, "therapist_c")]
    for i in range(6):
        ep = make_episode(org1, code=f"TS-{i}", therapist=team[i % 3], started_on=_month(2, 1))
        record(ep, _month(2, 3), ors=f"{10 + i}.0", srs="35.0")
        record(ep, _month(1, 3), ors=f"{20 + i}.0", srs="36.0")
    body = api_figures(client, org1.analyst, "unit", org1.unit.pk)
    sides = {"active", "inactive"}
    assert set(body) == {
        "scope",
        "id",
        "as_of",
        "computed_at",
        "anonymised",
        "k",
        *sides,
        "trajectory",
        "suppressed",
        "suppressed_codes",
        "hidden_reason",
        "hidden_code",
    }
    assert set(body["suppressed"]) <= sides and set(body["suppressed_codes"]) <= sides
    for table in ("statistics", "outcomes"):
        rows = export_rows(client, org1.analyst, "unit", org1.unit.pk, table)
        assert all(len(r) == 3 for r in rows), rows  # label, active, inactive
        assert rows[0] == ["", "Aktive", "Inaktive"]
    client.force_login(org1.analyst)
    page = client.get(reverse("stats_unit", kwargs={"unit_id": org1.unit.pk})).content.decode()
    assert page.count("<th>Aktive</th><th>Inaktive</th></tr>") >= 1
    assert "I alt" not in page and "i alt" not in page
    year = str(_month(1, 3).year)
    figures = report_figures(
        organisation=org1.org,
        selection={"scope": "unit", "unit_id": org1.unit.pk, "period": year, "age_group": ""},
    )
    assert [r["active"] for r in figures["rows"]] in ([], [True, False])
