"""Small-cell suppression for anonymised views (datapolicy.md, "Anonymisation").

Pure pandas, no Django. The rules (documented in docs/statistics.md):

1. **Primary suppression.** Every figure belongs to a *family* with the number of clients
   behind it (e.g. ``ors_change``, ``effect_size_d`` and ``effect_size_pct`` rest on the
   ``n_ors_change`` episodes). A family whose client count is 1 … k−1 is suppressed. A
   count of 0 is shown (there is nobody to disclose; its means are NaN anyway). When the
   row's ``count_col`` (episodes) is hidden — 1 … k−1, or as a complement (rule 3) — the
   whole row is suppressed.
2. **Outcome counts.** Each outcome-class count (reliable improvement, deterioration, no
   change, clinically significant) is itself a count of clients: 1 … k−1 is suppressed.
   The three classes sum to ``n_classified``: if exactly one class is hidden it could be
   recovered by subtraction, so another non-zero class is hidden too — "no reliable
   change" where it can be, else the smallest — until the
   hidden classes together hold at least k clients; if ``n_classified`` is hidden all
   classes are hidden. When no shown class is non-zero (the others are 0), no class can
   protect the hidden one, so ``n_classified`` is hidden (and with it every class).
3. **Complementary suppression across rows.** Rows that differ only in a *partition level*
   (``active``: active + inactive = all; ``unit_id``: units sum to the organisation …) are
   parts of a total that may be shown elsewhere. Within each such sibling group, for each
   family, while a hidden set exists that holds fewer than two non-zero cells or fewer than
   k clients in total, the smallest visible non-zero sibling is hidden as well.
4. ``effect_size_pct`` = change / start: hidden whenever ``ors_start`` is hidden (else the
   start could be recovered from change and percentage).
5. **Explicit sibling sets** (``sibling_sets``): sums that are not "rows differing in one
   level" (a parent unit = its child units + its own episodes; a unit is a part of one
   set and the total of another) get rule 3 within each set. **Prehidden rows**
   (``prehidden``: e.g. a scope of fewer than 3 therapists) are hidden entirely and count
   as hidden cells for rules 3 and 5. stats.siblings builds both for a whole organisation.
6. **Totals as members** (``totals``). Rules 3 and 5 pick only non-zero shown cells as
   complements, so a hidden cell whose siblings are all 0 has no partner, and the set's
   total minus the zeros gives it back wherever that total can be read. A set whose total
   can be read but is no row of the table gets it as a *total row*: a member of that set
   only, never shown as a row, so it is no small cell itself and has no row rules. A total
   is never smaller than a non-zero part, so it is picked only where no other candidate is
   left — fail closed: the total is hidden, and the caller makes it unreadable (review
   round 11: the sessions of both sides are those of all months, stats.siblings).

7. **Every published column** (``sums``). A family may publish further columns that add
   up like its client count (an implementation month: sessions, sessions with an ORS,
   with an SRS). Rule 3 chooses a partner by the client count, which may be 0 in such a
   column (a month of clients without any ORS): the hidden set then holds one non-zero
   cell of that column, and the total minus the shown cells gives it back. So, per such
   column, a set whose hidden cells hold exactly one non-zero cell gets the smallest
   shown cell non-zero in that column hidden as well (the total, rule 6, if nothing else
   is left) — checked where rules 2–6 have nothing left to do, so that it never picks a
   partner before rule 3 has picked its own.

Rules 2–7 are applied until nothing changes (a handful of vectorised rounds).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "MIN_K",
    "REASON_COMPLEMENTARY",
    "REASON_FEW_THERAPISTS",
    "may_show_therapist_spread",
    "reason_small",
    "spread_min_therapists",
    "suppress_table",
    "suppress_trajectory",
]

MIN_K = 3  # datapolicy.md: the threshold k is an organisation setting, minimum 3
MIN_THERAPISTS_FOR_SPREAD = 3
# The spread between therapists is shown (as median and quartiles only) with at least
# max(5, k) therapists with values: with 3, min/median/max would be the three values.
MIN_THERAPISTS_FOR_SPREAD_SUMMARY = 5
# datapolicy.md: an aggregated scope (unit, organisation) of fewer therapists is not shown
# to roles without identity rights (a colleague's figures would follow from one's own).
MIN_THERAPISTS_FOR_SCOPE = 3
REASON_COMPLEMENTARY = (
    "hidden so that a suppressed neighbouring figure cannot be recovered by subtraction"
)
REASON_FEW_THERAPISTS = (
    f"fewer than {MIN_THERAPISTS_FOR_SCOPE} therapists in this selection: "
    "one therapist's figures could be derived"
)

# family name → (client-count column, member columns). The count_col family collects every
# column of the table that belongs to no other family.
STAT_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "srs_start": ("n_srs_start", ("srs_start", "n_srs_start")),
    "ors_start": ("n_ors_start", ("ors_start", "n_ors_start")),
    "srs_change": ("n_srs_change", ("srs_change", "n_srs_change")),
    "ors_change": (
        "n_ors_change",
        ("ors_change", "effect_size_d", "effect_size_pct", "n_ors_change"),
    ),
    "n_classified": ("n_classified", ("n_classified",)),
    "reliable_improvement": ("reliable_improvement", ("reliable_improvement",)),
    "reliable_deterioration": ("reliable_deterioration", ("reliable_deterioration",)),
    "no_reliable_change": ("no_reliable_change", ("no_reliable_change",)),
    "clinically_significant": ("clinically_significant", ("clinically_significant",)),
}
OUTCOME_PARTS: tuple[str, ...] = (
    "reliable_improvement",
    "reliable_deterioration",
    "no_reliable_change",
)
OUTCOME_FAMILIES: tuple[str, ...] = (*OUTCOME_PARTS, "clinically_significant")
# Rule 2 hides this class as the complement of a hidden class where it can: the share
# without reliable change is the class a leader needs least (improvement and deterioration
# are what the outcome table is read for), and one column for every row keeps the
# complements of sibling rows (units, age groups) in the same column, where they protect
# each other instead of each needing a partner of its own.
PREFERRED_COMPLEMENT = "no_reliable_change"
DEFAULT_PARTITION_LEVELS: tuple[str, ...] = (
    "active",
    "org_id",
    "unit_id",
    "therapist_id",
    "age_group",
)


def reason_small(k: int) -> str:
    """The reason text of a primary suppression (the UI shows "< k")."""
    return f"fewer than {k} clients"


def _check_k(k: int) -> None:
    if k < MIN_K:
        raise ValueError(f"small-cell threshold k must be at least {MIN_K}, got {k}")


def _complement_within_rows(
    hidden: np.ndarray, counts: np.ndarray, k: int, prefer: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One round of rule 2 over an (rows × parts) matrix: the extra cells to hide, and the
    rows whose total must be hidden (bool per row).

    A row whose hidden parts hold fewer than two non-zero cells or fewer than k clients
    gets its smallest shown non-zero part hidden as well; when no shown part is non-zero
    (the others are 0), no part can protect it — the shown total minus the shown zeros
    would give the hidden part back — so the row's total is hidden (which hides all its
    parts), as stats.publications.complement_parts does (review round 10).

    ``prefer``: the part (column) taken as the complement whenever it is a candidate, the
    smallest otherwise (:data:`PREFERRED_COMPLEMENT`)."""
    hidden_nonzero = (hidden & (counts > 0)).sum(axis=1)
    hidden_n = np.where(hidden, counts, 0.0).sum(axis=1)
    needs = (hidden_nonzero > 0) & ((hidden_nonzero < 2) | (hidden_n < k))
    cand_n = np.where(~hidden & (counts > 0), counts, np.inf)
    cost = cand_n.copy()
    if prefer is not None:
        cost[:, prefer] = np.where(np.isfinite(cand_n[:, prefer]), -1.0, np.inf)
    col = cost.argmin(axis=1)
    has_candidate = np.isfinite(cand_n.min(axis=1))
    rows = np.flatnonzero(needs & has_candidate)
    extra = np.zeros_like(hidden)
    extra[rows, col[rows]] = True
    return extra, needs & ~has_candidate


