"""How much of the outcome table an anonymised view keeps (review round 11).

Before: a small class in one unit's row hid another class of that row, then the same two
classes on the unit's *other side* (active + inactive was treated as a sum that may be
shown), then, through the sums over units and age groups, the same classes elsewhere —
measured on a seeded organisation (200,000 sessions, two organisations, k = 5): 375 of
685 non-zero class cells of the units' and organisations' month-end tables hidden, for 77
small ones; in the demo every class of every unit. Now

* a class of both sides together is no sum any view shows or lets a reader add up (the
  statistics table, its exports and the API show the two sides only:
  tests/stats/test_cross_side_totals.py), so the sides are no set for the classes
  (``stats.siblings.BOTH_SIDES_READABLE``; the client and session counts keep it);
* within a row the complement of a hidden class is "no reliable change" where it can be
  (``stats.anonymise.PREFERRED_COMPLEMENT``): improvement and deterioration are what the
  table is read for, and the rows' complements fall into one column, where they protect
  each other.

Measured the same way: 211 of 685 hidden. Every figure below is computed by hand (k = 5).
"""

from __future__ import annotations

from typing import Any

from stats.siblings import Tree, family_masks

K = 5
TREE = Tree(("organisation", 1), {10: None, 11: None})
A, B, ORG = ("unit", 10), ("unit", 11), ("organisation", 1)
CLASSES = ("reliable_improvement", "reliable_deterioration", "no_reliable_change")


def _side(improved: int, deteriorated: int, unchanged: int) -> dict[str, Any]:
    n = improved + deteriorated + unchanged
    return {
        "episodes": n,
        "sessions": 3 * n,
        "n_ors_start": n,
        "n_ors_change": n,
        "n_classified": n,
        "reliable_improvement": improved,
        "reliable_deterioration": deteriorated,
        "no_reliable_change": unchanged,
        "clinically_significant": 0,
    }


def _part(active: tuple[int, int, int], inactive: tuple[int, int, int]) -> dict[str, Any]:
    return {
        "table": {"active": _side(*active), "inactive": _side(*inactive)},
        "n_therapists": 3,
        "n_therapists_direct": 0,
    }


def _masks() -> dict[tuple[str, int, str], Any]:
    """Units A and B of one organisation, every client an adult (all ages = adult).
    (improved, deteriorated, unchanged) per side:

    ======  ============  ============
    scope   active        inactive
    ======  ============  ============
    A       3, 7, 10      12, 8, 10
    B       8, 6, 6       12, 8, 10
    org     11, 13, 16    24, 16, 20
    ======  ============  ============
    """
    scopes = {
        A: _part((3, 7, 10), (12, 8, 10)),
        B: _part((8, 6, 6), (12, 8, 10)),
        ORG: _part((11, 13, 16), (24, 16, 20)),
    }
    parts = {(*key, age): p for key, p in scopes.items() for age in ("all", "adult")}
    return family_masks(parts, TREE, k=K)


def _hidden(masks: Any, scope: tuple[str, int], side: str, age: str = "all") -> set[str]:
    return set(masks[(*scope, age)]["table"][side])


def test_a_small_class_costs_two_classes_in_two_units_and_nothing_on_the_other_side() -> None:
    """A's active improvement 3 is small. Within A's active row its complement is no
    change 10 (preferred; the smallest would be deterioration 7): 3 + 10 ≥ 5, two cells.
    Over the units (org = A + B, nothing direct) each hidden cell of A needs a partner:
    B's improvement 8 (the smallest shown non-zero of {org 11, B 8}) and B's no change 6
    (of {org 16, B 6}); B's row then holds two hidden classes, 8 + 6 ≥ 5. All ages and
    adults are the same rows, hidden alike. The inactive sides and the organisation keep
    every class: before, the inactive improvement and no change of A and B were hidden
    as the active ones' complements across the sides, a sum no view shows."""
    masks = _masks()
    for age in ("all", "adult"):
        assert _hidden(masks, A, "active", age) == {"reliable_improvement", "no_reliable_change"}
        assert _hidden(masks, B, "active", age) == {"reliable_improvement", "no_reliable_change"}
        for scope in (A, B, ORG):
            assert _hidden(masks, scope, "inactive", age) == set()
        assert _hidden(masks, ORG, "active", age) == set()


def test_nothing_hidden_can_be_worked_out_from_what_is_shown() -> None:
    """The attacker's sums over what the masks leave shown, for the hidden cells of the
    test above: within A's active row 20 − 7 = 13 = improvement + no change (two unknowns);
    over the units 11 − ? and 16 − ? with both units hidden in the column; the other side
    gives nothing (no both-sides class is shown anywhere). Checked generally: every sum
    (a row's classes to its classified, the units to the organisation, all ages to the age
    groups) holds no hidden cell, or at least two non-zero hidden cells."""
    masks = _masks()
    values = {
        A: {"active": (3, 7, 10), "inactive": (12, 8, 10)},
        B: {"active": (8, 6, 6), "inactive": (12, 8, 10)},
        ORG: {"active": (11, 13, 16), "inactive": (24, 16, 20)},
    }

    def hidden_nonzero(cells: list[tuple[tuple[str, int], str, str]]) -> int:
        count = 0
        for scope, side, column in cells:
            if column in _hidden(masks, scope, side):
                count += values[scope][side][CLASSES.index(column)] > 0
        return count

    sums: list[list[tuple[tuple[str, int], str, str]]] = []
    for scope in (A, B, ORG):
        for side in ("active", "inactive"):
            sums.append([(scope, side, c) for c in CLASSES])  # a row: classes → classified
    for side in ("active", "inactive"):
        for column in CLASSES:
            sums.append([(ORG, side, column), (A, side, column), (B, side, column)])
    for cells in sums:
        assert hidden_nonzero(cells) != 1, cells
