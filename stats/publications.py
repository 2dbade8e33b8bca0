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

import numpy as np
import pandas as pd

from .anonymise import suppress_table
from .engine import StatsSettings, episode_frame, filter_as_of
from .siblings import AGES, Tree, _sets_for, node_name

REASON_CHANGED = (
    "hidden: since an earlier published month-end this figure changed by fewer than k "
    "clients, so the two could be subtracted"
)
CHANGE_COLUMNS: tuple[str, ...] = ("active", "inactive", "values")
FINGERPRINT_VERSION = 1
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

Held = dict[tuple[str, str], set[str]]  # (node name, age group) -> hidden change columns


@dataclass(frozen=True)
class States:
    """Every episode of a publication, sorted by digest."""

    digest: np.ndarray  # uint64 keyed digest of the episode id
    org: np.ndarray  # int64 organisation id
    unit: np.ndarray  # int64 unit id
    age: np.ndarray  # uint8 age-group code (1 adult, 2 youth, 3 child, 0 unknown)
    active: np.ndarray  # bool
    state: np.ndarray  # uint64 keyed hash of the episode's state at the date

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "org": self.org,
                "unit": self.unit,
                "age": self.age,
                "active": self.active,
                "state": self.state,
            },
            index=pd.Index(self.digest, name="digest"),
        )


def _hash_key(key: bytes) -> str:
    """pandas' row hash takes a 16-character key."""
    return key[:8].hex()


def state_hashes(frame: pd.DataFrame, *, as_of: date, key: bytes) -> pd.Series:
    """Per episode (index ``episode_id``) a keyed 64-bit hash of its state at ``as_of``:
    its sessions up to the date (dates, numbers, ORS and SRS totals), unit, therapist,
    age group and closing date if closed by then. Equal hashes: the episode contributes
    the same to every figure."""
    s = filter_as_of(frame, pd.Timestamp(as_of))
    rows = s[_STATE_COLUMNS].copy()
    # closing after the date is not known at the date
    rows.loc[rows["closed_on"] > pd.Timestamp(as_of), "closed_on"] = pd.NaT
    rows["age_group"] = rows["age_group"].astype(str)
    row_hash = pd.util.hash_pandas_object(rows, index=False, hash_key=_hash_key(key))
    # Sum modulo 2**64 (uint64 wraps): independent of the rows' order.
    return pd.Series(row_hash.to_numpy(), index=s["episode_id"].to_numpy()).groupby(level=0).sum()


def episode_states(
    frame: pd.DataFrame,
    *,
    as_of: date,
    key: bytes,
    settings: Mapping[int, StatsSettings],
) -> States:
    """The fingerprint of the sessions ``frame`` (stats.frames) as of ``as_of``.

    ``settings``: per organisation id (for the inactivity window that decides
    active/inactive)."""
    from datapolicy.differencing import episode_digests

    s = filter_as_of(frame, pd.Timestamp(as_of))
    if s.empty:
        empty = np.zeros(0, dtype=np.uint64)
        return States(
            empty,
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.uint8),
            np.zeros(0, bool),
            empty,
        )
    state = state_hashes(s, as_of=as_of, key=key)
    parts = []
    for org_id, part in s.groupby("org_id", sort=False):
        ep = episode_frame(part, as_of=as_of, settings=settings.get(int(org_id), StatsSettings()))
        parts.append(ep[["org_id", "unit_id", "age_group", "active"]])
    ep = pd.concat(parts)
    ids = ep.index.to_numpy()
    digest = episode_digests(key, ids)
    order = np.argsort(digest, kind="stable")
    age = ep["age_group"].astype(str).map(_AGE_CODES).fillna(0).to_numpy(dtype=np.uint8)
    return States(
        digest[order],
        ep["org_id"].to_numpy(dtype=np.int64)[order],
        ep["unit_id"].to_numpy(dtype=np.int64)[order],
        age[order],
        ep["active"].to_numpy(dtype=bool)[order],
        state.reindex(ids).to_numpy(dtype=np.uint64)[order],
    )


def encode(states: States) -> bytes:
    header = struct.pack(">II", FINGERPRINT_VERSION, len(states.digest))
    return zlib.compress(
        header
        + states.digest.astype("<u8").tobytes()
        + states.org.astype("<i8").tobytes()
        + states.unit.astype("<i8").tobytes()
        + states.age.astype(np.uint8).tobytes()
        + states.active.astype(np.uint8).tobytes()
        + states.state.astype("<u8").tobytes()
    )


def decode(blob: bytes) -> States:
    body = zlib.decompress(bytes(blob))
    version, n = struct.unpack(">II", body[:8])
    if version != FINGERPRINT_VERSION:
        raise ValueError("unknown publication fingerprint version")
    offset = 8

    def take(dtype: str, size: int) -> np.ndarray:
        nonlocal offset
        out = np.frombuffer(body, dtype=dtype, count=n, offset=offset)
        offset += size * n
        return out

    digest = take("<u8", 8).astype(np.uint64)
    org = take("<i8", 8).astype(np.int64)
    unit = take("<i8", 8).astype(np.int64)
    age = take("u1", 1).astype(np.uint8)
    active = take("u1", 1).astype(bool)
    state = take("<u8", 8).astype(np.uint64)
    return States(digest, org, unit, age, active, state)


