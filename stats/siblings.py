"""Anonymisation across selections: a scope is suppressed together with its siblings.

Each anonymised selection (scope × fixed period × age group) used to be suppressed on its
own, so two *different* selections could be subtracted: "all ages" minus "adults" minus
"children" gave the youth group, the organisation minus one unit gave the other unit. Here
every unit and organisation figure of one period is suppressed in ONE grid, so that each
published figure has the same hidden/shown state in every view and no hidden cell can be
recovered as a total minus shown parts (docs/datapolicy.md, "Anonymisation").

The grid of an organisation and period has one row per *node* × age group (× side or
session number or month):

* nodes: the organisation, each unit, and for each node with child units a *direct*
  node: the episodes attached to that node itself (a parent unit is the sum of its child
  units plus its own episodes; the organisation is the sum of its top-level units). A
  direct node is never shown, but it can be derived (parent − children), so it is
  suppressed like any other cell; its counts are the parent's minus the children's.
* sibling sets (sums): {parent, its children, its direct node} for every parent, per age
  group and side; {all, adult, youth, child} for every node and side (partition level
  ``age``; ``Episode.age_group`` is one of the three, so "all" is exactly their sum);
  active + inactive (partition level ``active``).
* a node of 1 or 2 distinct therapists (in the selection: node, period, age group) is
  hidden as a whole (rule of the minimum number of therapists) and counts as a hidden
  cell for its sibling sets.

Pure pandas/numpy, no Django: :func:`family_masks` takes the figures of every node and age
group (the snapshots' payloads) and returns per node and age group what to hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import pandas as pd

from .anonymise import (
    MIN_THERAPISTS_FOR_SCOPE,
    OUTCOME_FAMILIES,
    REASON_COMPLEMENTARY,
    REASON_FEW_THERAPISTS,
    STAT_FAMILIES,
    reason_small,
    suppress_table,
)
from .engine import DATA_QUALITY_COLUMNS, STATISTICS_COLUMNS

AGES: tuple[str, ...] = ("all", "adult", "youth", "child")
SIDES: tuple[str, ...] = ("active", "inactive")
# The "active" level's value of the both-sides total row of the table grid, the
# "month" level's value of the all-months total row of the implementation grid, and the
# "session_number" level's value of the all-session-numbers total row of the trajectory
# grid (session numbers start at 1; an int keeps the level's dtype).
BOTH = "both"
ALL_MONTHS = "total"
# The families of the statistics table whose both-sides total a reader can work out
# elsewhere: the sessions (the implementation months), and the client counts, which the
# trajectory's n per session number can equal (n at session 1 = the clients with an ORS at
# the start where every episode starts with one; at session 2 = those with an ORS change
# where every session has an ORS). Not the outcome classes: no view, export or API answer
# shows a class of both sides together, nor anything that adds up to one
# (tests/stats/test_cross_side_totals.py checks that none shows a both-sides figure), so
# a hidden class needs no complement on the other side — it had one before, and the
# chains that followed hid most units' outcome tables (docs/datapolicy.md, rule 2).
BOTH_SIDES_READABLE: tuple[str, ...] = tuple(
    f for f in (*STAT_FAMILIES, "episodes") if f not in OUTCOME_FAMILIES
)
ALL_SESSIONS = 0
# The trajectory's scales: n at a session number, the implementation month's sessions
# with that score, the statistics table's family of the episodes with that score at all.
SCALES: dict[str, tuple[str, str]] = {
    "n_ors": ("sessions_with_ors", "ors_start"),
    "n_srs": ("sessions_with_srs", "srs_start"),
}

ScopeKey = tuple[str, int]  # (scope kind, scope id) of a published node
PartKey = tuple[str, int, str]  # (scope kind, scope id, age group)

# Columns of the statistics table that are client/session counts (additive over units
# and age groups); the means are not needed to decide what to hide.
TABLE_COUNTS: tuple[str, ...] = (
    "episodes",
    "sessions",
    *sorted({ncol for ncol, _members in STAT_FAMILIES.values()}),
)
TRAJECTORY_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "n_ors": ("n_ors", ("n_ors",)),
    "n_srs": ("n_srs", ("n_srs",)),
}
# ETR: the ended episodes that can be judged, and within them those that reached the
# target and those that dropped out — client counts each, like the outcome classes: a
# count of 1 … k−1 is hidden (with its share), and complemented across the siblings.
ETR_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ended_evaluable": ("ended_evaluable", ("ended_evaluable",)),
    "reaching_target": ("reaching_target", ("reaching_target", "reaching_target_share")),
    "dropout": ("dropout", ("dropout", "dropout_share")),
    "n_relative_effect": ("n_relative_effect", ("n_relative_effect", "relative_effect_size")),
}
ETR_COUNTS: tuple[str, ...] = ("ended_evaluable", "reaching_target", "dropout", "n_relative_effect")
IMPLEMENTATION_COUNTS: tuple[str, ...] = (
    "episodes",
    "sessions",
    "sessions_with_ors",
    "sessions_with_srs",
    "sessions_with_both",
)
QUALITY_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    c: (c, (c,)) for c in DATA_QUALITY_COLUMNS
}


def node_name(kind: str, scope_id: int) -> str:
    return f"{kind}:{scope_id}"


class Tree:
    """The nodes of one family: the root (organisation or platform), the units, and the
    direct node of every node with children."""

    def __init__(self, root: ScopeKey, unit_parent: Mapping[int, int | None]) -> None:
        self.root = root
        self.published: list[ScopeKey] = [root] + [("unit", int(u)) for u in unit_parent]
        children: dict[ScopeKey, list[ScopeKey]] = {}
        for uid, pid in unit_parent.items():
            parent: ScopeKey = root if pid is None else ("unit", int(pid))
            children.setdefault(parent, []).append(("unit", int(uid)))
        self.children = children
        # (parent, [members incl. the direct node]) per node with children
        self.sums: list[tuple[str, list[str]]] = [
            (
                node_name(*parent),
                [node_name(*c) for c in kids] + [self.direct(parent)],
            )
            for parent, kids in children.items()
        ]

    @staticmethod
    def direct(parent: ScopeKey) -> str:
        return "direct:" + node_name(*parent)

    def nodes(self) -> list[str]:
        return [node_name(*n) for n in self.published] + [self.direct(p) for p in self.children]


def _sets_for(index: pd.MultiIndex, tree: Tree) -> tuple[np.ndarray, np.ndarray]:
    """Sibling-set pairs (set id, row position) of the node sums, per value of the other
    index levels (age, side …)."""
    frame = index.to_frame(index=False)
    frame["_pos"] = np.arange(len(frame))
    others = [c for c in frame.columns if c not in ("node", "_pos")]
    links = pd.DataFrame(
        [(fam, total) for fam, (total, _m) in enumerate(tree.sums)]
        + [(fam, m) for fam, (_t, members) in enumerate(tree.sums) for m in members],
        columns=["_fam", "node"],
    )
    if links.empty:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = frame.merge(links, on="node", how="inner")
    keys = pd.MultiIndex.from_frame(pairs[["_fam", *others]])
    set_ids, _ = pd.factorize(keys, use_na_sentinel=False)
    return np.asarray(set_ids, dtype=np.int64), pairs["_pos"].to_numpy(dtype=np.int64)


def _with_direct(grid: pd.DataFrame, tree: Tree, counts: Iterable[str]) -> pd.DataFrame:
    """Add the direct nodes' rows: parent − children, for the count columns (clipped at
    0: snapshots of one period are consistent, the clip only guards a race)."""
    counts = [c for c in counts if c in grid.columns]
    if not tree.sums:
        return grid
    as_total = {total: members[-1] for total, members in tree.sums}
    as_child = {m: members[-1] for _t, members in tree.sums for m in members[:-1]}
    flat = grid[counts].reset_index()
    node = flat["node"]
    plus = flat.loc[node.isin(list(as_total))].assign(node=lambda f: f["node"].map(as_total))
    minus = flat.loc[node.isin(list(as_child))].assign(node=lambda f: f["node"].map(as_child))
    minus[counts] = -minus[counts]
    levels = list(grid.index.names)
    direct = pd.concat([plus, minus]).groupby(levels, sort=False)[counts].sum().clip(lower=0)
    return pd.concat([grid, direct])


def _full_index(nodes: list[str], extra: dict[str, list[Any]]) -> pd.MultiIndex:
    return pd.MultiIndex.from_product(
        [nodes, list(AGES), *extra.values()], names=["node", "age", *extra.keys()]
    )


def _prehidden(index: pd.MultiIndex, few: set[tuple[str, str]]) -> np.ndarray:
    node = index.get_level_values("node")
    age = index.get_level_values("age")
    return np.fromiter(((n, a) in few for n, a in zip(node, age, strict=True)), bool, len(node))


def _forced(
    index: pd.MultiIndex,
    columns: list[str],
    held: Mapping[tuple[str, str], set[str]],
    grid: str,
) -> pd.DataFrame | None:
    """The cells of one grid that an earlier publication holds back (tokens of
    stats.publications.change_tokens): the statistics table per side and family
    ("active:ors_change", "values:…" = both sides), the trajectory per scale and session
    number ("traj:ors:3"), ETR and data-quality families ("etr:dropout"), implementation
    months ("impl:2026-02")."""
    if not held:
        return None
    frame = index.to_frame(index=False)
    out = np.zeros((len(frame), len(columns)), dtype=bool)
    col_of = {c: i for i, c in enumerate(columns)}
    where: dict[tuple[str, str], list[int]] = {}
    for i, (n, a) in enumerate(zip(frame["node"], frame["age"], strict=True)):
        where.setdefault((n, a), []).append(i)
    for key, tokens in held.items():
        for i in where.get(key, []):
            row = frame.iloc[i]
            if grid == "table" and row["active"] == BOTH:
                continue  # a total row, never shown: held tokens name the shown sides
            if grid == "trajectory" and int(row["session_number"]) == ALL_SESSIONS:
                continue  # likewise the trajectory's all-session-numbers total
            for token in tokens:
                kind, _sep, rest = token.partition(":")
                col: str | None = None
                if grid == "table" and kind in ("active", "inactive", "values"):
                    if kind == "values" or (kind == "active") == bool(row["active"]):
                        col = rest
                elif grid == "trajectory" and kind == "traj":
                    scale, _sep, number = rest.partition(":")
                    # the last token ("64") stands for every session number from there on
                    if int(number) == min(int(row["session_number"]), 64):
                        col = f"n_{scale}"
                elif grid == kind and grid in ("etr", "quality"):
                    col = rest
                elif (
                    grid == "implementation"
                    and kind == "impl"
                    and str(row["month"]).startswith(rest)
                ):
                    col = "episodes"
                if col in col_of:
                    out[i, col_of[col]] = True
    return pd.DataFrame(out, index=index, columns=columns)


def _add_totals(
    grid: pd.DataFrame, level: str, total: Any, counts: Iterable[str]
) -> tuple[pd.DataFrame, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Add, per value of the other index levels, a total row over ``level`` (its value
    ``total``; the count columns summed, the rest NaN), and the sets {total, its rows}.
    Returns (grid, bool per row: a total row, (set ids, row positions))."""
    counts = [c for c in counts if c in grid.columns]
    others = [n for n in grid.index.names if n != level]
    summed = grid[counts].groupby(level=others, sort=False).sum()
    summed[level] = total
    summed = summed.set_index(level, append=True).reorder_levels(list(grid.index.names))
    summed = summed.reindex(columns=grid.columns)
    out = pd.concat([grid, summed])
    is_total = np.r_[np.zeros(len(grid), dtype=bool), np.ones(len(summed), dtype=bool)]
    keys = pd.MultiIndex.from_arrays([out.index.get_level_values(n) for n in others])
    set_ids, _ = pd.factorize(keys, use_na_sentinel=False)
    rows = np.arange(len(out), dtype=np.int64)
    return out, is_total, (np.asarray(set_ids, dtype=np.int64), rows)


