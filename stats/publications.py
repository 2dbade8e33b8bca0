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

import itertools
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from .anonymise import suppress_table
from .engine import (
    SESSION_COLUMNS,
    StatsSettings,
    age_group_codes,
    cutoff_for,
    episode_frame,
    filter_as_of,
)
from .etr import AGE_GROUPS, last_ors_zones
from .siblings import AGES, Tree, _sets_for, node_name

REASON_CHANGED = "hidden so that this month-end cannot be subtracted from an earlier published one"
FINGERPRINT_VERSION = 6
_AGE_CODES = {"adult": 1, "youth": 2, "child": 3}
_AGE_NAMES = {v: k for k, v in _AGE_CODES.items()}
# A session's state as the fingerprint sees it: the engine's columns without the ids.
_STATE_COLUMNS = [c for c in SESSION_COLUMNS if c not in ("org_id", "episode_id")]
SIDES3: tuple[str, ...] = ("active", "inactive", "values")  # "values": both sides' sum
SPREAD_FIGURE = "spread:ors_change"  # the spread's rows: never a column of a grid
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
    # per month back from the publication's (0 = its own month … 23): a keyed 64-bit hash
    # of the episode's sessions in that month, 0 without any (the implementation panel)
    **{f"m{i}": "<u8" for i in range(24)},
    # per session number 1 … 24: a keyed 64-bit hash of the ORS (o…) and SRS (s…) there,
    # 0 without one (the trajectory: a corrected score moves a median)
    **{f"o{i}": "<u8" for i in range(1, 25)},
    **{f"s{i}": "<u8" for i in range(1, 25)},
}
MONTH_WINDOW = 24
POINT_WINDOW = 24
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


def _month_hashes(s: pd.DataFrame, month: int, key: bytes, index: pd.Index) -> dict[str, Any]:
    """Per episode and month back from ``month`` (0 … 23), a keyed 64-bit hash of its
    sessions in that month (0 when it has none)."""
    back = month - _month_number(s["session_date"]).astype(np.int64)
    rows = s[_STATE_COLUMNS].copy()
    rows["age_group"] = rows["age_group"].astype(str)
    rows["closed_on"] = pd.NaT  # a closing is not a session of the month
    h = _row_hash(rows, key) | np.uint64(1)  # never 0: 0 means "no session"
    frame = pd.DataFrame({"e": s["episode_id"].to_numpy(), "b": back, "h": h})
    frame = frame.loc[(frame["b"] >= 0) & (frame["b"] < MONTH_WINDOW)]
    summed = frame.groupby(["e", "b"])["h"].sum().unstack("b", fill_value=0)
    summed = summed.reindex(index=index, columns=range(MONTH_WINDOW), fill_value=0)
    folded = _nonzero64(summed.to_numpy(dtype=np.uint64))
    return {f"m{i}": folded[:, i] for i in range(MONTH_WINDOW)}


def _nonzero64(values: np.ndarray) -> np.ndarray:
    """Keyed 64-bit hashes kept apart from 0 (= none) where the input is not 0."""
    return np.where(values != 0, values | np.uint64(1), np.uint64(0)).astype(np.uint64)


def _point_hashes(
    s: pd.DataFrame, column: str, prefix: str, key: bytes, index: pd.Index
) -> dict[str, Any]:
    """Per episode and session number 1 … 24, a keyed 64-bit hash of its score there."""
    scored = s.loc[s[column].notna() & (s["session_number"] <= POINT_WINDOW)]
    out = {f"{prefix}{i}": np.zeros(len(index), dtype=np.uint64) for i in range(1, 25)}
    if scored.empty:
        return out
    h = _row_hash(scored[[column]].astype(float), key) | np.uint64(1)
    frame = pd.DataFrame(
        {"e": scored["episode_id"].to_numpy(), "n": scored["session_number"].to_numpy(), "h": h}
    )
    table = frame.groupby(["e", "n"])["h"].sum().unstack("n", fill_value=0)
    table = table.reindex(index=index, columns=range(1, POINT_WINDOW + 1), fill_value=0)
    values = _nonzero64(table.to_numpy(dtype=np.uint64))
    return {f"{prefix}{i}": values[:, i - 1] for i in range(1, POINT_WINDOW + 1)}


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
        **_month_hashes(s, month, key, ep.index),
        **_point_hashes(s, "ors", "o", key, ep.index),
        **_point_hashes(s, "srs", "s", key, ep.index),
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


