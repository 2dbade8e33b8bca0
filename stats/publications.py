"""Anonymised figures are published per closed month, frozen, and checked across dates.

Cumulative figures at two reference dates can be subtracted: the organisation's table at
the end of October minus the one at the end of September is the clients who came, left or
changed in October, and with 1 … k−1 of them their scores follow. Each date suppressed on
its own does not prevent that. So (docs/datapolicy.md, "Publication per closed month"):

1. **Closed months only.** Unit, organisation and platform figures — every anonymised
   view — are offered at the ends of closed months (the last month, quarter and year end
   there); never "today", which would change with every session.
2. **Published once, frozen.** The first time the figures of an organisation and
   month-end are needed, every unit's and the organisation's snapshots of that date are
   computed from one read and a :class:`~stats.models.Publication` is stored; from then on
   those snapshots are never recomputed (late entries count from the next month on), so
   the same date always shows the same figures.
3. **Differencing control across dates.** With the publication goes a fingerprint: per
   episode a keyed digest, its unit, age group, whether it is active, and a keyed hash of
   its state (its sessions' dates, numbers and totals, unit, therapist, age group and
   closing up to the date). Against **every earlier publication** of the organisation,
   the figures of each unit (with its parents and its "direct" part), the organisation and
   each age group are compared: per cell the number of episodes whose contribution
   changed — to the active side, to the inactive side, and to both together (an episode
   that only moved from active to inactive changes the sides but not their sum). That
   *change grid* is suppressed like any other table (a change of 1 … k−1 episodes is
   hidden, with complementary suppression over the units' sums and the age groups, so that
   a hidden change cannot be recovered as the organisation's change minus the other
   units'); wherever a change is hidden, the new publication hides that figure (the
   earlier one is already public and stays as it was). These hidden figures then enter the
   new date's own sibling grid (stats.siblings) as hidden cells, which adds the usual
   complementary suppression within the date.

The platform (the benchmark) is published the same way; its viewers know their own
organisation's figures, so a platform side is also hidden where the *other*
organisations' change since an earlier publication is 1 … k−1 episodes.

Pure pandas/numpy apart from :func:`publish` and :func:`held_for`, which read and write
the database.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from .anonymise import suppress_table
from .engine import StatsSettings, episode_frame, filter_as_of
from .siblings import AGES, Tree, _sets_for, node_name

REASON_CHANGED = "hidden so that this month-end cannot be subtracted from an earlier published one"
FINGERPRINT_VERSION = 3
_AGE_CODES = {"adult": 1, "youth": 2, "child": 3}
_AGE_NAMES = {v: k for k, v in _AGE_CODES.items()}
_STATE_COLUMNS = [
    "unit_id",
    "therapist_id",
    "age_group",
    "closed_on",
    "session_date",
    "session_number",
    "ors",
    "srs",
]
SIDES3: tuple[str, ...] = ("active", "inactive", "values")  # "values": both sides' sum
MAX_SESSION_BIT = 63  # session numbers above share one "later" bit (always judged unsure)

# Every figure family whose change is counted exactly: membership bit (None: every
# episode) and the value hash that decides what the member contributes (None: a count).
# Table families are judged per side; the rest over both sides, like their figures.
TABLE_FAMILIES: dict[str, tuple[int | None, str | None]] = {
    "episodes": (None, "h_episodes"),
    "ors_start": (0, "h_ors_start"),
    "srs_start": (1, "h_srs_start"),
    "ors_change": (2, "h_ors_change"),
    "srs_change": (3, "h_srs_change"),
    "n_classified": (2, None),
    "reliable_improvement": (4, None),
    "reliable_deterioration": (5, None),
    "no_reliable_change": (6, None),
    "clinically_significant": (7, None),
}
ETR_FAMILIES: dict[str, tuple[int | None, str | None]] = {
    "ended_evaluable": (8, None),
    "reaching_target": (9, None),
    "dropout": (10, None),
    "n_relative_effect": (11, "h_rel"),
}
QUALITY_FAMILIES: dict[str, tuple[int | None, str | None]] = {
    "ghost_episodes": (12, None),
    "open_past_inactivity": (13, None),
    "intake_above_cutoff": (14, None),
}
_COLUMNS: dict[str, str] = {  # the fingerprint's columns and their dtypes
    "digest": "<u8",
    "org": "<i8",
    "unit": "<i8",
    "age": "u1",
    "active": "u1",
    "therapist": "<u8",
    "state": "<u8",
    "bits": "<u2",
    "h_episodes": "<u8",
    "h_ors_start": "<u8",
    "h_srs_start": "<u8",
    "h_ors_change": "<u8",
    "h_srs_change": "<u8",
    "h_rel": "<u8",
    "ors_bits": "<u8",
    "srs_bits": "<u8",
    "first_month": "<i4",
    "last_month": "<i4",
    "n_duplicate_dates": "<u2",
    "n_srs_without_ors": "<u2",
}
# Data-quality counts of sessions (not episodes): per episode how many it adds.
SESSION_COUNT_FAMILIES: dict[str, str] = {
    "duplicate_same_date_sessions": "n_duplicate_dates",
    "srs_without_ors": "n_srs_without_ors",
}

Held = dict[tuple[str, str], set[str]]  # (node name, age group) -> hidden tokens


@dataclass(frozen=True)
class States:
    """Every episode of a publication (one row each, sorted by ``digest``): see
    :data:`_COLUMNS`. ``month`` is the publication's month (months since year 0)."""

    columns: dict[str, np.ndarray]
    month: int = 0

    def __len__(self) -> int:
        return len(self.columns["digest"])

    def frame(self) -> pd.DataFrame:
        cols = {k: v for k, v in self.columns.items() if k != "digest"}
        return pd.DataFrame(cols, index=pd.Index(self.columns["digest"], name="digest"))