def _month_to_hide(
    grid: pd.DataFrame, hidden: Mapping[tuple, Mapping[str, str]], node: str, age: str, column: str
) -> tuple | None:
    """The implementation month (grid row) to hide so that the months' ``column``
    (sessions with an ORS, or an SRS) of (node, age) cannot be added up: None when a
    month with such sessions is hidden already (or there is none), else the month with
    the fewest such sessions (the first on ties)."""
    if column not in grid.columns:
        return None
    rows = grid.xs((node, age), level=("node", "age"), drop_level=False)
    best: tuple | None = None
    fewest = np.inf
    for key, value in zip(rows.index.tolist(), rows[column].tolist(), strict=True):
        if key[2] == ALL_MONTHS or not value > 0:
            continue
        if (hidden.get(key) or {}).get("episodes"):
            return None
        if value < fewest:
            best, fewest = key, value
    return best


def _reasons_by(reasons: pd.DataFrame) -> dict[tuple, dict[str, str]]:
    """{index tuple: {column: reason}} for rows with at least one hidden cell."""
    values = reasons.to_numpy(dtype=object)
    hit = pd.notna(values)  # reasons are strings; shown cells None/NaN
    out: dict[tuple, dict[str, str]] = {}
    index = reasons.index.tolist()
    columns = [str(c) for c in reasons.columns]
    rows, cols = np.nonzero(hit)
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        out.setdefault(index[i], {})[columns[j]] = str(values[i, j])
    return out