@dataclass(frozen=True)
class Changes:
    """What changed between two publications: per changed episode (rows of ``place``:
    where it was and is, its organisation and therapists) and token (columns), whether
    its contribution changed for certain (``sure``) or may have (``unsure``)."""

    tokens: list[str]
    sure: np.ndarray  # bool, episodes × tokens
    unsure: np.ndarray  # bool, episodes × tokens
    place: pd.DataFrame


def change_tokens(
    old: States, new: States, moved_units: set[int] | frozenset[int] = frozenset()
) -> Changes:
    """Per changed episode and token (figure): changed for certain, or maybe.

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
    # An episode whose unit or age group differs between the dates left some cells and
    # joined others: changed in every figure it is in (as for a moved unit).
    moved = po & pn & ((a["unit_o"] != a["unit_n"]) | (a["age_o"] != a["age_n"]))
    if moved_units:
        wanted = np.fromiter(moved_units, dtype=np.int64)
        moved |= (po & np.isin(a["unit_o"], wanted)) | (pn & np.isin(a["unit_n"], wanted))
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
    # The per-therapist spread (active episodes' ORS change per therapist): its rows
    # change with the active ORS-change family and with a transfer between therapists.
    transferred = po & pn & (a["therapist_o"] != a["therapist_n"])
    in_o = act_o & (((num["bits_o"] >> np.uint64(2)) & np.uint64(1)) == 1)
    in_n = act_n & (((num["bits_n"] >> np.uint64(2)) & np.uint64(1)) == 1)
    sure[SPREAD_FIGURE] = sure["active:ors_change"] | (transferred & (in_o | in_n))
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
            if b < POINT_WINDOW:  # the score there is in both fingerprints: exact
                prefix = scale[0]
                sure[token] |= mo & mn & (a[f"{prefix}{b + 1}_o"] != a[f"{prefix}{b + 1}_n"])
            else:
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
            token = f"impl:{m // 12:04d}-{m % 12 + 1:02d}"
            back_o, back_n = old.month - m, new.month - m
            if 0 <= back_o < MONTH_WINDOW and 0 <= back_n < MONTH_WINDOW:
                # both fingerprints hold this month: its sessions changed or not, exactly
                ho = np.where(po, a[f"m{back_o}_o"], 0)
                hn = np.where(pn, a[f"m{back_n}_n"], 0)
                hit = (ho != hn) | (((ho != 0) | (hn != 0)) & moved)
                if hit.any():
                    sure[token] = hit
                continue
            hit = touched & (lo <= m) & (hi >= m)
            if hit.any():
                unsure[token] = hit

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

    tokens = sorted(set(sure) | set(unsure))
    blank = np.zeros(n_rows, dtype=bool)
    sure_m = np.column_stack([sure.get(t, blank) for t in tokens]) if tokens else None
    unsure_m = np.column_stack([unsure.get(t, blank) for t in tokens]) if tokens else None
    if sure_m is None or unsure_m is None:
        empty = np.zeros((0, 0), dtype=bool)
        return Changes([], empty, empty, place.iloc[:0])
    keep = sure_m.any(axis=1) | unsure_m.any(axis=1)
    return Changes(tokens, sure_m[keep], unsure_m[keep], place.loc[keep].reset_index(drop=True))


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


def _cell_incidence(
    place: pd.DataFrame, old_tree: Tree, new_tree: Tree
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """(cells, incidence): the (node, age) cells of the new tree's grid and, per changed
    episode, which of them it counts in — where it was (old tree) and where it is (new
    tree), in its age group and "all"."""
    cells = [(n, a) for n in new_tree.nodes() for a in AGES]
    col = {c: i for i, c in enumerate(cells)}
    out = np.zeros((len(place), len(cells)), dtype=bool)
    for side, tree in (("o", old_tree), ("n", new_tree)):
        nodes_of = _nodes_of_unit(tree)
        root = [node_name(*tree.root)] + (
            [tree.direct(tree.root)] if tree.root in tree.children else []
        )
        unit = place[f"unit_{side}"].to_numpy()
        age = place[f"age_{side}"].to_numpy()
        present = ~np.isnan(unit)
        combos = pd.DataFrame({"u": unit[present], "a": age[present]}).drop_duplicates()
        for u, a in combos.itertuples(index=False):
            rows = present & (unit == u) & (age == a)
            names = ["all", _AGE_NAMES.get(int(a), "all")]
            for node in nodes_of.get(int(u), root):
                for age_name in names:
                    j = col.get((node, age_name))
                    if j is not None:
                        out[rows, j] = True
    return cells, out


def _grid(
    changes: Changes, old_tree: Tree, new_tree: Tree, k: int
) -> tuple[pd.DataFrame, dict[tuple[str, str], bool]]:
    """(grid, spread): per (node, age) × token the change as the grid counts it — 0 when
    nothing changed; the number of changed episodes when that is certainly at least k
    and, after taking away any one therapist's, still at least k, from at least 3
    therapists (a therapist knows their own clients); otherwise 1, a small change — and
    the cells where one therapist's ORS-change family changed by 1 … k−1 (the spread)."""
    cells, inc = _cell_incidence(changes.place, old_tree, new_tree)
    index = pd.MultiIndex.from_tuples(cells, names=["node", "age"])
    if not changes.tokens:
        return pd.DataFrame(index=index), {}
    e = inc.astype(np.float32)
    sure = e.T @ changes.sure.astype(np.float32)  # cells × tokens
    unsure = e.T @ changes.unsure.astype(np.float32)
    top = np.zeros_like(sure)
    therapists = np.zeros_like(sure)
    spread_col = changes.tokens.index(SPREAD_FIGURE) if SPREAD_FIGURE in changes.tokens else None
    spread_small = np.zeros(len(cells), dtype=bool)
    # Each episode once per therapist it had at either date (both know it).
    t_o = changes.place["therapist_o"].to_numpy(dtype=np.uint64)
    t_n = changes.place["therapist_n"].to_numpy(dtype=np.uint64)
    rows = np.r_[np.arange(len(t_o)), np.flatnonzero((t_n != t_o) & (t_n != 0))]
    who = np.r_[t_o, t_n[(t_n != t_o) & (t_n != 0)]]
    rows, who = rows[who != 0], who[who != 0]
    order = np.argsort(who, kind="stable")
    rows, who = rows[order], who[order]
    bounds = np.flatnonzero(np.r_[True, who[1:] != who[:-1], True])
    sure_f = changes.sure.astype(np.float32)
    for lo, hi in itertools.pairwise(bounds.tolist()):
        block = rows[lo:hi]
        mine = e[block].T @ sure_f[block]
        np.maximum(top, mine, out=top)
        therapists += mine > 0
        if spread_col is not None:
            spread_small |= (mine[:, spread_col] > 0) & (mine[:, spread_col] < k)
    large = (sure >= k) & (sure - top >= k) & (therapists >= 3)
    eff = np.where(large, sure, np.where(sure + unsure > 0, 1.0, 0.0))
    grid = pd.DataFrame(eff, index=index, columns=changes.tokens)
    return grid, {cells[i]: True for i in np.flatnonzero(spread_small)}


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
    grid, spread = _grid(change_tokens(old, new, moved), old_tree, tree, k)
    held: Held = {}
    published = {node_name(*n) for n in tree.published}
    extra: dict[tuple[str, str], set[str]] = {}  # held tokens that are no grid column
    if grid.shape[1] and (grid.to_numpy() > 0).any():
        grid = grid.loc[:, (grid > 0).any()]
        forced: pd.DataFrame | None = None
        # Suppress, close every row under rule 2 (complement_parts), feed the parts it
        # adds back as hidden cells, and again until nothing changes: a part added in a
        # unit gets its complement across the units too.
        for _round in range(len(grid.columns) + 2):
            _out, reasons = suppress_table(
                grid,
                k=k,
                count_col=None,
                partition_levels=["age"],
                sibling_sets=_sets_for(grid.index, tree),
                families={c: (c, (c,)) for c in grid.columns},
                forced=forced,
                forced_reason="held",
            )
            hidden = reasons.notna()
            closed = hidden.copy()
            for i, cell in enumerate(grid.index):
                tokens = set(grid.columns[hidden.iloc[i].to_numpy()])
                if not tokens:
                    continue
                more = complement_parts(tokens, grid.iloc[i], k) - tokens
                for token in more:
                    if token in closed.columns:
                        closed.iloc[i, closed.columns.get_loc(token)] = True
                    else:
                        extra.setdefault(cell, set()).add(token)
            if closed.equals(hidden):
                break
            forced = closed
        rows, cols = np.nonzero(hidden.to_numpy())
        for i, c in zip(rows.tolist(), cols.tolist(), strict=True):
            node, age = grid.index[i]
            if node in published:
                held.setdefault((str(node), str(age)), set()).add(str(grid.columns[c]))
    for (node, age), tokens in extra.items():
        if node in published:
            held.setdefault((str(node), str(age)), set()).update(tokens)
    for (node, age), _small in spread.items():
        if node in published:
            held.setdefault((str(node), str(age)), set()).add("spread")
    return held