def _hash_key(key: bytes) -> str:
    """pandas' row hash takes a 16-character key."""
    return key[:8].hex()


def _row_hash(frame: pd.DataFrame, key: bytes) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False, hash_key=_hash_key(key)).to_numpy()


def state_hashes(frame: pd.DataFrame, *, as_of: date, key: bytes) -> pd.Series:
    """Per episode (index ``episode_id``) a keyed 64-bit hash of its state at ``as_of``:
    its sessions up to the date (dates, numbers, ORS and SRS totals), unit, therapist,
    age group and closing date if closed by then. Equal hashes: the episode contributes
    the same to every figure (given the same settings and ETR model)."""
    s = filter_as_of(frame, pd.Timestamp(as_of))
    rows = s[_STATE_COLUMNS].copy()
    # closing after the date is not known at the date
    rows.loc[rows["closed_on"] > pd.Timestamp(as_of), "closed_on"] = pd.NaT
    rows["age_group"] = rows["age_group"].astype(str)
    # Sum modulo 2**64 (uint64 wraps): independent of the rows' order.
    return pd.Series(_row_hash(rows, key), index=s["episode_id"].to_numpy()).groupby(level=0).sum()


def _month_number(values: Any) -> np.ndarray:
    d = pd.DatetimeIndex(values)
    return (d.year * 12 + d.month - 1).to_numpy(dtype=np.int32)


def _session_bits(s: pd.DataFrame, column: str, index: pd.Index) -> np.ndarray:
    """Per episode a bit per session number that carries ``column`` (ORS or SRS)."""
    scored = s.loc[s[column].notna(), ["episode_id", "session_number"]]
    if scored.empty:
        return np.zeros(len(index), dtype=np.uint64)
    number = scored["session_number"].to_numpy(dtype=np.int64)
    bit = np.left_shift(np.uint64(1), np.minimum(number - 1, MAX_SESSION_BIT).astype(np.uint64))
    episode = scored["episode_id"].to_numpy()
    order = np.argsort(episode, kind="stable")
    episode, bit = episode[order], bit[order]
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    merged = np.bitwise_or.reduceat(bit, starts)
    return pd.Series(merged, index=episode[starts]).reindex(index, fill_value=0).to_numpy(np.uint64)


def _per_episode(episode_id: pd.Series, flags: pd.Series, index: pd.Index) -> np.ndarray:
    """How many of an episode's sessions are flagged."""
    counts = flags.astype(np.int64).groupby(episode_id.to_numpy()).sum()
    return counts.reindex(index, fill_value=0).clip(upper=65535).to_numpy(dtype=np.uint16)