def family_masks(
    parts: Mapping[PartKey, Mapping[str, Any]],
    tree: Tree,
    *,
    k: int,
    held: Mapping[tuple[str, str], set[str]] | None = None,
    held_reason: str = "",
) -> dict[PartKey, dict[str, Any]]:
    """What to hide in every published node × age group of one family (one period).

    ``parts[(kind, scope_id, age)]`` is the node's snapshot payload (``table``,
    ``trajectory``, ``etr``, ``implementation``, ``quality``, ``n_therapists``, and for
    units ``n_therapists_direct``); a missing part counts as empty. Returns per part:
    ``hidden_scope`` (fewer than 3 therapists: nothing is shown), ``table`` (side → column
    → reason), ``trajectory`` (session number → {"n_ors"/"n_srs": reason}), ``etr``
    (column → reason), ``implementation`` (month → reason), ``quality`` (column →
    reason).

    ``held``: (node name, age) → the figures an earlier publication holds back
    (stats.publications.held_between tokens); those cells are hidden with
    ``held_reason`` and count as hidden cells for the complements; "spread" hides the
    per-therapist spread (``spread_hidden``).
    """
    nodes = tree.nodes()
    published = {node_name(*n): n for n in tree.published}

    def part(name: str, age: str) -> Mapping[str, Any]:
        kind, sid = published[name]
        return parts.get((kind, sid, age)) or {}

    # Which node × age rows are hidden as a whole (fewer than 3 therapists).
    few: set[tuple[str, str]] = set()
    for name in published:
        for age in AGES:
            n = int(part(name, age).get("n_therapists") or 0)
            if 0 < n < MIN_THERAPISTS_FOR_SCOPE:
                few.add((name, age))
    for parent in tree.children:
        pname = node_name(*parent)
        for age in AGES:
            p = part(pname, age) if pname in published else {}
            direct_n = p.get("n_therapists_direct")
            # Unknown (a snapshot from before this field): assume few, so that a non-empty
            # direct node is protected rather than exposed.
            if parent[0] == "unit" and (
                direct_n is None or int(direct_n) < MIN_THERAPISTS_FOR_SCOPE
            ):
                few.add((tree.direct(parent), age))

    masks: dict[PartKey, dict[str, Any]] = {}
    for name, (kind, sid) in published.items():
        for age in AGES:
            masks[(kind, sid, age)] = {
                "hidden_scope": (name, age) in few,
                "spread_hidden": "spread" in (held or {}).get((name, age), set()),
                "table": {s: {} for s in SIDES},
                "trajectory": {},
                "etr": {},
                "implementation": {},
                "quality": {},
            }

    def run(
        rows: dict[tuple, dict[str, Any]],
        extra: dict[str, list[Any]],
        columns: list[str],
        counts: Iterable[str],
        grid_name: str,
        grid_held: Mapping[tuple[str, str], set[str]] | None = None,
        total: tuple[str, Any] | None = None,
        force_totals: Mapping[str, AbstractSet[tuple[str, str]]] | None = None,
        force_cells: Mapping[str, AbstractSet[tuple]] | None = None,
        **kwargs: Any,
    ) -> tuple[dict[tuple, dict[str, str]], pd.DataFrame]:
        """Build the grid (missing rows = zeros), add the direct nodes, suppress.

        ``total`` = (level, value): add a total row over that level per node and age (and
        the other levels), a member of the set {total, its rows} only (suppress_table's
        ``totals``, rule 6). ``force_totals``: family → the (node, age) whose total row
        is hidden from the start in that family (the same total hidden in another grid);
        ``force_cells``: family → the grid rows (index tuples) hidden from the start in
        that family (a figure of another grid that is the same count, hidden there).
        Cells hidden so read as a complement (or small, for their size), never as held.
        Returns the hidden cells ({index: {column: reason}}) and the grid's counts."""
        published_index = _full_index(list(published), extra)
        grid = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
        if len(grid):
            grid.index = pd.MultiIndex.from_tuples(grid.index, names=published_index.names)
        grid = grid.reindex(published_index)
        count_cols = [c for c in counts if c in columns]
        grid[count_cols] = grid[count_cols].fillna(0).astype(float)
        grid = _with_direct(grid, tree, count_cols).reindex(_full_index(nodes, extra))
        grid[count_cols] = grid[count_cols].fillna(0)
        grid = grid.astype(float)
        set_ids, set_rows = _sets_for(grid.index, tree)
        is_total = np.zeros(len(grid), dtype=bool)
        if total is not None:
            # SECURITY: a total over the level (both sides; all months; all session
            # numbers) is readable elsewhere; as a member of its set it is the complement
            # of a lone hidden cell whose siblings are all 0 (docs/datapolicy.md,
            # Anonymisation rule 2).
            grid, is_total, (t_ids, t_rows) = _add_totals(grid, total[0], total[1], count_cols)
            if total[0] == "session_number":
                # On ties the complement is the first candidate of the set: here the
                # latest session number (then the total), not session 1, whose n is
                # coupled with the table's start counts below.
                number = grid.index.get_level_values("session_number").to_numpy()[t_rows]
                order = np.lexsort((-number, is_total[t_rows], t_ids))
                t_ids, t_rows = t_ids[order], t_rows[order]
            offset = int(set_ids.max()) + 1 if len(set_ids) else 0
            set_ids = np.r_[set_ids, t_ids + offset]
            set_rows = np.r_[set_rows, t_rows]
        # A prehidden row without clients (e.g. an empty direct node) protects nothing:
        # the complementary rule counts only non-zero hidden cells.
        families = kwargs.get("families")
        count_col = kwargs.get("count_col")
        family_names = list(families) if families is not None else [*STAT_FAMILIES, "episodes"]
        if count_col:
            family_names.append(count_col)
        family_names = list(dict.fromkeys(family_names))
        forced = _forced(
            grid.index,
            family_names,
            (held or {}) if grid_held is None else grid_held,
            grid_name,
        )
        held_m = (
            np.zeros((len(grid), len(family_names)), dtype=bool)
            if forced is None
            else forced.to_numpy(dtype=bool)
        )
        coupled = np.zeros_like(held_m)
        node = grid.index.get_level_values("node")
        age = grid.index.get_level_values("age")
        for fam, where in (force_totals or {}).items():
            if fam in family_names and where:
                coupled[:, family_names.index(fam)] |= is_total & np.fromiter(
                    ((n, a) in where for n, a in zip(node, age, strict=True)), bool, len(grid)
                )
        if force_cells:
            keys = grid.index.tolist()
            for fam, cells in force_cells.items():
                if fam in family_names and cells:
                    coupled[:, family_names.index(fam)] |= np.fromiter(
                        (key in cells for key in keys), bool, len(grid)
                    )
        if coupled.any():
            forced = pd.DataFrame(held_m | coupled, index=grid.index, columns=family_names)
        _out, reasons = suppress_table(
            grid,
            k=k,
            sibling_sets=(set_ids, set_rows),
            prehidden=_prehidden(grid.index, few),
            forced=forced,
            forced_reason=held_reason,
            totals=is_total,
            **kwargs,
        )
        # A cell hidden because the same count is hidden in another grid reads like any
        # hidden cell of this one: small for its own size, else a complement (a trajectory
        # point hidden so keeps its median, like every complement).
        only_coupled = coupled & ~held_m & ~_prehidden(grid.index, few)[:, None]
        if only_coupled.any():
            stat_fams = STAT_FAMILIES if families is None else families
            claimed = {
                c for name, (_n, members) in stat_fams.items() if name != count_col for c in members
            }
            for j, fam in enumerate(family_names):
                hit = only_coupled[:, j]
                if not hit.any():
                    continue
                if fam == count_col:
                    n_col, members = fam, [c for c in grid.columns if c not in claimed]
                else:
                    n_col, members = stat_fams[fam][0], list(stat_fams[fam][1])
                n = grid[n_col].to_numpy(dtype=float)
                why = np.where((n > 0) & (n < k), reason_small(k), REASON_COMPLEMENTARY)
                for c in members:
                    if c in reasons.columns:
                        reasons.loc[hit, c] = why[hit]
        return _reasons_by(reasons), grid

    # 1. The statistics table (node × age × side), 4. the implementation per month (the
    #    month's client count decides) and 2. the trajectory's n per session number,
    #    suppressed together. Three totals that no grid shows but a reader can work out:
    #    * the sessions of both sides = the sessions of all months (the page's two sides;
    #      the export's months);
    #    * the sessions with an ORS (SRS) of all months = the trajectory's n_ors (n_srs)
    #      over all session numbers (each session has one month and one session number);
    #    * the trajectory's n_ors (n_srs) at session 1 ≤ the episodes with an ORS (SRS)
    #      of both sides, equal when every episode starts with one (as FIT asks).
    #    Each grid gets its totals as rows (both sides; all months; all session numbers)
    #    in a set with their parts, and a total hidden in one grid is hidden in the other
    #    (the n at session 1 and the both-sides start count alike, as if equal), until
    #    nothing changes.
    table_rows: dict[tuple, dict[str, Any]] = {}
    for name in published:
        for age in AGES:
            t = part(name, age).get("table") or {}
            for side in SIDES:
                if t.get(side):
                    table_rows[(name, age, side == "active")] = {
                        c: t[side].get(c) for c in STATISTICS_COLUMNS
                    }
    impl_rows: dict[tuple, dict[str, Any]] = {}
    months: set[str] = set()
    # A month of 1 or 2 active therapists is not shown (rule 9): a hidden cell here, so
    # that its complements are chosen (the organisation minus a sibling would give it).
    impl_held: dict[tuple[str, str], set[str]] = {k: set(v) for k, v in (held or {}).items()}
    for name in published:
        for age in AGES:
            for r in part(name, age).get("implementation") or []:
                m = str(r["month"])
                months.add(m)
                impl_rows[(name, age, m)] = {c: r.get(c) for c in IMPLEMENTATION_COUNTS}
                if 0 < int(r.get("active_therapists") or 0) < MIN_THERAPISTS_FOR_SCOPE:
                    impl_held.setdefault((name, age), set()).add(f"impl:{m[:7]}")
    traj_rows: dict[tuple, dict[str, Any]] = {}
    sessions: set[int] = set()
    for name in published:
        for age in AGES:
            for p in part(name, age).get("trajectory") or []:
                sn = int(p["session_number"])
                sessions.add(sn)
                traj_rows[(name, age, sn)] = {
                    "n_ors": p.get("n_ors") or 0,
                    "n_srs": p.get("n_srs") or 0,
                }
    # (node, age) whose both-sides / all-months total of sessions is hidden
    both_hidden: set[tuple[str, str]] = set()
    # scale → (node, age) whose both-sides start count (= n at session 1) is hidden
    start_hidden: dict[str, set[tuple[str, str]]] = {s: set() for s in SCALES}
    # the months hidden so that a hidden all-session-numbers total cannot be read
    months_forced: set[tuple] = set()
    impl_hidden: dict[tuple, dict[str, str]] = {}
    traj_hidden: dict[tuple, dict[str, str]] = {}
    # Each round that goes on hides at least one more total or month: this ends.
    for _round in range(4 * len(nodes) * len(AGES) * (len(months) + 1) + 2):
        grown = False
        hidden, _grid = run(
            table_rows,
            {"active": [True, False]},
            STATISTICS_COLUMNS,
            TABLE_COUNTS,
            "table",
            total=("active", BOTH),
            force_totals={
                "episodes": both_hidden,
                **{SCALES[s][1]: start_hidden[s] for s in SCALES},
            },
            count_col="episodes",
            partition_levels=["age"],
            total_families=BOTH_SIDES_READABLE,
            sums={"episodes": ["sessions"]},
        )
        for (n, a, side), cols in hidden.items():
            if side == BOTH:
                if "sessions" in cols and (n, a) not in both_hidden:
                    both_hidden.add((n, a))
                    grown = True
                for s in SCALES:
                    if f"n_{SCALES[s][1]}" in cols and (n, a) not in start_hidden[s]:
                        start_hidden[s].add((n, a))
                        grown = True
        impl_total_hidden: set[tuple[str, str]] = set()
        impl_grid: pd.DataFrame | None = None
        if months:
            impl_hidden, impl_grid = run(
                impl_rows,
                {"month": sorted(months)},
                list(IMPLEMENTATION_COUNTS),
                IMPLEMENTATION_COUNTS,
                "implementation",
                impl_held,
                total=("month", ALL_MONTHS),
                force_totals={"episodes": both_hidden},
                force_cells={"episodes": months_forced},
                count_col="episodes",
                partition_levels=["age"],
                families={},
                # SECURITY: a month is one row of several sums; a partner chosen by its
                # clients may hold 0 sessions with an ORS (rule 7 of stats.anonymise)
                sums={"episodes": [c for c in IMPLEMENTATION_COUNTS if c != "episodes"]},
            )
            impl_total_hidden = {
                (n, a)
                for (n, a, month), cols in impl_hidden.items()
                if month == ALL_MONTHS and "sessions" in cols
            }
            if not impl_total_hidden <= both_hidden:
                both_hidden |= impl_total_hidden
                grown = True
        if sessions:
            traj_hidden, _grid = run(
                traj_rows,
                {"session_number": sorted(sessions)},
                ["n_ors", "n_srs"],
                ["n_ors", "n_srs"],
                "trajectory",
                total=("session_number", ALL_SESSIONS),
                force_totals=dict.fromkeys(SCALES, impl_total_hidden),
                force_cells={s: {(n, a, 1) for n, a in start_hidden[s]} for s in SCALES},
                count_col=None,
                partition_levels=["age"],
                families=TRAJECTORY_FAMILIES,
            )
            for (n, a, sn), cols in traj_hidden.items():
                for s, (with_scale, _start) in SCALES.items():
                    if s not in cols:
                        continue
                    if sn == 1 and (n, a) not in start_hidden[s]:
                        start_hidden[s].add((n, a))
                        grown = True
                    if sn == ALL_SESSIONS:
                        # SECURITY: the months' sessions with that score add up to this
                        # total: keep a month with such sessions hidden (the smallest),
                        # else the shown months would give the total back.
                        month = (
                            None
                            if impl_grid is None
                            else _month_to_hide(impl_grid, impl_hidden, n, a, with_scale)
                        )
                        if month is not None and month not in months_forced:
                            months_forced.add(month)
                            grown = True
        if not grown:
            break
    for (name, age, active), cols in hidden.items():
        if name in published and active != BOTH:
            kind, sid = published[name]
            masks[(kind, sid, age)]["table"]["active" if active else "inactive"] = cols
    for (name, age, month), cols in impl_hidden.items():
        if name in published and month != ALL_MONTHS and cols.get("episodes"):
            kind, sid = published[name]
            masks[(kind, sid, age)]["implementation"][str(month)] = cols["episodes"]
    # (Medians cannot be subtracted; the n of a point can: a point hidden as a
    # complement keeps its median, loses its n.)
    for (name, age, sn), cols in traj_hidden.items():
        if name in published and int(sn) != ALL_SESSIONS:
            kind, sid = published[name]
            masks[(kind, sid, age)]["trajectory"][int(sn)] = cols

    # 3. ETR counts (ended episodes that can be judged, episodes with a relative effect).
    etr_cols = [c for fam in ETR_FAMILIES.values() for c in fam[1]]
    etr_rows: dict[tuple, dict[str, Any]] = {}
    for name in published:
        for age in AGES:
            e = part(name, age).get("etr") or {}
            if e:
                etr_rows[(name, age)] = {c: e.get(c) for c in etr_cols}
    if etr_rows:
        hidden, _grid = run(
            etr_rows,
            {},
            etr_cols,
            ETR_COUNTS,
            "etr",
            count_col=None,
            partition_levels=["age"],
            families=ETR_FAMILIES,
        )
        for (name, age), cols in hidden.items():
            if name in published:
                kind, sid = published[name]
                masks[(kind, sid, age)]["etr"] = cols

    # 5. Data-quality counts (each its own client count).
    quality_rows: dict[tuple, dict[str, Any]] = {}
    for name in published:
        for age in AGES:
            q = part(name, age).get("quality") or {}
            if q:
                quality_rows[(name, age)] = {c: q.get(c) for c in DATA_QUALITY_COLUMNS}
    if quality_rows:
        hidden, _grid = run(
            quality_rows,
            {},
            list(DATA_QUALITY_COLUMNS),
            DATA_QUALITY_COLUMNS,
            "quality",
            count_col=None,
            partition_levels=["age"],
            families=QUALITY_FAMILIES,
        )
        for (name, age), cols in hidden.items():
            if name in published:
                kind, sid = published[name]
                masks[(kind, sid, age)]["quality"] = cols
    return masks


__all__ = ["AGES", "REASON_FEW_THERAPISTS", "Tree", "family_masks", "node_name"]
