"""Differencing between reports: two published reports must not subtract to a small group.

Two reports of one organisation whose episode sets overlap can be subtracted cell by
cell: a year and its fourth quarter (same reference date: year − Q4 = the episodes with
sessions in January–September only, with their means and counts), "all ages" and
"adults", the organisation and one unit, a unit and its sub-unit. Each report is
suppressed on its own, so the difference is not.

Rule (checked when a report is created and again when it is approved): for every cell
family that *both* reports publish — per side of the table (active / inactive) and per
family of columns that rest on the same episodes (all episodes; those with ≥ 1 / ≥ 2 ORS
or SRS; each outcome class) and per drawn trajectory point (episodes with a score at
that session number) — the symmetric difference of the two episode sets behind it must
be 0 or at least k. A cell hidden in either report cannot be subtracted, so it is not
compared (each report's own complementary suppression already keeps its hidden cells
underivable from its shown ones).

To compare episode sets, each report keeps an internal **fingerprint** of the episodes
behind each published cell *as of freezing* — of each episode together with its state
(stats.publications.state_hashes: its sessions, closing, unit, therapist, age group at
the report's date), so that the same episodes with 1 … k−1 changed figures (a session
entered late; a report of a running period frozen again on a later day) count as a
difference too — (what was published, not what the data says
today: later entries and retention would change a recomputed set). It holds keyed
digests (BLAKE2b keyed with a key derived from ``SECRET_KEY`` and the organisation, 64
bits), never episode ids, and is never exported, shown or sent by the API. Reports
frozen before the fingerprint existed, or under another ``SECRET_KEY``, are compared by
recomputing their sets from their stored selection and reference date (best effort).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Q
from django.utils.crypto import salted_hmac

from stats.publications import state_hashes

from .models import Organisation, Report

FINGERPRINT_VERSION = 3

# The report's columns grouped by the episodes they rest on (the suppression families of
# stats.anonymise.STAT_FAMILIES restricted to the report's columns), with the episodes of
# each family as a mask over the episode frame.
_Mask = Callable[[pd.DataFrame], pd.Series]


def _all(ep: pd.DataFrame) -> pd.Series:
    return pd.Series(True, index=ep.index)


def _outcome(name: str) -> _Mask:
    return lambda ep: ep[name].fillna(False).astype(bool)


CELL_FAMILIES: dict[str, tuple[tuple[str, ...], _Mask]] = {
    "episodes": (("episodes", "sessions_per_episode", "treatment_months"), _all),
    "ors_start": (("ors_start",), lambda ep: ep["n_ors"] >= 1),
    "srs_start": (("srs_start",), lambda ep: ep["n_srs"] >= 1),
    "ors_change": (("ors_change", "effect_size_d"), lambda ep: ep["n_ors"] >= 2),
    "srs_change": (("srs_change",), lambda ep: ep["n_srs"] >= 2),
    "n_classified": (("n_classified",), lambda ep: ep["n_ors"] >= 2),
    "reliable_improvement": (("reliable_improvement",), _outcome("reliable_improvement")),
    "reliable_deterioration": (("reliable_deterioration",), _outcome("reliable_deterioration")),
    "no_reliable_change": (("no_reliable_change",), _outcome("no_reliable_change")),
    "clinically_significant": (("clinically_significant",), _outcome("clinically_significant")),
}


def _side(active: bool) -> str:
    return "active" if active else "inactive"


def published_cells(figures: dict[str, Any]) -> list[str]:
    """The cell families a report's frozen figures show (not hidden), e.g.
    ``"inactive:ors_change"`` or ``"trajectory:ors:3"``."""
    cells: list[str] = []
    for row in figures.get("rows", []):
        hidden = set(row.get("hidden", []))
        for family, (columns, _mask) in CELL_FAMILIES.items():
            if any(c not in hidden for c in columns):
                cells.append(f"{_side(row['active'])}:{family}")
    for point in figures.get("trajectory", []):
        for scale in ("ors", "srs"):
            if point.get(f"n_{scale}") is not None:
                cells.append(f"trajectory:{scale}:{int(point['session_number'])}")
    return cells


# --- Keyed digests --------------------------------------------------------------------


def episode_key(organisation_id: int) -> bytes:
    return salted_hmac(
        "fitplatform.datapolicy.report-fingerprint", str(organisation_id), algorithm="sha256"
    ).digest()


def _key_id(key: bytes) -> str:
    return hashlib.blake2b(b"key-id", key=key, digest_size=8).hexdigest()


def episode_digests(key: bytes, episode_ids: Iterable[int]) -> np.ndarray:
    """Keyed 64-bit digests of ids (episodes, therapists): comparable within one key."""
    return np.array(
        [
            int.from_bytes(
                hashlib.blake2b(str(int(i)).encode(), key=key, digest_size=8).digest(), "little"
            )
            for i in episode_ids
        ],
        dtype=np.uint64,
    )


# --- Fingerprint ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    """Sorted unique digests (one per episode) and, per published cell, which of them
    rest under it (a boolean column of ``members``)."""

    key_id: str
    cells: tuple[str, ...]
    digests: np.ndarray  # uint64, sorted, unique: the episode (keyed)
    members: np.ndarray  # bool, shape (len(digests), len(cells))
    # uint64 per digest: the episode's state at the report's date (keyed hash), so that
    # the same episode with other figures is told apart — counted once as a difference
    states: np.ndarray | None = None

    @property
    def state_of(self) -> np.ndarray:
        return self.states if self.states is not None else np.zeros(len(self.digests), np.uint64)

    @property
    def elements(self) -> np.ndarray:
        """One key per (episode, state): what a figure adds up."""
        return self.digests ^ (self.state_of * np.uint64(0x9E3779B97F4A7C15))

    @property
    def column(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.cells)}


def _fingerprint(
    organisation_id: int,
    figures: dict[str, Any],
    frame: pd.DataFrame,
    episodes: pd.DataFrame | None,
) -> Fingerprint:
    key = episode_key(organisation_id)
    cells = published_cells(figures)
    if episodes is None or episodes.empty or not cells:
        return Fingerprint(
            _key_id(key),
            tuple(cells),
            np.zeros(0, np.uint64),
            np.zeros((0, len(cells)), bool),
            np.zeros(0, np.uint64),
        )
    ids = episodes.index.to_numpy()
    position = pd.Series(np.arange(len(ids)), index=ids)
    members = np.zeros((len(ids), len(cells)), dtype=bool)
    with_ors = frame.loc[frame["ors"].notna(), ["episode_id", "session_number"]]
    with_srs = frame.loc[frame["srs"].notna(), ["episode_id", "session_number"]]
    for j, cell in enumerate(cells):
        part, _sep, rest = cell.partition(":")
        if part == "trajectory":
            scale, _sep, number = rest.partition(":")
            scored = with_ors if scale == "ors" else with_srs
            at = scored.loc[scored["session_number"] == int(number), "episode_id"].unique()
            members[position.loc[at].to_numpy(), j] = True
        else:
            mask = CELL_FAMILIES[rest][1](episodes) & (
                episodes["active"].astype(bool) == (part == "active")
            )
            members[:, j] = mask.to_numpy(dtype=bool)
    # Value-aware (v3): with each episode its state at the report's date, so that two
    # reports with the same episodes but 1 … k−1 changed ones (a session entered late, a
    # running period frozen again) differ by those — each counted once.
    as_of = pd.Timestamp(figures.get("as_of") or frame["session_date"].max()).date()
    states = state_hashes(frame, as_of=as_of, key=key).reindex(ids).to_numpy(dtype=np.uint64)
    digests = episode_digests(key, ids)
    order = np.argsort(digests, kind="stable")
    digests, members, states = digests[order], members[order], states[order]
    unique = np.ones(len(digests), dtype=bool)
    unique[1:] = digests[1:] != digests[:-1]  # a 64-bit collision: keep one (negligible)
    return Fingerprint(_key_id(key), tuple(cells), digests[unique], members[unique], states[unique])


def encode(fp: Fingerprint) -> bytes:
    header = json.dumps(
        {"v": FINGERPRINT_VERSION, "key": fp.key_id, "cells": list(fp.cells), "n": len(fp.digests)}
    ).encode()
    bits = np.packbits(fp.members, axis=1) if fp.cells else np.zeros((len(fp.digests), 0), np.uint8)
    body = struct.pack(">I", len(header)) + header + fp.digests.astype("<u8").tobytes()
    return zlib.compress(body + bits.tobytes() + fp.state_of.astype("<u8").tobytes())


def decode(blob: bytes) -> Fingerprint:
    body = zlib.decompress(bytes(blob))
    (size,) = struct.unpack(">I", body[:4])
    header = json.loads(body[4 : 4 + size])
    if header.get("v") != FINGERPRINT_VERSION:
        raise ValueError("unknown fingerprint version")
    n, cells = int(header["n"]), tuple(header["cells"])
    offset = 4 + size
    digests = np.frombuffer(body, dtype="<u8", count=n, offset=offset).astype(np.uint64)
    offset += 8 * n
    width = (len(cells) + 7) // 8
    packed = np.frombuffer(body, dtype=np.uint8, count=n * width, offset=offset)
    members = np.unpackbits(packed.reshape(n, width), axis=1, count=len(cells)).astype(bool)
    offset += n * width
    states = np.frombuffer(body, dtype="<u8", count=n, offset=offset).astype(np.uint64)
    return Fingerprint(header["key"], cells, digests, members, states)


def build_fingerprint(
    organisation: Organisation,
    figures: dict[str, Any],
    frame: pd.DataFrame,
    episodes: pd.DataFrame | None,
) -> bytes:
    """The encoded fingerprint of a report's published cells (stored, never shown)."""
    return encode(_fingerprint(organisation.pk, figures, frame, episodes))