def episode_states(
    frame: pd.DataFrame,
    *,
    as_of: date,
    key: bytes,
    settings: Mapping[int, StatsSettings],
    models: Mapping[int, Any] | None = None,
    deactivated: set[int] | frozenset[int] = frozenset(),
) -> States:
    """The fingerprint of the sessions ``frame`` (stats.frames) as of ``as_of``.

    ``settings``: per organisation id (inactivity window, cutoffs, reliable change);
    ``models``: the ETR model per organisation id (key 0: one for all) with which the
    published ETR figures were computed; ``deactivated``: therapist ids whose open
    episodes are "ghost" episodes (data quality)."""
    from datapolicy.differencing import episode_digests

    from .engine import cutoff_for
    from .etr import AGE_GROUPS, last_ors_zones

    s = filter_as_of(frame, pd.Timestamp(as_of))
    month = as_of.year * 12 + as_of.month - 1
    if s.empty:
        return States({c: np.zeros(0, dtype=t) for c, t in _COLUMNS.items()}, month)
    state = state_hashes(s, as_of=as_of, key=key)
    parts = []
    for org_id, part in s.groupby("org_id", sort=False):
        cfg = settings.get(int(org_id), StatsSettings())
        ep = episode_frame(part, as_of=as_of, settings=cfg)
        ep["cutoff"] = cutoff_for(ep["age_group"], cfg.ors_cutoffs)
        ep["inactivity_days"] = cfg.inactivity_days
        model = (models or {}).get(int(org_id), (models or {}).get(0))
        if model is not None:
            last = last_ors_zones(part, model).reindex(ep.index)
            zone = last["zone"].astype(object).to_numpy()
            ep["evaluable"] = np.isin(zone, ["green", "orange", "red"])
            ep["green"] = zone == "green"
            sd_table = np.array([model.intake_sd.get(g, np.nan) for g in AGE_GROUPS] + [np.nan])
            from .engine import age_group_codes

            sd = sd_table[age_group_codes(ep["age_group"])]
            ep["rel"] = (
                last["ors"].to_numpy(dtype=float) - last["target"].to_numpy(dtype=float)
            ) / (np.where(sd > 0, sd, np.nan))
        else:
            ep["evaluable"], ep["green"], ep["rel"] = False, False, np.nan
        parts.append(ep)
    ep = pd.concat(parts)
    ids = ep.index.to_numpy()
    ended = ~ep["active"].to_numpy(dtype=bool)
    evaluable = ep["evaluable"].to_numpy(dtype=bool)
    n_ors, n_srs = ep["n_ors"].to_numpy(), ep["n_srs"].to_numpy()

    def flag(col: str) -> np.ndarray:
        return ep[col].fillna(False).to_numpy(dtype=bool)

    bit_values = [
        n_ors >= 1,
        n_srs >= 1,
        n_ors >= 2,
        n_srs >= 2,
        flag("reliable_improvement"),
        flag("reliable_deterioration"),
        flag("no_reliable_change"),
        flag("clinically_significant"),
        ended & evaluable,
        ended & evaluable & ep["green"].to_numpy(dtype=bool),
        ended & evaluable & ~ep["green"].to_numpy(dtype=bool),
        evaluable & np.isfinite(ep["rel"].to_numpy(dtype=float)),
        ~ep["closed"].to_numpy(dtype=bool) & ep["therapist_id"].isin(list(deactivated)).to_numpy(),
        ~ep["closed"].to_numpy(dtype=bool)
        & (ep["days_since_last"].to_numpy() > ep["inactivity_days"].to_numpy()),
        ep["first_ors"].to_numpy(dtype=float) >= ep["cutoff"].to_numpy(dtype=float) - 1e-9,
    ]
    bits = np.zeros(len(ep), dtype=np.uint16)
    for i, values in enumerate(bit_values):
        bits |= np.where(values, np.uint16(1 << i), np.uint16(0)).astype(np.uint16)

    def hashed(cols: list[str]) -> np.ndarray:
        return _row_hash(ep[cols].astype(float), key)

    digest = episode_digests(key, ids)
    therapist = episode_digests(key, ep["therapist_id"].to_numpy())
    order = np.argsort(digest, kind="stable")
    columns = {
        "digest": digest,
        "org": ep["org_id"].to_numpy(dtype=np.int64),
        "unit": ep["unit_id"].to_numpy(dtype=np.int64),
        "age": ep["age_group"].astype(str).map(_AGE_CODES).fillna(0).to_numpy(dtype=np.uint8),
        "active": ep["active"].to_numpy(dtype=np.uint8),
        "therapist": therapist,
        "state": state.reindex(ids).to_numpy(dtype=np.uint64),
        "bits": bits,
        "h_episodes": _row_hash(
            pd.DataFrame(
                {
                    "n": ep["n_sessions"].to_numpy(),
                    "first": ep["first_date"].to_numpy(),
                    "last": ep["last_date"].to_numpy(),
                }
            ),
            key,
        ),
        "h_ors_start": hashed(["first_ors"]),
        "h_srs_start": hashed(["first_srs"]),
        "h_ors_change": hashed(["first_ors", "last_ors"]),
        "h_srs_change": hashed(["first_srs", "last_srs"]),
        "h_rel": hashed(["rel"]),
        "ors_bits": _session_bits(s, "ors", ep.index),
        "srs_bits": _session_bits(s, "srs", ep.index),
        "first_month": _month_number(ep["first_date"]),
        "last_month": _month_number(ep["last_date"]),
        "n_duplicate_dates": _per_episode(
            s["episode_id"], s.duplicated(["episode_id", "session_date"]), ep.index
        ),
        "n_srs_without_ors": _per_episode(
            s["episode_id"], s["srs"].notna() & s["ors"].isna(), ep.index
        ),
    }
    return States({c: np.asarray(v).astype(_COLUMNS[c])[order] for c, v in columns.items()}, month)