CLASS_PARTS = ("reliable_improvement", "reliable_deterioration", "no_reliable_change")


def complement_parts(tokens: set[str], changes: pd.Series | None, k: int) -> set[str]:
    """Rule 2 of stats.anonymise for held-back changes within one row: the outcome
    classes add up to the classified, reached target + dropout to the judged ETR base.
    A held total holds its parts; a held part is complemented by the next-smallest
    changed part until the held parts hold two non-zero changes of at least k together,
    else the total is held too (``changes``: the grid's counts per token, 1 = small)."""
    out = set(tokens)

    def size(token: str) -> float:
        if changes is None or token not in changes.index:
            return 0.0
        return float(changes[token])

    groups = [(f"{side}:n_classified", [f"{side}:{p}" for p in CLASS_PARTS]) for side in SIDES3] + [
        ("etr:ended_evaluable", ["etr:reaching_target", "etr:dropout"])
    ]
    for total, parts in groups:
        if total in out:
            out.update(parts)
            continue
        hidden = [p for p in parts if p in out]
        while hidden:
            nonzero = [p for p in hidden if size(p) > 0]
            if len(nonzero) >= 2 and sum(size(p) for p in nonzero) >= k:
                break
            if len(nonzero) < 1:
                break  # nothing changed in the held parts: nothing to recover
            candidates = sorted(
                (p for p in parts if p not in out and size(p) > 0), key=lambda p: size(p)
            )
            if not candidates:
                out.add(total)
                out.update(parts)
                break
            out.add(candidates[0])
            hidden.append(candidates[0])
    return out


def others_changed(old: States, new: States, organisation_id: int, *, k: int) -> set[str]:
    """The benchmark: the tokens (as :func:`change_tokens`) whose change among the *other*
    organisations' episodes is small (a viewer knows their own organisation's change):
    1 … k−1 certain changes, or unsure ones without k certain."""
    changes = change_tokens(old, new)
    if not changes.tokens:
        return set()
    others = changes.place["org"].to_numpy(dtype=np.int64) != int(organisation_id)
    sure = changes.sure[others].sum(axis=0)
    unsure = changes.unsure[others].sum(axis=0)
    small = (sure + unsure > 0) & (sure < k)
    sizes = pd.Series(np.where(small, 1.0, sure), index=changes.tokens)
    return complement_parts(set(sizes.index[small]), sizes, k)


def merge_held(into: Held, more: Held) -> Held:
    for key, cols in more.items():
        into.setdefault(key, set()).update(cols)
    return into


__all__ = [
    "REASON_CHANGED",
    "Changes",
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
