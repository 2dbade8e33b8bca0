"""Held-back changes across the sides (docs/datapolicy.md, rule 10 and "Limits").

The publication's change grid (stats.publications.held_between) judges the active side,
the inactive side and both sides together ("values:") as figures of their own. The
question: with two published month-ends, can a reader combine the sides and the dates to
recover a held change — Δboth − Δinactive = Δactive, where the both-sides sessions are
the implementation months' sessions (export) at either date?

It cannot, and these tests show why (each fails when the new date's set {active,
inactive, both} of stats.siblings is taken away, ``BOTH_SIDES_READABLE = ()``):

* a held side is a hidden cell of the new date's grid, where the set {active, inactive,
  both} applies to the client and session counts: the other side or the both-sides total
  is hidden with it (the total by hiding a month), so "both − the other side" has two
  unknowns — with new sessions on the held side, and with an episode that only moved from
  active to inactive (Δactive = −1 episode, Δinactive = +1, Δboth = 0);
* where the other side is hidden without having changed (its old figure is known), the
  held side's episodes are exactly the both-sides' changed episodes (checked below on the
  change tokens), so the both-sides total changed by the same few: it can be read at the
  new date only as the sum of months shown there, each month's change held where it is
  small, and then it tells no more than those months.

Figures are hand-computed (k = 5).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
import time_machine

from clients.services import episode_close
from datapolicy.models import User
from stats.publications import TABLE_FAMILIES, States, change_tokens, held_between
from stats.siblings import Tree
from tests.conftest import OrgPersonas, add_therapist, make_episode, record
from tests.stats.readers import api_figures, export_rows

K = 5


def _at(day: dt.date) -> Any:
    return time_machine.travel(
        dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC), tick=False
    )


def _months(client: Any, user: User, kind: str, scope_id: int) -> dict[str, Any]:
    """The implementation export's months → sessions ("skjult …" where hidden)."""
    rows = export_rows(client, user, kind, scope_id, "implementation")
    assert rows[0][1] == "Sessioner", rows[0]
    return {row[0]: (int(row[1]) if row[1].isdigit() else row[1]) for row in rows[1:]}


def _both_sides(months: dict[str, Any]) -> int | None:
    """Σ of the months' sessions = the both-sides sessions, when every month is shown."""
    if not all(isinstance(v, int) for v in months.values()):
        return None
    return sum(months.values())


def _episode(p: OrgPersonas, code: str, t: User, days: list[dt.date]) -> Any:
    ep = make_episode(p, code=code, therapist=t, unit=p.other_unit, started_on=days[0])
    for day in days:
        record(ep, day, ors="14.0", srs="36.0")
    return ep


def _february(p: OrgPersonas) -> tuple[list[User], list[Any]]:
    """Unit B: 6 active adult clients of three therapists (2 each), sessions on 3 and 17
    February: 6 episodes, 12 sessions; the February month: 6 clients, 12 sessions."""
    team = [add_therapist(p, f"hb{i}", unit=p.other_unit) for i in range(3)]
    eps = [
        _episode(p, f"HB-{i}", team[i % 3], [dt.date(2026, 2, 3), dt.date(2026, 2, 17)])
        for i in range(6)
    ]
    return team, eps


def _nine_closed_in_march(p: OrgPersonas, team: list[User]) -> None:
    """9 new clients (3 per therapist), sessions on 2 and 16 March, closed on 20 March:
    inactive at the end of March; 18 sessions. A change of 9 episodes, 6 without any one
    therapist's 3: let through on the inactive side."""
    for i in range(9):
        ep = _episode(p, f"HN-{i}", team[i % 3], [dt.date(2026, 3, 2), dt.date(2026, 3, 16)])
        episode_close(actor=team[i % 3], episode=ep, closed_on=dt.date(2026, 3, 20))


def _attack(feb: dict[str, Any], mar: dict[str, Any], both_mar: int | None) -> int | None:
    """The reader's Δactive sessions: (both − inactive) at March − active at February."""
    inactive = mar["inactive"]["sessions"]
    if both_mar is None or inactive is None:
        return None
    return int(both_mar - inactive - feb["active"]["sessions"])