# --- The change grid ------------------------------------------------------------------


def changed_episodes(old: States, new: States) -> pd.DataFrame:
    """One row per episode whose contribution changed between two publications, with
    where it was (``unit_o``/``age_o``, absent: NaN) and is (``unit_n``/``age_n``), its
    organisation, and which kind of figure it changes (``active``, ``inactive``,
    ``values`` = the sum of both sides)."""
    j = old.frame().merge(
        new.frame(), how="outer", left_index=True, right_index=True, suffixes=("_o", "_n")
    )
    po = j["unit_o"].notna().to_numpy()
    pn = j["unit_n"].notna().to_numpy()
    same = po & pn & (j["state_o"].to_numpy() == j["state_n"].to_numpy())
    ao = po & j["active_o"].fillna(False).to_numpy(dtype=bool)
    an = pn & j["active_n"].fillna(False).to_numpy(dtype=bool)
    io, in_ = po & ~ao, pn & ~an
    out = pd.DataFrame(
        {
            "org": j["org_n"].fillna(j["org_o"]).to_numpy(),
            "unit_o": j["unit_o"].to_numpy(),
            "age_o": j["age_o"].to_numpy(),
            "unit_n": j["unit_n"].to_numpy(),
            "age_n": j["age_n"].to_numpy(),
            "active": (ao != an) | (ao & an & ~same),
            "inactive": (io != in_) | (io & in_ & ~same),
            "values": ~same,
        }
    )
    return out.loc[out[list(CHANGE_COLUMNS)].any(axis=1)].reset_index(drop=True)


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


def change_grid(changed: pd.DataFrame, tree: Tree) -> pd.DataFrame:
    """Per node × age group: how many episodes changed, per kind of figure (columns
    :data:`CHANGE_COLUMNS`); an episode is counted once per cell, wherever it was or is."""
    nodes_of = _nodes_of_unit(tree)
    root = [node_name(*tree.root)]
    index = pd.MultiIndex.from_product([tree.nodes(), list(AGES)], names=["node", "age"])
    if changed.empty:
        return pd.DataFrame(0.0, index=index, columns=list(CHANGE_COLUMNS))
    long = []
    for side in ("o", "n"):
        part = changed.loc[changed[f"unit_{side}"].notna()]
        if part.empty:
            continue
        units = part[f"unit_{side}"].astype(np.int64)
        ages = part[f"age_{side}"].astype(np.int64).map(_AGE_NAMES).fillna("all")
        base = pd.DataFrame(
            {
                "episode": part.index.to_numpy(),
                "nodes": [nodes_of.get(int(u), root) for u in units],
                "age": ages.to_numpy(),
                **{c: part[c].to_numpy() for c in CHANGE_COLUMNS},
            }
        )
        long.append(base)
        long.append(base.assign(age="all"))
    cells = pd.concat(long).explode("nodes").rename(columns={"nodes": "node"})
    per_cell = cells.groupby(["episode", "node", "age"], sort=False)[list(CHANGE_COLUMNS)].max()
    grid = per_cell.groupby(level=["node", "age"]).sum().astype(float)
    return grid.reindex(index, fill_value=0.0)


def held_between(old: States, new: States, tree: Tree, *, k: int) -> Held:
    """What the newer publication must hide so that it cannot be subtracted from the older
    one: the change grid suppressed (small changes and their complements)."""
    grid = change_grid(changed_episodes(old, new), tree)
    if not (grid.to_numpy() > 0).any():
        return {}
    _out, reasons = suppress_table(
        grid,
        k=k,
        count_col=None,
        partition_levels=["age"],
        sibling_sets=_sets_for(grid.index, tree),
        families={c: (c, (c,)) for c in CHANGE_COLUMNS},
    )
    published = {node_name(*n) for n in tree.published}
    held: Held = {}
    values = reasons.to_numpy(dtype=object)
    rows, cols = np.nonzero(pd.notna(values))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        node, age = reasons.index[i]
        if node in published:
            held.setdefault((str(node), str(age)), set()).add(str(reasons.columns[j]))
    return held


def others_changed(old: States, new: States, organisation_id: int) -> dict[str, int]:
    """The benchmark: per side, how many episodes of the *other* organisations changed
    between two platform publications (a viewer knows their own organisation's change)."""
    changed = changed_episodes(old, new)
    others = changed.loc[changed["org"].astype(np.int64) != int(organisation_id)]
    return {c: int(others[c].sum()) for c in CHANGE_COLUMNS}


def merge_held(into: Held, more: Held) -> Held:
    for key, cols in more.items():
        into.setdefault(key, set()).update(cols)
    return into


__all__ = [
    "CHANGE_COLUMNS",
    "REASON_CHANGED",
    "States",
    "change_grid",
    "changed_episodes",
    "decode",
    "encode",
    "episode_states",
    "held_between",
    "merge_held",
    "others_changed",
    "state_hashes",
]
