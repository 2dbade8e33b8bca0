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
   recovered by subtraction, so the next-smallest non-zero class is hidden too, until the
   hidden classes together hold at least k clients; if ``n_classified`` is hidden all
   classes are hidden.
3. **Complementary suppression across rows.** Rows that differ only in a *partition level*
   (``active``: active + inactive = all; ``unit_id``: units sum to the organisation …) are
   parts of a total that may be shown elsewhere. Within each such sibling group, for each
   family, while a hidden set exists that holds fewer than two non-zero cells or fewer than
   k clients in total, the smallest visible non-zero sibling is hidden as well.
4. ``effect_size_pct`` = change / start: hidden whenever ``ors_start`` is hidden (else the
   start could be recovered from change and percentage).

Rules 2–4 are applied until nothing changes (a handful of vectorised rounds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "MIN_K",
    "REASON_COMPLEMENTARY",
    "may_show_therapist_spread",
    "reason_small",
    "suppress_table",
    "suppress_trajectory",
]

MIN_K = 3  # datapolicy.md: the threshold k is an organisation setting, minimum 3
MIN_THERAPISTS_FOR_SPREAD = 3
REASON_COMPLEMENTARY = (
    "hidden so that a suppressed neighbouring figure cannot be recovered by subtraction"
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


def _complement_rows(
    hidden: pd.Series, counts: pd.Series, groups: list[np.ndarray] | None, k: int
) -> pd.Series:
    """One round of rule 3 for one family: the rows to hide in addition (bool Series)."""
    n = counts.fillna(0).to_numpy(dtype=float)
    h = hidden.to_numpy(dtype=bool)
    frame = pd.DataFrame(
        {
            "hidden_n": np.where(h, n, 0.0),
            "hidden_nonzero": (h & (n > 0)).astype("int64"),
            "candidate": ~h & (n > 0),
            "n": n,
        },
        index=hidden.index,
    )
    keys = groups if groups else [np.zeros(len(frame), dtype="int64")]
    g = frame.groupby(keys, sort=False, dropna=False)
    hidden_n = g["hidden_n"].transform("sum").to_numpy()
    hidden_nonzero = g["hidden_nonzero"].transform("sum").to_numpy()
    needs = (hidden_nonzero > 0) & ((hidden_nonzero < 2) | (hidden_n < k))
    # rank visible non-zero candidates by size within the group; hide the smallest
    cand_n = np.where(frame["candidate"].to_numpy(), n, np.inf)
    smallest = (
        pd.Series(cand_n, index=frame.index)
        .groupby(keys, sort=False, dropna=False)
        .transform("min")
    )
    pick = needs & frame["candidate"].to_numpy() & (cand_n == smallest.to_numpy())
    # ties: hide only the first tied row per group this round (the next round re-checks)
    first_pick = pd.Series(pick, index=frame.index)
    rank = first_pick.astype("int64").groupby(keys, sort=False, dropna=False).cumsum()
    first_pick = first_pick & (rank == 1)
    return first_pick


def _complement_within_rows(hidden: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """One round of rule 2 over an (rows × parts) matrix: the extra cells to hide."""
    hidden_nonzero = (hidden & (counts > 0)).sum(axis=1)
    hidden_n = np.where(hidden, counts, 0.0).sum(axis=1)
    needs = (hidden_nonzero > 0) & ((hidden_nonzero < 2) | (hidden_n < k))
    cand_n = np.where(~hidden & (counts > 0), counts, np.inf)
    col = cand_n.argmin(axis=1)
    rows = np.flatnonzero(needs & np.isfinite(cand_n.min(axis=1)))
    extra = np.zeros_like(hidden)
    extra[rows, col[rows]] = True
    return extra


def suppress_table(
    table: pd.DataFrame,
    *,
    k: int,
    count_col: str = "episodes",
    partition_levels: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small-cell suppression with complementary suppression (see module docstring).

    ``table`` is e.g. :func:`stats.engine.statistics_table` output (any table whose index
    levels identify the cells; its columns need not be the statistics columns — unknown
    columns belong to the ``count_col`` family). ``partition_levels``: the index levels whose
    siblings add up to a total that may be published (default: those of
    :data:`DEFAULT_PARTITION_LEVELS` present in the index).

    Returns ``(suppressed, reasons)``: ``suppressed`` has the same shape with hidden cells
    set to NaN (columns become float); ``reasons`` has the same shape, missing (None/NaN)
    for shown cells and a reason string for hidden ones.
    """
    _check_k(k)
    if count_col not in table.columns:
        raise ValueError(f"count column {count_col!r} not in table")
    index_names = [n for n in table.index.names if n is not None]
    if partition_levels is None:
        partition_levels = [lvl for lvl in DEFAULT_PARTITION_LEVELS if lvl in index_names]
    partition_levels = list(partition_levels)

    families: dict[str, tuple[str, list[str]]] = {}
    claimed: set[str] = set()
    for name, (ncol, members) in STAT_FAMILIES.items():
        if ncol in table.columns and name != count_col:
            cols = [c for c in members if c in table.columns and c != count_col]
            families[name] = (ncol, cols)
            claimed.update(cols)
    families[count_col] = (count_col, [c for c in table.columns if c not in claimed])

    def count(name: str) -> pd.Series:
        return table[families[name][0]].astype(float)

    small = pd.DataFrame(
        {name: (count(name) > 0) & (count(name) < k) for name in families}, index=table.index
    )
    row_small = small[count_col].copy()
    for name in families:
        small[name] |= row_small
    hidden = small.copy()

    def sibling_groups(level: str) -> list[np.ndarray] | None:
        """One int group id per row: the rows that differ only in ``level``."""
        others = [i for i, n in enumerate(table.index.names) if n != level]
        if not others:
            return None
        keys = pd.MultiIndex.from_arrays([table.index.get_level_values(i) for i in others])
        codes, _ = pd.factorize(keys, use_na_sentinel=False)
        return [np.asarray(codes, dtype=np.int64)]

    level_groups = {level: sibling_groups(level) for level in partition_levels}

    present_parts = [p for p in OUTCOME_PARTS if p in families]
    for _ in range(50):
        before = hidden.to_numpy().copy()
        # a row whose client count is hidden (for any reason) is hidden entirely
        for name in families:
            hidden[name] |= hidden[count_col]
        # rule 2: outcome classes within a row
        if "n_classified" in families:
            for name in OUTCOME_FAMILIES:
                if name in families:
                    hidden[name] |= hidden["n_classified"]
        if len(present_parts) > 1:
            parts = hidden[present_parts].to_numpy(dtype=bool)
            parts_n = np.column_stack([count(p).fillna(0).to_numpy() for p in present_parts])
            parts |= _complement_within_rows(parts, parts_n, k)
            for i, p in enumerate(present_parts):
                hidden[p] = parts[:, i]
        # rule 3: siblings across rows
        for level in partition_levels:
            groups = level_groups[level]
            for name in families:
                if hidden[name].any():
                    hidden[name] |= _complement_rows(hidden[name], count(name), groups, k)
        if np.array_equal(before, hidden.to_numpy()):
            break

    out = table.astype({c: float for c in table.columns})
    reasons = pd.DataFrame(None, index=table.index, columns=table.columns, dtype=object)
    for name, (_ncol, cols) in families.items():
        primary = small[name].to_numpy()
        extra = hidden[name].to_numpy() & ~primary
        for col in cols:
            out.loc[hidden[name].to_numpy(), col] = np.nan
            reasons.loc[primary, col] = reason_small(k)
            reasons.loc[extra, col] = REASON_COMPLEMENTARY
    # rule 4: percentage effect size reveals the start when the change is shown
    if "effect_size_pct" in out.columns and "ors_start" in families:
        pct_extra = hidden["ors_start"].to_numpy() & reasons["effect_size_pct"].isna().to_numpy()
        out.loc[hidden["ors_start"].to_numpy(), "effect_size_pct"] = np.nan
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
    """A unit dashboard shows per-therapist spread only with at least 3 therapists."""
    return n_therapists >= MIN_THERAPISTS_FOR_SPREAD