@pytest.mark.django_db
def test_a_held_side_is_not_both_sides_minus_the_other_side(client: Any, org1: OrgPersonas) -> None:
    """February (published): unit B active 6 episodes / 12 sessions, inactive 0; months
    February 12 → both sides 12.

    March: 2 of the February clients (therapists hb0, hb1) come once more (10 March) —
    Δactive = 2 episodes: held; 9 new clients closed in March — Δinactive = 9 (6 without
    one therapist's 3): let through; both sides: 11 changed (hb0 4, hb1 4, hb2 3; 7
    without hb0's): let through. At the end of March: active 6 / 14 sessions, inactive
    9 / 18, both 15 / 32 = the months February 12 + March 20 (11 clients, 3 therapists:
    shown).

    The attack: both 32 − inactive 18 = active 14; 14 − 12 = 2 sessions, the two
    clients' new sessions — a change of 2 clients. The inactive side is shown at both
    dates' grids on its own (9 episodes, ≥ k), so only the set {active, inactive, both}
    of the new date, with the held active side as a hidden cell, hides it (its
    complement): now it reads "skjult", and 32 − ? has two unknowns."""
    p = org1
    with _at(dt.date(2026, 3, 5)):
        team, eps = _february(p)
        feb = api_figures(client, p.analyst, "unit", p.other_unit.pk)
        feb_months = _months(client, p.analyst, "unit", p.other_unit.pk)
    assert feb["active"]["episodes"] == 6 and feb["active"]["sessions"] == 12
    assert feb["inactive"]["episodes"] == 0
    assert _both_sides(feb_months) == 12
    with _at(dt.date(2026, 4, 6)):
        record(eps[0], dt.date(2026, 3, 10), ors="20.0", srs="37.0")
        record(eps[1], dt.date(2026, 3, 10), ors="21.0", srs="37.0")
        _nine_closed_in_march(p, team)
        mar = api_figures(client, p.analyst, "unit", p.other_unit.pk)
        mar_months = _months(client, p.analyst, "unit", p.other_unit.pk)
        org = api_figures(client, p.analyst, "organisation", p.org.pk)
        org_months = _months(client, p.analyst, "organisation", p.org.pk)
    # the months are shown (the both-sides sessions can be read): 12 + 20 = 32
    assert mar_months == {"2026-02": 12, "2026-03": 20}
    assert _both_sides(mar_months) == 32
    # the active side is held back, the inactive side hidden with it (a complement)
    assert mar["active"]["sessions"] is None
    assert mar["suppressed_codes"]["active"]["sessions"] == "changed_since_publication"
    assert mar["inactive"]["sessions"] is None, (
        f"Δactive = 32 − {mar['inactive']['sessions']} − 12 = "
        f"{_attack(feb, mar, _both_sides(mar_months))} sessions"
    )
    assert mar["suppressed_codes"]["inactive"]["sessions"] == "hidden"
    assert _attack(feb, mar, 32) is None
    # the organisation (unit A has no episodes: the same figures) likewise
    assert _both_sides(org_months) == 32
    assert org["active"]["sessions"] is None and org["inactive"]["sessions"] is None


@pytest.mark.django_db
def test_an_episode_moved_to_inactive_is_not_both_sides_minus_the_other_side(
    client: Any, org1: OrgPersonas
) -> None:
    """The reclassification between sides. February as above (active 6 / 12, months 12).

    March: one February client's episode is closed on 10 March, without a session — it
    moves from the active to the inactive side: Δactive = −1 episode (held), its 2
    sessions leave the active side and join the inactive one, Δboth = 0 for it. And the 9
    new clients closed in March: Δinactive = 10 episodes (hb0 4, 6 without them: let
    through), both sides 9 (6 without one therapist's 3: let through). At the end of
    March: active 5 / 10, inactive 10 / 20, both 15 / 30 = February 12 + March 18 (9
    clients, 3 therapists: shown).

    The attack: both 30 − inactive 20 = active 10; 10 − 12 = −2: one client with two
    sessions stopped in March. The inactive side is hidden with the held active side."""
    p = org1
    with _at(dt.date(2026, 3, 5)):
        team, eps = _february(p)
        feb = api_figures(client, p.analyst, "unit", p.other_unit.pk)
        feb_months = _months(client, p.analyst, "unit", p.other_unit.pk)
    assert feb["active"]["sessions"] == 12 and _both_sides(feb_months) == 12
    with _at(dt.date(2026, 4, 6)):
        episode_close(actor=team[0], episode=eps[0], closed_on=dt.date(2026, 3, 10))
        _nine_closed_in_march(p, team)
        mar = api_figures(client, p.analyst, "unit", p.other_unit.pk)
        mar_months = _months(client, p.analyst, "unit", p.other_unit.pk)
    assert mar_months == {"2026-02": 12, "2026-03": 18}
    assert _both_sides(mar_months) == 30
    assert mar["active"]["episodes"] is None and mar["active"]["sessions"] is None
    assert mar["suppressed_codes"]["active"]["episodes"] == "changed_since_publication"
    assert mar["inactive"]["sessions"] is None, (
        f"Δactive = 30 − {mar['inactive']['sessions']} − 12 = "
        f"{_attack(feb, mar, _both_sides(mar_months))} sessions"
    )
    assert mar["suppressed_codes"]["inactive"]["sessions"] == "hidden"