def fingerprint_of(report: Report) -> Fingerprint:
    """The report's stored fingerprint, or — for a report frozen before fingerprints or
    under another SECRET_KEY — its sets recomputed from its selection (best effort)."""
    key_id = _key_id(episode_key(report.organisation_id))
    blob = bytes(report.episode_fingerprint or b"")
    if blob:
        try:
            fp = decode(blob)
        except (ValueError, zlib.error, struct.error, KeyError):
            fp = None
        if fp is not None and fp.key_id == key_id:
            return fp
    if not published_cells(report.figures) or "as_of" not in report.figures:
        return _fingerprint(report.organisation_id, {}, pd.DataFrame(), None)  # shows nothing
    from .reports import _selection_frames

    as_of = dt.date.fromisoformat(report.figures["as_of"])
    frame, episodes = _selection_frames(report.organisation, report.selection, as_of)
    return _fingerprint(report.organisation_id, report.figures, frame, episodes)


# --- Comparison -----------------------------------------------------------------------


def small_differences(a: Fingerprint, b: Fingerprint, k: int) -> list[str]:
    """The cells both publish whose episode sets differ by 1 … k−1 (symmetric difference)."""
    common = [c for c in a.cells if c in set(b.cells)]
    if not common:
        return []
    col_a, col_b = a.column, b.column
    ma = a.members[:, [col_a[c] for c in common]]
    mb = b.members[:, [col_b[c] for c in common]]
    _both, ia, ib = np.intersect1d(a.digests, b.digests, assume_unique=True, return_indices=True)
    in_both = ma[ia] & mb[ib]
    # in both cells but with other figures (a changed state): a difference, counted once
    restated = in_both & (a.state_of[ia] != b.state_of[ib])[:, None]
    delta = ma.sum(axis=0) + mb.sum(axis=0) - 2 * in_both.sum(axis=0) + restated.sum(axis=0)
    return [c for c, d in zip(common, delta, strict=True) if 0 < int(d) < k]