def _complement_sets(
    hidden: np.ndarray, counts: np.ndarray, set_ids: np.ndarray, rows: np.ndarray, k: int
) -> np.ndarray:
    """One round of rule 3 over explicit sibling sets (a row may be in several sets, e.g. a
    unit is a part of its parent's set and the total of its own children's set).

    ``set_ids[i]`` / ``rows[i]``: pair i says that row ``rows[i]`` is in set ``set_ids[i]``.
    Returns the rows to hide in addition (bool per row): in each set that holds a hidden
    non-zero cell but fewer than two of them or fewer than k clients hidden, the smallest
    visible non-zero member (the first one on ties; the next round re-checks). A set with
    no such member is left as it is: give it its total as a member (rule 6) wherever the
    total can be read.
    """
    extra = np.zeros(len(hidden), dtype=bool)
    if len(set_ids) == 0:
        return extra
    pn = counts[rows]
    ph = hidden[rows]
    n_sets = int(set_ids.max()) + 1
    hidden_n = np.bincount(set_ids, weights=np.where(ph, pn, 0.0), minlength=n_sets)
    hidden_nz = np.bincount(set_ids, weights=(ph & (pn > 0)).astype(float), minlength=n_sets)
    needs = (hidden_nz > 0) & ((hidden_nz < 2) | (hidden_n < k))
    cand = ~ph & (pn > 0)
    cand_n = np.where(cand, pn, np.inf)
    smallest = np.full(n_sets, np.inf)
    np.minimum.at(smallest, set_ids, cand_n)
    pick = np.flatnonzero(needs[set_ids] & cand & (cand_n == smallest[set_ids]))
    if len(pick):
        _, first = np.unique(set_ids[pick], return_index=True)
        extra[rows[pick[first]]] = True
    return extra