# --------------------------------------------------------------------------- pure


def _states(rows: list[tuple[int, int, bool, int, int]], month: int) -> States:
    """Hand-made states: (id, therapist, active, bits, episodes-family hash) per row."""
    from tests.stats.test_publications import states

    return states(
        [
            {"id": i, "unit": 10, "therapist": t, "active": a, "bits": b, "sessions": h}
            for i, t, a, b, h in rows
        ],
        month,
    )


def test_the_sides_changed_episodes_cover_each_other() -> None:
    """The premise of the argument above, per table family and episode: changed on both
    sides ⊆ changed on the active ∪ the inactive side, and each side ⊆ the other side ∪
    both sides. So where one side did not change at all, the other side's changed
    episodes *are* both sides' — the both-sides total changed by exactly the held few,
    never by a change that passed. Random pairs of hand-made states: episodes that come,
    go, move between the sides, change membership bits or sessions."""
    rng = np.random.default_rng(11)
    feb = 2026 * 12 + 1
    for _trial in range(40):
        ids = rng.choice(np.arange(1, 200), size=30, replace=False)
        old, new = [], []
        for i in ids.tolist():
            row = (i, 1 + i % 3, bool(rng.integers(2)), int(rng.integers(16)), 3)
            if rng.random() < 0.8:
                old.append(row)
            if rng.random() < 0.8:
                _i, t, a, b, h = row
                if rng.random() < 0.3:
                    a = not a
                if rng.random() < 0.3:
                    b = int(rng.integers(16))
                if rng.random() < 0.3:
                    h = 7
                new.append((i, t, a, b, h))
        ch = change_tokens(_states(old, feb), _states(new, feb + 1))
        col = {t: j for j, t in enumerate(ch.tokens)}
        blank = np.zeros(len(ch.place), dtype=bool)
        for family in TABLE_FAMILIES:
            act, ina, both = (
                ch.sure[:, col[f"{s}:{family}"]] if f"{s}:{family}" in col else blank
                for s in ("active", "inactive", "values")
            )
            assert not (both & ~(act | ina)).any(), family
            assert not (act & ~(both | ina)).any(), family
            assert not (ina & ~(both | act)).any(), family


def test_an_unchanged_other_side_leaves_both_sides_held() -> None:
    """Unit 11 (three therapists) has 6 active and 6 inactive episodes in February; in
    March 2 active episodes change their sessions (hash 3 → 7), nothing else. Held in
    unit 11 and the organisation: the active side and both sides ("values:episodes", the
    same 2 episodes), not the inactive side (0 changed) — which the new date's grid then
    hides as the active side's complement, next to a both-sides total whose change is
    held: its months (the only place it can be read) hold the same 2 episodes."""
    tree = Tree(("organisation", 1), {10: None, 11: None})
    feb = 2026 * 12 + 1
    old = [(100 + i, 1 + i % 3, i < 6, 0b1111, 3) for i in range(12)]
    new = [(i, t, a, b, 7 if i in (100, 101) else h) for i, t, a, b, h in old]
    old_s = _states(old, feb)
    new_s = _states(new, feb + 1)
    for s in (old_s, new_s):
        s.columns["unit"][:] = 11
    held = held_between(old_s, new_s, tree, k=K)
    for node in ("unit:11", "organisation:1"):
        tokens = held[(node, "all")]
        assert {"active:episodes", "values:episodes"} <= tokens, tokens
        assert not any(t.startswith("inactive:") for t in tokens), tokens