def encode(states: States) -> bytes:
    header = struct.pack(">III", FINGERPRINT_VERSION, len(states), states.month)
    body = b"".join(states.columns[c].astype(t).tobytes() for c, t in _COLUMNS.items())
    return zlib.compress(header + body)


def decode(blob: bytes) -> States:
    body = zlib.decompress(bytes(blob))
    version, n, month = struct.unpack(">III", body[:12])
    if version != FINGERPRINT_VERSION:
        raise ValueError("unknown publication fingerprint version")
    offset = 12
    columns: dict[str, np.ndarray] = {}
    for c, t in _COLUMNS.items():
        dtype = np.dtype(t)
        columns[c] = np.frombuffer(body, dtype=dtype, count=n, offset=offset).astype(
            dtype.newbyteorder("=")
        )
        offset += dtype.itemsize * n
    return States(columns, month)


# --- What changed between two publications ------------------------------------------------


def _aligned(old: States, new: States) -> tuple[int, dict[str, np.ndarray]]:
    """Both publications' columns on the union of their episodes, exact dtypes kept
    (a pandas outer join would turn the 64-bit hashes of absent rows into floats):
    ``present_o``/``present_n`` and ``<column>_o``/``<column>_n`` (zeros where absent)."""
    keys = np.union1d(old.columns["digest"], new.columns["digest"])
    out: dict[str, np.ndarray] = {}
    for tag, st in (("o", old), ("n", new)):
        d = st.columns["digest"]
        if len(d):
            pos = np.minimum(np.searchsorted(d, keys), len(d) - 1)
            present = d[pos] == keys
        else:
            pos = np.zeros(len(keys), dtype=np.int64)
            present = np.zeros(len(keys), dtype=bool)
        out[f"present_{tag}"] = present
        for c, v in st.columns.items():
            if c == "digest":
                continue
            taken = v[pos] if len(v) else np.zeros(len(keys), dtype=v.dtype)
            out[f"{c}_{tag}"] = np.where(present, taken, np.zeros(1, dtype=v.dtype))
    return len(keys), out