def comparable_reports(organisation: Organisation, exclude_pk: int | None = None) -> Any:
    """The organisation's reports a new or approved report must not subtract to a small
    group with: drafts and approved reports, and withdrawn reports that were exported
    (their figures have left the organisation). Only this organisation's reports."""
    qs = (
        Report.objects.for_org(organisation)
        .filter(
            Q(status__in=[Report.Status.DRAFT, Report.Status.APPROVED])
            | Q(status=Report.Status.WITHDRAWN, events__action="exported")
        )
        .distinct()
        .order_by("created_at", "pk")
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs


def first_conflict(
    organisation: Organisation,
    figures: dict[str, Any],
    fingerprint: Fingerprint,
    exclude_pk: int | None = None,
) -> tuple[list[Report], int] | None:
    """The comparable reports that a report with these figures and fingerprint could be
    combined with to reveal fewer than k episodes, with that k: first one report it could
    be subtracted from (pairwise rule), else several whose published cells together
    isolate a small group (:func:`isolated_groups`)."""
    others = list(comparable_reports(organisation, exclude_pk))
    prints = [fingerprint_of(other) for other in others]
    k_all = max(
        [organisation.small_cell_k, int(figures.get("k", 0))]
        + [int(o.figures.get("k", 0)) for o in others]
    )
    for other, fp in zip(others, prints, strict=True):
        k = max(organisation.small_cell_k, int(figures.get("k", 0)), int(other.figures.get("k", 0)))
        if small_differences(fingerprint, fp, k):
            return [other], k
    if not others:
        return None
    before = {group for group, _users in isolated_groups(prints, k_all)}
    for group, users in isolated_groups([*prints, fingerprint], k_all):
        if group not in before:
            return [others[i] for i in sorted(users) if i < len(others)], k_all
    return None


# --- Several reports together ------------------------------------------------------------


def _family_of(cell: str) -> str:
    """Cells of one family rest on the same per-episode quantity, whatever the report or
    side ("active:ors_start" and "inactive:ors_start" → "ors_start"); trajectory counts are
    their own family per scale and session number."""
    part, _sep, rest = cell.partition(":")
    return cell if part == "trajectory" else rest


def isolated_groups(
    prints: list[Fingerprint], k: int
) -> list[tuple[tuple[str, frozenset[int]], set[int]]]:
    """Groups of 1 … k−1 episodes whose sum a combination of published cells gives.

    Per family, the published cells of all reports cut the episodes into *atoms* (the
    episodes in exactly the same cells). A cell's figure (a count, or n × mean) is the sum
    of its atoms; an atom's own sum can be had by adding and subtracting published cells
    exactly when its indicator lies in the row space of the cell × atom incidence matrix
    — its leverage (squared norm of its row in the right singular vectors of the matrix's
    rank) is 1. ``year − H1 − Q3``, ``organisation − unit A − unit B``: such an atom of
    1 … k−1 episodes is returned as ((family, its digests), the indexes in ``prints`` of
    the reports whose cells the combination uses). Pairs are the pairwise rule's
    (:func:`small_differences`, which also sees signed differences); this one sees any
    number of reports, single atoms only."""
    found: list[tuple[tuple[str, frozenset[int]], set[int]]] = []
    families = sorted({_family_of(c) for fp in prints for c in fp.cells})
    for family in families:
        cells = [(i, c) for i, fp in enumerate(prints) for c in fp.cells if _family_of(c) == family]
        if len(cells) < 2:
            continue
        digests, cell_ids = [], []
        for j, (i, c) in enumerate(cells):
            fp = prints[i]
            members = fp.elements[fp.members[:, fp.column[c]]]
            digests.append(members)
            cell_ids.append(np.full(len(members), j, dtype=np.int64))
        if not digests or not sum(len(d) for d in digests):
            continue
        pairs = pd.DataFrame({"d": np.concatenate(digests), "cell": np.concatenate(cell_ids)})
        incidence = pd.crosstab(pairs["d"], pairs["cell"]).clip(upper=1)
        unique, atom_of = np.unique(incidence.to_numpy(dtype=np.int8), axis=0, return_inverse=True)
        atom_of = atom_of.reshape(-1)
        atoms = unique.astype(float)  # atom × cell
        sizes = np.bincount(atom_of, minlength=len(atoms))
        matrix = atoms.T  # cell × atom
        _u, sv, vt = np.linalg.svd(matrix, full_matrices=False)
        tol = (sv.max() if sv.size else 0.0) * max(matrix.shape) * np.finfo(float).eps
        rank = int((sv > tol).sum())
        leverage = (vt[:rank] ** 2).sum(axis=0)
        # An atom that is a published cell on its own was decided by that report's own
        # suppression (with its k), not found by combining.
        alone = np.zeros(len(atoms), dtype=bool)
        for row in matrix:
            if row.sum() == 1:
                alone[np.flatnonzero(row)[0]] = True
        for a in np.flatnonzero((leverage > 1 - 1e-7) & (sizes > 0) & (sizes < k) & ~alone):
            target = np.zeros(atoms.shape[0])
            target[a] = 1.0
            coef = np.linalg.lstsq(matrix.T, target, rcond=None)[0]
            users = {cells[j][0] for j in np.flatnonzero(np.abs(coef) > 1e-7)}
            group = frozenset(int(d) for d in incidence.index[atom_of == a])
            found.append(((family, group), users))
    return found