def suppress_table(
    table: pd.DataFrame,
    *,
    k: int,
    count_col: str | None = "episodes",
    partition_levels: Sequence[str] | None = None,
    sibling_sets: tuple[np.ndarray, np.ndarray] | None = None,
    prehidden: np.ndarray | None = None,
    prehidden_reason: str | np.ndarray = REASON_FEW_THERAPISTS,
    families: Mapping[str, tuple[str, Sequence[str]]] | None = None,
    forced: pd.DataFrame | None = None,
    forced_reason: str = "",
    totals: np.ndarray | None = None,
    total_families: Collection[str] | None = None,
    sums: Mapping[str, Sequence[str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small-cell suppression with complementary suppression (see module docstring).

    ``table`` is e.g. :func:`stats.engine.statistics_table` output (any table whose index
    levels identify the cells; its columns need not be the statistics columns — unknown
    columns belong to the ``count_col`` family). ``partition_levels``: the index levels whose
    siblings add up to a total that may be published (default: those of
    :data:`DEFAULT_PARTITION_LEVELS` present in the index).

    ``sibling_sets``: further sets of rows that add up (e.g. a parent unit, its child units
    and its own direct episodes), as pairs (set id, row position) — see
    :func:`_complement_sets`. ``prehidden``: rows hidden entirely before anything else
    (reason ``prehidden_reason``, one string or one per row; e.g. a scope of fewer than 3
    therapists); they count as
    hidden cells for the complementary rule like any other. ``families``: the families to
    use instead of :data:`STAT_FAMILIES` (name → (client-count column, member columns));
    with ``count_col=None`` there is no row-level family. ``forced``: cells (rows × family
    names, bool) hidden from the start for a reason of the caller's (``forced_reason``;
    e.g. held back against an earlier publication); they count as hidden cells too.

    ``totals`` (bool per row): rows that are the *total* of an explicit sibling set and
    are never shown as a row themselves, but whose value a reader can still work out
    elsewhere (e.g. both sides together, or all months together, stats.siblings). Rule 6:
    such a row is a member of the sets that ``sibling_sets`` names it in — so a hidden
    cell whose siblings are all 0 gets the total as its complement (the total minus the
    shown zeros would give it back) — and of nothing else: no primary suppression of its
    own, no partition level, no row rule (its families are not shown together). The
    caller makes the total unreadable where it is hidden. ``total_families``: the families
    whose total can be read (None: every family); the sets that hold a total row apply to
    those only — for the others the total is not readable anywhere, so their parts need
    no complement across that set (e.g. the outcome classes of both sides together).

    ``sums``: family → further columns of that family that add up like its client count
    (e.g. an implementation month's sessions, sessions with an ORS, with an SRS). Rule 7:
    in every set, a family's hidden cells never hold exactly one non-zero cell of such a
    column either — else the hidden cell whose partner is 0 in that column is the total
    minus the shown cells — so the smallest shown cell non-zero in that column is hidden
    as well (fail closed: the set's total, where nothing else is left).

    Returns ``(suppressed, reasons)``: ``suppressed`` has the same shape with hidden cells
    set to NaN (columns become float); ``reasons`` has the same shape, missing (None/NaN)
    for shown cells and a reason string for hidden ones.
    """
    _check_k(k)
    if count_col is not None and count_col not in table.columns:
        raise ValueError(f"count column {count_col!r} not in table")
    index_names = [n for n in table.index.names if n is not None]
    if partition_levels is None:
        partition_levels = [lvl for lvl in DEFAULT_PARTITION_LEVELS if lvl in index_names]
    partition_levels = list(partition_levels)

    fams: dict[str, tuple[str, list[str]]] = {}
    claimed: set[str] = set()
    for name, (ncol, members) in (STAT_FAMILIES if families is None else families).items():
        if ncol in table.columns and name != count_col:
            cols = [c for c in members if c in table.columns and c != count_col]
            fams[name] = (ncol, cols)
            claimed.update(cols)
    if count_col is not None:
        fams[count_col] = (count_col, [c for c in table.columns if c not in claimed])

    def count(name: str) -> pd.Series:
        return table[fams[name][0]].astype(float)

    small = pd.DataFrame(
        {name: (count(name) > 0) & (count(name) < k) for name in fams}, index=table.index
    )
    if count_col is not None:
        row_small = small[count_col].copy()
        for name in fams:
            small[name] |= row_small
    is_total = (
        np.zeros(len(table), dtype=bool) if totals is None else np.asarray(totals, dtype=bool)
    )
    if is_total.any():
        small.loc[is_total, :] = False  # a total is never shown as a row of its own
    pre = (
        np.zeros(len(table), dtype=bool)
        if prehidden is None
        else np.asarray(prehidden, dtype=bool).copy()
    )
    names = list(fams)
    col_of = {name: i for i, name in enumerate(names)}
    counts_m = np.column_stack([count(name).fillna(0).to_numpy(dtype=float) for name in names])
    forced_m = (
        np.zeros((len(table), len(names)), dtype=bool)
        if forced is None
        else forced.reindex(index=table.index, columns=names, fill_value=False)
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    hidden = small[names].to_numpy(dtype=bool) | pre[:, None] | forced_m

    # Every sum as (set id, row) pairs: the partition levels' groups (rows that differ
    # only in that level) and the explicit sibling sets; rule 3 is applied per set list.
    set_lists: list[tuple[np.ndarray, np.ndarray]] = []
    rows_all = np.flatnonzero(~is_total).astype(np.int64)  # totals: explicit sets only
    for level in partition_levels:
        others = [i for i, n in enumerate(table.index.names) if n != level]
        if others:
            keys = pd.MultiIndex.from_arrays(
                [table.index.get_level_values(i)[rows_all] for i in others]
            )
            codes, _ = pd.factorize(keys, use_na_sentinel=False)
            set_lists.append((np.asarray(codes, dtype=np.int64), rows_all))
        else:
            set_lists.append((np.zeros(len(rows_all), dtype=np.int64), rows_all))
    set_lists_for: list[frozenset[str] | None] = [None] * len(set_lists)
    if sibling_sets is not None:
        ids = np.asarray(sibling_sets[0], dtype=np.int64)
        rows = np.asarray(sibling_sets[1], dtype=np.int64)
        if total_families is None or not is_total.any() or len(ids) == 0:
            set_lists.append((ids, rows))
            set_lists_for.append(None)
        else:
            # The sets that hold a total row count only for the families whose total is
            # readable; the other sets count for every family.
            with_total = np.zeros(int(ids.max()) + 1, dtype=bool)
            with_total[ids[is_total[rows]]] = True
            pick = with_total[ids]
            set_lists += [(ids[~pick], rows[~pick]), (ids[pick], rows[pick])]
            set_lists_for += [None, frozenset(total_families)]

    # rule 7: per family, the further additive columns it publishes (their values)
    sum_values: dict[int, list[np.ndarray]] = {}
    for name, columns in (sums or {}).items():
        if name in col_of:
            sum_values[col_of[name]] = [
                table[c].astype(float).fillna(0).to_numpy(dtype=float)
                for c in columns
                if c in table.columns and c != fams[name][0]
            ]

    present_parts = [col_of[p] for p in OUTCOME_PARTS if p in fams]
    present_names = [p for p in OUTCOME_PARTS if p in fams]
    prefer = (
        present_names.index(PREFERRED_COMPLEMENT) if PREFERRED_COMPLEMENT in present_names else None
    )
    outcome_cols = [col_of[p] for p in OUTCOME_FAMILIES if p in fams]
    # Each round that changes something hides at least one more cell: this ends.
    for _ in range(hidden.size + 2):
        before = hidden.copy()
        kept = hidden[is_total]  # totals: no row rules (rule 6)
        # a row whose client count is hidden (for any reason) is hidden entirely
        if count_col is not None:
            hidden |= hidden[:, [col_of[count_col]]]
        # rule 2: outcome classes within a row
        if "n_classified" in fams and outcome_cols:
            hidden[:, outcome_cols] |= hidden[:, [col_of["n_classified"]]]
        if len(present_parts) > 1:
            parts = hidden[:, present_parts]
            extra, lone = _complement_within_rows(
                parts, counts_m[:, present_parts], k, prefer=prefer
            )
            hidden[:, present_parts] = parts | extra
            if "n_classified" in fams:
                # a lone hidden part: hide the total (its parts follow next round)
                hidden[:, col_of["n_classified"]] |= lone
        hidden[is_total] = kept
        # rules 3 and 5: siblings across rows
        for (set_ids, set_rows), only in zip(set_lists, set_lists_for, strict=True):
            for j in range(len(names)):
                if only is not None and names[j] not in only:
                    continue
                if hidden[:, j].any():
                    hidden[:, j] |= _complement_sets(
                        hidden[:, j], counts_m[:, j], set_ids, set_rows, k
                    )
        if np.array_equal(before, hidden):
            # rule 7, where rules 2–6 are content (so that it does not choose a partner
            # that rule 3 would choose by the client count a round later): no column of
            # a family with one non-zero hidden cell in a set (k = 1: these are no client
            # counts; two non-zero cells suffice); then everything again.
            for (set_ids, set_rows), only in zip(set_lists, set_lists_for, strict=True):
                for j, column_values in sum_values.items():
                    if only is not None and names[j] not in only:
                        continue
                    for values in column_values:
                        if hidden[:, j].any():
                            hidden[:, j] |= _complement_sets(
                                hidden[:, j], values, set_ids, set_rows, 1
                            )
            if np.array_equal(before, hidden):
                break
    hidden_df = pd.DataFrame(hidden, index=table.index, columns=names)

    out = table.astype({c: float for c in table.columns})
    reasons = pd.DataFrame(None, index=table.index, columns=table.columns, dtype=object)
    for name, (_ncol, cols) in fams.items():
        held = forced_m[:, col_of[name]] & ~pre
        primary = small[name].to_numpy() & ~pre & ~held
        extra = hidden_df[name].to_numpy() & ~primary & ~pre & ~held
        for col in cols:
            out.loc[hidden_df[name].to_numpy(), col] = np.nan
            reasons.loc[primary, col] = reason_small(k)
            reasons.loc[extra, col] = REASON_COMPLEMENTARY
            reasons.loc[held, col] = forced_reason
            reasons.loc[pre, col] = (
                prehidden_reason[pre]
                if isinstance(prehidden_reason, np.ndarray)
                else prehidden_reason
            )
    # rule 4: percentage effect size reveals the start when the change is shown
    if "effect_size_pct" in out.columns and "ors_start" in fams:
        ors_hidden = hidden_df["ors_start"].to_numpy()
        pct_extra = ors_hidden & reasons["effect_size_pct"].isna().to_numpy()
        out.loc[ors_hidden, "effect_size_pct"] = np.nan
        reasons.loc[pct_extra, "effect_size_pct"] = REASON_COMPLEMENTARY
    return out, reasons


def suppress_trajectory(traj: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """Hide median-trajectory points based on fewer than k episodes.

    ``traj`` is :func:`stats.engine.median_trajectory` output. ORS median (and n_ors) become
    NaN where n_ors < k, the SRS ones where n_srs < k; a session number with neither line
    drawn is dropped. Medians cannot be recombined by subtraction, so there is no
    complementary suppression here.
    """
    _check_k(k)
    out = traj.astype({"n_ors": float, "n_srs": float, "ors_median": float, "srs_median": float})
    ors_small = out["n_ors"] < k
    srs_small = out["n_srs"] < k
    out.loc[ors_small, ["ors_median", "n_ors"]] = np.nan
    out.loc[srs_small, ["srs_median", "n_srs"]] = np.nan
    return out.loc[~(ors_small & srs_small)]


def may_show_therapist_spread(n_therapists: int) -> bool:
    """No spread at all below 3 therapists (a necessary condition; the dashboards need
    :func:`spread_min_therapists` therapists with values)."""
    return n_therapists >= MIN_THERAPISTS_FOR_SPREAD


def spread_min_therapists(k: int) -> int:
    """Therapists with values (each with k clients with an ORS change) a unit or
    organisation needs before its spread between therapists (median and quartiles) is
    shown: max(5, k)."""
    return max(MIN_THERAPISTS_FOR_SPREAD_SUMMARY, k)