def change_tokens(
    old: States, new: States, moved_units: set[int] | frozenset[int] = frozenset()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(changes, unsure): one row per (episode, token) whose contribution to a figure
    changed for certain, and one per (episode, token) that may have changed.

    Tokens: ``"<side>:<family>"`` for the statistics table (side active / inactive /
    values = both), ``"etr:<family>"``, ``"quality:<family>"``, ``"traj:ors:<n>"`` /
    ``"traj:srs:<n>"`` per session number, ``"impl:<YYYY-MM>"`` per past month of the
    older publication. A trajectory point's median can change while its members stay (a
    corrected score): such episodes are *unsure* for that point, like every episode with
    sessions in a past month whose state changed. Both frames carry the episode's place at
    either date (``unit_o``/``age_o``/``therapist_o`` …) for the grid. An episode of a
    unit in ``moved_units`` (whose place in the unit tree differs between the two dates)
    counts as changed in every figure it is in: it left some nodes and joined others."""
    n_rows, a = _aligned(old, new)
    po, pn = a["present_o"], a["present_n"]
    num = {c: v.astype(np.uint64) for c, v in a.items() if not c.startswith("present_")}
    act_o = po & (a["active_o"] == 1)
    act_n = pn & (a["active_n"] == 1)
    side_o = {"active": act_o, "inactive": po & ~act_o, "values": po}
    side_n = {"active": act_n, "inactive": pn & ~act_n, "values": pn}
    moved = np.zeros(n_rows, dtype=bool)
    if moved_units:
        wanted = np.fromiter(moved_units, dtype=np.int64)
        moved = (po & np.isin(a["unit_o"], wanted)) | (pn & np.isin(a["unit_n"], wanted))
    state_changed = ~(po & pn) | (num["state_o"] != num["state_n"]) | moved
    sure: dict[str, np.ndarray] = {}
    unsure: dict[str, np.ndarray] = {}

    def family(token: str, bit: int | None, hcol: str | None, side: str) -> None:
        mo, mn = side_o[side].copy(), side_n[side].copy()
        if bit is not None:
            mo &= ((num["bits_o"] >> np.uint64(bit)) & np.uint64(1)) == 1
            mn &= ((num["bits_n"] >> np.uint64(bit)) & np.uint64(1)) == 1
        changed = (mo != mn) | ((mo | mn) & moved)
        if hcol is not None:
            changed |= mo & mn & (num[f"{hcol}_o"] != num[f"{hcol}_n"])
        sure[token] = changed

    for name, (bit, hcol) in TABLE_FAMILIES.items():
        for side in SIDES3:
            family(f"{side}:{name}", bit, hcol, side)
    for name, (bit, hcol) in ETR_FAMILIES.items():
        family(f"etr:{name}", bit, hcol, "values")
    for name, (bit, hcol) in QUALITY_FAMILIES.items():
        family(f"quality:{name}", bit, hcol, "values")
    for name, col in SESSION_COUNT_FAMILIES.items():
        # members: episodes adding at least one such session; changed: another number
        vo, vn = a[f"{col}_o"].astype(np.int64), a[f"{col}_n"].astype(np.int64)
        mo, mn = po & (vo > 0), pn & (vn > 0)
        sure[f"quality:{name}"] = (mo != mn) | (mo & mn & (vo != vn)) | ((mo | mn) & moved)
    for scale in ("ors", "srs"):
        bo, bn = num[f"{scale}_bits_o"], num[f"{scale}_bits_n"]
        for b in range(MAX_SESSION_BIT + 1):
            mo = po & ((bo >> np.uint64(b)) & np.uint64(1) == 1)
            mn = pn & ((bn >> np.uint64(b)) & np.uint64(1) == 1)
            if not (mo | mn).any():
                continue
            token = f"traj:{scale}:{b + 1}"
            if b == MAX_SESSION_BIT:  # "later": never sure which point
                unsure[token] = (mo | mn) & state_changed
                continue
            sure[token] = (mo != mn) | ((mo | mn) & moved)
            unsure[token] = mo & mn & state_changed
    # Past months of the older publication: sessions there changed only if the episode
    # changed and its sessions span that month at either date.
    big = np.iinfo(np.int32).max
    lo = np.minimum(
        np.where(po, a["first_month_o"], big), np.where(pn, a["first_month_n"], big)
    ).astype(np.int64)
    hi = np.maximum(
        np.where(po, a["last_month_o"], -1), np.where(pn, a["last_month_n"], -1)
    ).astype(np.int64)
    touched = state_changed & (hi >= 0)
    if touched.any():
        for m in range(int(lo[touched].min()), min(int(hi[touched].max()), old.month) + 1):
            hit = touched & (lo <= m) & (hi >= m)
            if hit.any():
                unsure[f"impl:{m // 12:04d}-{m % 12 + 1:02d}"] = hit

    nan = np.nan
    place = pd.DataFrame(
        {
            "episode": np.arange(n_rows),
            "org": np.where(pn, a["org_n"], a["org_o"]),
            "unit_o": np.where(po, a["unit_o"].astype(float), nan),
            "age_o": np.where(po, a["age_o"].astype(float), nan),
            "therapist_o": np.where(po, a["therapist_o"], 0).astype(np.uint64),
            "unit_n": np.where(pn, a["unit_n"].astype(float), nan),
            "age_n": np.where(pn, a["age_n"].astype(float), nan),
            "therapist_n": np.where(pn, a["therapist_n"], 0).astype(np.uint64),
        }
    )

    def long(flags: dict[str, np.ndarray]) -> pd.DataFrame:
        rows = [place.loc[mask].assign(figure=token) for token, mask in flags.items() if mask.any()]
        if not rows:
            return place.iloc[:0].assign(figure=pd.Series(dtype=object))
        return pd.concat(rows, ignore_index=True)

    return long(sure), long(unsure)


def _nodes_of_unit(tree: Tree) -> dict[int, list[str]]:
    """The nodes an episode of each unit counts in: the unit, its "direct" node when it has
    child units, its ancestors, the root."""
    parent: dict[int, int | None] = {}
    for parent_key, kids in tree.children.items():
        for _kind, uid in kids:
            parent[int(uid)] = None if parent_key == tree.root else int(parent_key[1])
    out: dict[int, list[str]] = {}
    for uid in parent:
        nodes = [node_name("unit", uid)]
        if ("unit", uid) in tree.children:
            nodes.append(tree.direct(("unit", uid)))
        up = parent[uid]
        seen = {uid}
        while up is not None and up not in seen:
            seen.add(up)
            nodes.append(node_name("unit", up))
            up = parent.get(up)
        nodes.append(node_name(*tree.root))
        out[uid] = nodes
    return out


def _cells(rows: pd.DataFrame, old_tree: Tree, new_tree: Tree) -> pd.DataFrame:
    """(episode, token) rows → one row per (episode, token, node, age, therapist): the
    episode counts where it was (old tree) and where it is (new tree), in its age group
    and "all"; with each therapist it had (either knows it)."""
    if rows.empty:
        return pd.DataFrame(columns=["episode", "figure", "node", "age", "therapist"])
    out = []
    for side, tree in (("o", old_tree), ("n", new_tree)):
        nodes_of = _nodes_of_unit(tree)
        root = [node_name(*tree.root)] + (
            [tree.direct(tree.root)] if tree.root in tree.children else []
        )
        part = rows.loc[rows[f"unit_{side}"].notna()]
        if part.empty:
            continue
        base = pd.DataFrame(
            {
                "episode": part["episode"].to_numpy(),
                "figure": part["figure"].to_numpy(),
                "node": [nodes_of.get(int(u), root) for u in part[f"unit_{side}"]],
                "age": part[f"age_{side}"]
                .astype(np.int64)
                .map(_AGE_NAMES)
                .fillna("all")
                .to_numpy(),
                "therapist_o": part["therapist_o"].to_numpy(),
                "therapist_n": part["therapist_n"].to_numpy(),
            }
        )
        out += [base, base.assign(age="all")]
    cells = pd.concat(out, ignore_index=True).explode("node")
    cells = cells.drop_duplicates(["episode", "figure", "node", "age"])
    by_t = pd.concat(
        [
            cells.drop(columns="therapist_n").rename(columns={"therapist_o": "therapist"}),
            cells.drop(columns="therapist_o").rename(columns={"therapist_n": "therapist"}),
        ]
    )
    return by_t.loc[by_t["therapist"] != 0].drop_duplicates(
        ["episode", "figure", "node", "age", "therapist"]
    )


def _effective(
    sure: pd.DataFrame, unsure: pd.DataFrame, index: pd.MultiIndex, k: int
) -> pd.DataFrame:
    """Per (node, age) × token the change as the grid counts it: 0 when nothing changed;
    the number of changed episodes when that is certainly at least k and, after taking
    away any one therapist's, still at least k with at least 3 therapists (a therapist
    knows their own clients); otherwise 1 — a small change, to be hidden."""
    keys = ["node", "age", "figure"]
    if sure.empty and unsure.empty:
        return pd.DataFrame(index=index)
    n_sure = sure.drop_duplicates(["episode", *keys]).groupby(keys).size()
    per_t = sure.groupby([*keys, "therapist"]).size()
    top = per_t.groupby(level=keys).max()
    n_ther = per_t.groupby(level=keys).size()
    n_unsure = unsure.drop_duplicates(["episode", *keys]).groupby(keys).size()
    frame = pd.DataFrame({"sure": n_sure, "top": top, "ther": n_ther, "unsure": n_unsure}).fillna(0)
    large = (frame["sure"] >= k) & (frame["sure"] - frame["top"] >= k) & (frame["ther"] >= 3)
    any_change = (frame["sure"] + frame["unsure"]) > 0
    eff = np.where(large, frame["sure"], np.where(any_change, 1.0, 0.0))
    grid = pd.Series(eff, index=frame.index).unstack("figure", fill_value=0.0)
    return grid.reindex(index, fill_value=0.0).fillna(0.0)


def held_between(
    old: States, new: States, tree: Tree, *, k: int, old_tree: Tree | None = None
) -> Held:
    """What the newer publication must hide so that it cannot be subtracted from the older
    one: per figure (token), the change grid suppressed — small changes and their
    complements over the unit sums and the age groups — plus the therapist spread of a
    node where one therapist's change in the ORS-change family is 1 … k−1."""
    old_tree = old_tree or tree
    old_nodes, new_nodes = _nodes_of_unit(old_tree), _nodes_of_unit(tree)
    moved = {u for u in set(old_nodes) | set(new_nodes) if old_nodes.get(u) != new_nodes.get(u)}
    sure, unsure = change_tokens(old, new, moved)
    index = pd.MultiIndex.from_product([tree.nodes(), list(AGES)], names=["node", "age"])
    sure_c, unsure_c = _cells(sure, old_tree, tree), _cells(unsure, old_tree, tree)
    grid = _effective(sure_c, unsure_c, index, k)
    held: Held = {}
    published = {node_name(*n) for n in tree.published}
    if grid.shape[1] and (grid.to_numpy() > 0).any():
        grid = grid.loc[:, (grid > 0).any()]
        _out, reasons = suppress_table(
            grid,
            k=k,
            count_col=None,
            partition_levels=["age"],
            sibling_sets=_sets_for(grid.index, tree),
            families={c: (c, (c,)) for c in grid.columns},
        )
        values = reasons.to_numpy(dtype=object)
        rows, cols = np.nonzero(pd.notna(values))
        for i, c in zip(rows.tolist(), cols.tolist(), strict=True):
            node, age = reasons.index[i]
            if node in published:
                held.setdefault((str(node), str(age)), set()).add(str(reasons.columns[c]))
    # The per-therapist spread: each row is one therapist's ORS-change family.
    spread = sure_c.loc[sure_c["figure"] == "values:ors_change"]
    if not spread.empty:
        per_t = spread.groupby(["node", "age", "therapist"]).size()
        small = per_t[(per_t > 0) & (per_t < k)]
        for node, age, _t in small.index:
            if node in published:
                held.setdefault((str(node), str(age)), set()).add("spread")
    return held


def others_changed(old: States, new: States, organisation_id: int, *, k: int) -> set[str]:
    """The benchmark: the tokens (as :func:`change_tokens`) whose change among the *other*
    organisations' episodes is small (a viewer knows their own organisation's change):
    1 … k−1 certain changes, or unsure ones without k certain."""
    sure, unsure = change_tokens(old, new)
    own = int(organisation_id)
    s = sure.loc[sure["org"].astype(np.int64) != own].groupby("figure").size()
    u = unsure.loc[unsure["org"].astype(np.int64) != own].groupby("figure").size()
    frame = pd.DataFrame({"sure": s, "unsure": u}).fillna(0)
    small = (frame["sure"] + frame["unsure"] > 0) & (frame["sure"] < k)
    return {str(t) for t in frame.index[small.to_numpy()]}


def merge_held(into: Held, more: Held) -> Held:
    for key, cols in more.items():
        into.setdefault(key, set()).update(cols)
    return into


__all__ = [
    "REASON_CHANGED",
    "States",
    "change_tokens",
    "decode",
    "encode",
    "episode_states",
    "held_between",
    "merge_held",
    "others_changed",
    "state_hashes",
]
