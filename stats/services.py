"""Write side of the statistics: compute snapshots in bulk and store them.

One pipeline serves the nightly full recompute, the incremental recompute after a
change and the on-demand computation of a past reference date: read the sessions with
one bulk query, compute every scope level with vectorised groupbys (engine functions
with ``by=``), and upsert the snapshots in one statement. No query per object, no loop
over clients or therapists (the only loops are over organisations with different
settings and over the output records when building JSON).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from datapolicy.models import Organisation, Unit

from .engine import (
    DATA_QUALITY_COLUMNS,
    StatsSettings,
    data_quality,
    episode_frame,
    group_aggregate,
    implementation_by_unit_month,
    median_trajectory,
    sort_by_episode,
    statistics_table,
)
from .etr import (
    EtrModel,
    etr_fit,
    etr_fit_many,
    etr_scope_figures_many,
    etr_with_fallback,
    ors_points,
    reference_mask,
)
from .frames import org_stats_settings, sessions_frame_bulk
from .models import CURRENT, DirtyScope, Publication, RecomputeRun, ScopeKind, StatsSnapshot

log = logging.getLogger(__name__)

AGE_FILTERS = ("all", "adult", "youth", "child")
ScopeKey = tuple[str, int, int]  # (kind, organisation id (0 = platform), scope id)

ETR_SUM_COLUMNS = [
    "ended",
    "ended_evaluable",
    "reaching_target",
    "dropout",
    "ended_single_ors",
    "ended_no_etr",
    "n_relative_effect",
]


# Columns of the episode frame that statistics_table reads (stacking copies only these).
TABLE_INPUT_COLUMNS = [
    "active",
    "n_sessions",
    "treatment_days",
    "first_srs",
    "first_ors",
    "srs_change",
    "ors_change",
    "n_ors",
    "reliable_improvement",
    "reliable_deterioration",
    "no_reliable_change",
    "clinically_significant",
]
LEVEL_KINDS = {
    0: ScopeKind.THERAPIST,
    1: ScopeKind.UNIT,
    2: ScopeKind.ORGANISATION,
    3: ScopeKind.PLATFORM,
}
LEVEL_CODES: dict[str, int] = {str(kind): code for code, kind in LEVEL_KINDS.items()}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN → None, dates → ISO) via pandas' C JSON writer,
    an order of magnitude faster than converting value by value."""
    out = df.copy(deep=False)
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
        elif isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
    records: list[dict[str, Any]] = json.loads(out.to_json(orient="records", double_precision=15))
    return records


def _grouped(df: pd.DataFrame, keys: list[str]) -> dict[tuple, list[dict[str, Any]]]:
    """Records of ``df`` (index reset) bucketed by the key columns (one pass)."""
    flat = df.reset_index()
    out: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in _records(flat):
        out[tuple(row.pop(k) for k in keys)].append(row)
    return out


@dataclass
class Selection:
    """Which scopes to compute (None = every scope in the frame)."""

    therapists: set[tuple[int, int]] | None = None  # (org id, therapist id)
    units: set[int] | None = None
    organisations: set[int] | None = None
    platform: bool = True
    # Organisation ETR models to reuse instead of refitting (incremental recompute: one
    # session moves a regression on thousands of episodes by nothing; refitted nightly).
    etr_models: dict[int, EtrModel] = field(default_factory=dict)


@dataclass
class Context:
    """What the computation needs besides the sessions (read once, in bulk)."""

    settings: dict[int, StatsSettings]
    unit_parent: dict[int, int | None]
    unit_org: dict[int, int]
    deactivated: set[int] = field(default_factory=set)
    platform_model: EtrModel | None = None


def context_for(org_ids: Iterable[int] | None) -> Context:
    from datapolicy.models import Membership, Role

    orgs = (
        Organisation.objects.all()
        if org_ids is None
        else Organisation.objects.filter(pk__in=list(org_ids))
    )
    settings = {o.pk: org_stats_settings(o) for o in orgs}
    units = Unit.dangerously_unscoped.filter(organisation_id__in=list(settings)).values_list(
        "id", "parent_id", "organisation_id"
    )
    parent: dict[int, int | None] = {}
    unit_org: dict[int, int] = {}
    for uid, pid, oid in units:
        parent[uid] = pid
        unit_org[uid] = oid
    # Ghost episodes: the therapist's user is deactivated, or none of their therapist
    # memberships in the organisation is active any more.
    members = Membership.dangerously_unscoped.filter(
        organisation_id__in=list(settings), role=Role.THERAPIST
    ).values_list("user_id", "is_active", "user__is_active")
    active: set[int] = set()
    seen: set[int] = set()
    for uid, m_active, u_active in members:
        seen.add(uid)
        if m_active and u_active:
            active.add(uid)
    return Context(
        settings=settings, unit_parent=parent, unit_org=unit_org, deactivated=seen - active
    )


def _unit_ancestors(parent: dict[int, int | None]) -> pd.DataFrame:
    """(unit_id, scope_unit) pairs: each unit counts in its own and every ancestor's scope."""
    pairs: list[tuple[int, int]] = []
    for uid in parent:
        cur: int | None = uid
        seen = 0
        while cur is not None and seen < 50:
            pairs.append((uid, cur))
            cur = parent.get(cur)
            seen += 1
    return pd.DataFrame(pairs, columns=["unit_id", "scope_unit"], dtype="int64")


def _with_scope_unit(df: pd.DataFrame, ancestors: pd.DataFrame) -> pd.DataFrame:
    if len(ancestors) == ancestors["unit_id"].nunique():  # no nesting: identity
        return df.assign(scope_unit=df["unit_id"])
    idx = df.index.name
    out = df.reset_index().merge(ancestors, on="unit_id", how="inner")
    return out.set_index(idx) if idx else out


def _settings_groups(ctx: Context, org_ids: np.ndarray) -> list[tuple[StatsSettings, list[int]]]:
    # StatsSettings holds a dict (unhashable): group by its repr.
    groups: dict[str, tuple[StatsSettings, list[int]]] = {}
    for oid in org_ids.tolist():
        st = ctx.settings.get(int(oid), StatsSettings())
        groups.setdefault(repr(st), (st, []))[1].append(int(oid))
    return list(groups.values())


# A full recompute splits its computation over two processes when the frame is this large
# (below it, forking costs more than it saves); tests lower it to cover the forked path.
SECOND_PROCESS_MIN_ROWS = 200_000


def _use_second_process(frame: pd.DataFrame) -> bool:
    from django.conf import settings

    return (
        len(frame) >= SECOND_PROCESS_MIN_ROWS
        and (os.cpu_count() or 1) > 1
        and hasattr(os, "fork")
        and bool(getattr(settings, "STATS_SECOND_PROCESS", True))
    )


class _ForkedPart:
    """Runs ``fn`` in a forked child process (it sees this process's frames copy-on-write,
    and never touches the database connection) and hands back its pickled result.
    ``result()`` is None when the child could not be started or failed; the caller then
    computes that part itself.

    ``os.fork`` directly, not ``multiprocessing``: the nightly job runs inside a Celery
    prefork worker, a daemonic process, and multiprocessing refuses to start children
    there. The child leaves with ``os._exit`` (no atexit handlers, no connection
    shutdown on the socket it shares with the parent)."""

    def __init__(self, fn: Any) -> None:
        self._pid = 0
        self._read = -1
        try:
            read, write = os.pipe()
            pid = os.fork()
        except OSError as exc:  # e.g. not allowed to fork here
            log.warning("stats: second process not started (%s)", type(exc).__name__)
            return
        if pid == 0:  # the child
            code = 0
            try:
                os.close(read)
                try:
                    out: tuple[str, Any] = ("ok", fn())
                except BaseException as exc:  # reported to the parent, type only
                    out = ("error", type(exc).__name__)
                    code = 1
                with os.fdopen(write, "wb") as sink:
                    pickle.dump(out, sink, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                code = 2
            finally:
                os._exit(code)
        os.close(write)
        self._pid, self._read = pid, read

    def result(self) -> Any:
        if not self._pid:
            return None
        try:
            with os.fdopen(self._read, "rb") as source:
                status, value = pickle.load(source)  # noqa: S301 - our own forked child
        except (EOFError, OSError, pickle.UnpicklingError):
            status, value = "error", "no result"
        finally:
            os.waitpid(self._pid, 0)
            self._pid = 0
        if status != "ok":
            log.warning("stats: second process failed (%s); computing here", value)
            return None
        return value


def _run_part(
    part: Any, table_keys: set[ScopeKey], ctx: Context
) -> tuple[dict[ScopeKey, dict[str, Any]], EtrModel | None]:
    """In the child: run ``part`` on empty payloads of the scopes with a table; return
    what it set and the platform ETR model it fitted."""
    payloads: dict[ScopeKey, dict[str, Any]] = defaultdict(dict)
    for key in table_keys:
        payloads[key] = {}
    part(payloads)
    return {k: v for k, v in payloads.items() if v}, ctx.platform_model


def _table_keys(narrowed: list[Any], level_key: Any, want: Any) -> set[ScopeKey]:
    """The scopes that get a table (the groups of the stacked table, as filtered there)."""
    keys: set[ScopeKey] = set()
    for kind, by, e, _s in narrowed:
        if kind == ScopeKind.PLATFORM:
            pairs = [(0, 0)]
        else:
            a = e[by[0]].to_numpy(dtype="int64")
            b = e[by[-1]].to_numpy(dtype="int64")
            pairs = pd.DataFrame({"a": a, "b": b}).drop_duplicates().itertuples(index=False)
        for a_, b_ in pairs:
            key = level_key(LEVEL_CODES[str(kind)], int(a_), int(b_))
            if want(key[0], (a_, b_) if key[0] != ScopeKind.ORGANISATION else (a_,)):
                keys.add(key)
    return keys


def _episodes(
    frame: pd.DataFrame, ctx: Context, as_of_ts: pd.Timestamp
) -> tuple[list[tuple[StatsSettings, list[int]]], dict[str, pd.DataFrame], pd.DataFrame]:
    """The episode frame, each organisation with its own settings (usually one group):
    (settings groups, episode frame per group, all episodes)."""
    groups = _settings_groups(ctx, np.unique(frame["org_id"].to_numpy()))
    parts = []
    ep_parts: dict[str, pd.DataFrame] = {}
    for st, ids in groups:
        part = frame if len(groups) == 1 else frame.loc[frame["org_id"].isin(ids)]
        ep_parts[repr(st)] = episode_frame(part, as_of=as_of_ts, settings=st)
        parts.append(ep_parts[repr(st)])
    ep = parts[0] if len(parts) == 1 else pd.concat(parts)
    return groups, ep_parts, ep


def compute_payloads(
    frame: pd.DataFrame,
    ctx: Context,
    *,
    as_of: date,
    selection: Selection | None = None,
) -> dict[ScopeKey, dict[str, Any]]:
    """Every selected scope's payload from one sessions frame (vectorised per level)."""
    sel = selection or Selection()
    as_of_ts = pd.Timestamp(as_of)
    # Sorted once by (episode, session number): every engine call below then skips its sort.
    frame = sort_by_episode(frame.loc[frame["session_date"] <= as_of_ts])
    payloads: dict[ScopeKey, dict[str, Any]] = defaultdict(dict)
    if frame.empty:
        return {}
    groups, ep_parts, ep = _episodes(frame, ctx, as_of_ts)

    ancestors = _unit_ancestors(ctx.unit_parent)
    ep_u = _with_scope_unit(ep, ancestors)
    fr_u = _with_scope_unit(frame, ancestors)

    def want(kind: str, keys: tuple) -> bool:
        if kind == ScopeKind.THERAPIST:
            return sel.therapists is None or keys in sel.therapists
        if kind == ScopeKind.UNIT:
            return sel.units is None or keys[1] in sel.units
        if kind == ScopeKind.ORGANISATION:
            return sel.organisations is None or keys[0] in sel.organisations
        return sel.platform

    levels: list[tuple[str, list[str], pd.DataFrame, pd.DataFrame]] = [
        (ScopeKind.THERAPIST, ["org_id", "therapist_id"], ep, frame),
        (ScopeKind.UNIT, ["org_id", "scope_unit"], ep_u, fr_u),
        (ScopeKind.ORGANISATION, ["org_id"], ep, frame),
    ]
    if sel.platform:
        levels.append(
            (ScopeKind.PLATFORM, ["_p"], ep.assign(_p=0), frame.assign(_p=0))  # one group
        )

    def key_of(kind: str, keys: tuple) -> ScopeKey:
        if kind == ScopeKind.PLATFORM:
            return (kind, 0, 0)
        if kind == ScopeKind.ORGANISATION:
            return (kind, int(keys[0]), int(keys[0]))
        return (kind, int(keys[0]), int(keys[1]))

    # Narrow each level to the wanted scopes (incremental recompute), then compute the
    # tables of all levels in ONE groupby over the stacked episode rows (a level is one
    # key pair (_a, _b)), which saves the fixed cost of one aggregation per level.
    narrowed: list[tuple[str, list[str], pd.DataFrame, pd.DataFrame]] = []
    for kind, by, e, s in levels:
        if kind == ScopeKind.THERAPIST and sel.therapists is not None:
            tids = [t for _, t in sel.therapists]
            e = e.loc[e["therapist_id"].isin(tids)]
            s = s.loc[s["therapist_id"].isin(tids)]
        elif kind == ScopeKind.UNIT and sel.units is not None:
            e = e.loc[e["scope_unit"].isin(list(sel.units))]
            s = s.loc[s["scope_unit"].isin(list(sel.units))]
        elif kind == ScopeKind.ORGANISATION and sel.organisations is not None:
            e = e.loc[e["org_id"].isin(list(sel.organisations))]
            s = s.loc[s["org_id"].isin(list(sel.organisations))]
        if not e.empty:
            narrowed.append((kind, by, e, s))

    def stacked(parts: list[tuple[str, list[str], pd.DataFrame]], extra: list[str]) -> Any:
        cols = [*TABLE_INPUT_COLUMNS, *extra]
        frames = []
        for kind, by, e in parts:
            a = e[by[0]].to_numpy() if kind != ScopeKind.PLATFORM else 0
            b = e[by[-1]].to_numpy() if kind != ScopeKind.PLATFORM else 0
            frames.append(e[cols].assign(_lvl=LEVEL_CODES[str(kind)], _a=a, _b=b))
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def level_key(lvl: int, a: int, b: int) -> ScopeKey:
        kind = LEVEL_KINDS[lvl]
        return key_of(kind, (a, b) if kind != ScopeKind.ORGANISATION else (a,))

    def tables_and_trajectories(payloads: dict[ScopeKey, dict[str, Any]]) -> None:
        if narrowed:
            table = statistics_table(
                stacked([(k, by, e) for k, by, e, _ in narrowed], []), by=["_lvl", "_a", "_b"]
            )
            for (lvl, a, b), rows in _grouped(table, ["_lvl", "_a", "_b"]).items():
                key = level_key(lvl, a, b)
                if want(key[0], (a, b) if key[0] != ScopeKind.ORGANISATION else (a,)):
                    payloads[key]["table"] = {
                        ("active" if r.pop("active") else "inactive"): r for r in rows
                    }
            # Per-therapist spread of units and organisations (anonymous; shown only with
            # >= 3 therapists), again one groupby for both levels.
            spread_parts = [
                (k, by, e)
                for k, by, e, _ in narrowed
                if k in (ScopeKind.UNIT, ScopeKind.ORGANISATION)
            ]
            if spread_parts:
                per_t = statistics_table(
                    stacked(spread_parts, ["therapist_id"]), by=["_lvl", "_a", "_b", "therapist_id"]
                )
                per_t = per_t.xs(True, level="active")[["episodes", "n_ors_change", "ors_change"]]
                per_t = per_t.reset_index("therapist_id", drop=True)
                for (lvl, a, b), rows in _grouped(per_t, ["_lvl", "_a", "_b"]).items():
                    key = level_key(lvl, a, b)
                    if key in payloads:
                        rows.sort(key=lambda r: (r["ors_change"] is None, r["ors_change"] or 0.0))
                        payloads[key]["therapist_spread"] = rows
        for kind, by, _e, s in narrowed:
            traj = median_trajectory(s, by=by)
            for keys, rows in _grouped(traj, by).items():
                if want(kind, keys):
                    payloads[key_of(kind, keys)]["trajectory"] = rows

    def implementation_quality_etr(payloads: dict[ScopeKey, dict[str, Any]]) -> None:
        # Sets its figures only on the scopes already in ``payloads`` (those with a
        # table), and the platform's ETR model.
        # Implementation per unit (with sub-units) and organisation.
        impl_frames = [
            (ScopeKind.UNIT, fr_u.assign(unit_id=fr_u["scope_unit"])),
            (ScopeKind.ORGANISATION, frame.assign(unit_id=0)),
        ]
        for kind, f in impl_frames:
            if kind == ScopeKind.UNIT and sel.units is not None:
                f = f.loc[f["unit_id"].isin(list(sel.units))]
            if kind == ScopeKind.ORGANISATION and sel.organisations is not None:
                f = f.loc[f["org_id"].isin(list(sel.organisations))]
            if f.empty:
                continue
            impl = implementation_by_unit_month(f)
            for keys, rows in _grouped(impl, ["org_id", "unit_id"]).items():
                k2 = key_of(kind, keys if kind == ScopeKind.UNIT else (keys[0],))
                if k2 in payloads:
                    payloads[k2]["implementation"] = rows

        # Data quality: counts per base unit (one pass), summed up to units and organisations.
        dq_parts = []
        for st, ids in groups:
            part = frame if len(groups) == 1 else frame.loc[frame["org_id"].isin(ids)]
            dq_parts.append(
                data_quality(
                    part,
                    as_of=as_of_ts,
                    settings=st,
                    deactivated_therapist_ids=ctx.deactivated,
                    episodes=ep_parts[repr(st)],
                )
            )
        dq = (pd.concat(dq_parts) if len(dq_parts) > 1 else dq_parts[0]).reset_index()
        dq_u = _with_scope_unit(dq, ancestors)
        for kind, by, d in (
            (ScopeKind.UNIT, ["org_id", "scope_unit"], dq_u),
            (ScopeKind.ORGANISATION, ["org_id"], dq),
        ):
            summed = group_aggregate(d, by, lambda g: g[DATA_QUALITY_COLUMNS].sum())
            for keys, rows in _grouped(summed, by).items():
                k2 = key_of(kind, keys)
                if k2 in payloads:
                    payloads[k2]["quality"] = rows[0]

        _etr_payloads(frame, ep, ctx, as_of_ts, payloads, sel, ancestors)

    if _use_second_process(frame):
        # The two halves are independent: the second runs in a forked child process (the
        # frames are shared copy-on-write) while this one computes the first.
        table_keys = _table_keys(narrowed, level_key, want)
        child = _ForkedPart(lambda: _run_part(implementation_quality_etr, table_keys, ctx))
        tables_and_trajectories(payloads)
        result = child.result()
        if result is None:  # the child failed: compute its half here (logged)
            implementation_quality_etr(payloads)
        else:
            parts, ctx.platform_model = result
            for key, part in parts.items():
                payloads[key].update(part)
    else:
        tables_and_trajectories(payloads)
        implementation_quality_etr(payloads)

    # Distinct therapists of the episodes attached to a unit itself (not its sub-units):
    # a parent unit minus its child units is these episodes, so the anonymisation treats
    # them as one more sibling (stats.siblings) and needs their number of therapists.
    direct = ep.groupby(["org_id", "unit_id"], sort=False)["therapist_id"].nunique()
    for (oid, uid), n in direct.items():
        ukey: ScopeKey = (ScopeKind.UNIT, int(oid), int(uid))
        if ukey in payloads:
            payloads[ukey]["n_therapists_direct"] = int(n)

    for key, p in payloads.items():
        p.setdefault("trajectory", [])
        p.setdefault("therapist_spread", [])
        p["as_of"] = as_of.isoformat()
        # distinct therapists over the scope's episodes (the spread has one row each)
        p["n_therapists"] = len(p.get("therapist_spread", []))
        if key[0] == ScopeKind.UNIT:
            p.setdefault("n_therapists_direct", 0)
        p["scope"] = {"kind": key[0], "organisation_id": key[1], "id": key[2]}
    return {k: v for k, v in payloads.items() if "table" in v}


def _etr_payloads(
    frame: pd.DataFrame,
    ep: pd.DataFrame,
    ctx: Context,
    as_of_ts: pd.Timestamp,
    payloads: dict[ScopeKey, dict[str, Any]],
    sel: Selection,
    ancestors: pd.DataFrame,
) -> None:
    """ETR model per organisation (own data, platform fallback) and the ETR figures.

    The ORS points are computed once for all organisations; the models are fitted in one
    grouped pass and the zones and figures of all organisations (each with its own model)
    computed in another.
    """
    pts = ors_points(frame)
    pts_org = ep["org_id"].reindex(pts["episode_id"].to_numpy()).to_numpy()
    # Reference data: closed and active episodes only (an open episode past the
    # inactivity window is neither); the zones below are judged for every episode.
    is_ref = reference_mask(pts, ep)
    ref_pts = pts if is_ref is None else pts.loc[is_ref]
    ref_org = pts_org if is_ref is None else pts_org[is_ref]
    if sel.platform:
        ctx.platform_model = etr_fit(frame, StatsSettings(), points=ref_pts)
        payloads[(ScopeKind.PLATFORM, 0, 0)]["etr_model"] = ctx.platform_model.to_dict()
    org_ids = [int(o) for o in np.unique(ep["org_id"].to_numpy())]
    # Every organisation's own model in one grouped fit (except the models reused).
    fitted = etr_fit_many(
        ref_pts,
        ref_org,
        {
            oid: ctx.settings.get(oid, StatsSettings())
            for oid in org_ids
            if oid not in sel.etr_models
        },
    )
    models: dict[int, EtrModel] = {}
    for oid in org_ids:
        reused = sel.etr_models.get(oid)
        own = reused if reused is not None else fitted[oid]
        okey = (ScopeKind.ORGANISATION, oid, oid)
        if okey in payloads:
            payloads[okey]["etr_model"] = own.to_dict()
        models[oid] = etr_with_fallback(own, ctx.platform_model)
    if not models:
        return
    # The figures of every organisation (each with its own model) in one grouped pass:
    # one row per (organisation, unit, therapist).
    base = etr_scope_figures_many(
        ep, pts, pts_org, models, group_column="org_id", by=["org_id", "unit_id", "therapist_id"]
    ).reset_index()
    base["rel_sum"] = base["relative_effect_size"].fillna(0.0) * base["n_relative_effect"]
    cols = [*ETR_SUM_COLUMNS, "rel_sum"]
    # Only the unit level counts a row in its unit and every ancestor; the other levels
    # sum the rows once (a therapist in a nested unit is not counted once per ancestor).
    level_keys: list[tuple[str, list[str], pd.DataFrame]] = [
        (ScopeKind.THERAPIST, ["org_id", "therapist_id"], base),
        (ScopeKind.UNIT, ["org_id", "scope_unit"], _with_scope_unit(base, ancestors)),
        (ScopeKind.ORGANISATION, ["org_id"], base),
        (ScopeKind.PLATFORM, ["_p"], base.assign(_p=0)),
    ]
    for kind, by, b in level_keys:
        agg = group_aggregate(b, by, lambda g: g[cols].sum())
        n = agg["ended_evaluable"].astype(float)
        agg["reaching_target_share"] = (agg["reaching_target"] / n).where(n > 0)
        agg["dropout_share"] = (agg["dropout"] / n).where(n > 0)
        nr = agg["n_relative_effect"].astype(float)
        agg["relative_effect_size"] = (agg["rel_sum"] / nr).where(nr > 0)
        agg = agg.drop(columns=["rel_sum"])
        for keys, rows in _grouped(agg, by).items():
            if kind == ScopeKind.PLATFORM:
                key: ScopeKey = (kind, 0, 0)
            elif kind == ScopeKind.ORGANISATION:
                key = (kind, int(keys[0]), int(keys[0]))
            else:
                key = (kind, int(keys[0]), int(keys[1]))
            if key in payloads:
                payloads[key]["etr"] = rows[0]


def _filter_age(frame: pd.DataFrame, age_group: str) -> pd.DataFrame:
    if age_group == "all":
        return frame
    return frame.loc[frame["age_group"].astype(str) == age_group]


def snapshots_store(
    payloads: dict[ScopeKey, dict[str, Any]],
    *,
    as_of: date,
    period_key: str,
    age_group: str,
    now: Any = None,
) -> int:
    """Idempotent bulk upsert (COPY + one INSERT … ON CONFLICT on PostgreSQL)."""
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        return _store_copy(
            payloads, as_of=as_of, period_key=period_key, age_group=age_group, now=now
        )
    objs = [
        StatsSnapshot(
            scope_kind=kind,
            organisation_id=oid,
            scope_id=sid,
            period_key=period_key,
            age_group=age_group,
            as_of=as_of,
            computed_at=now,
            payload=p,
        )
        for (kind, oid, sid), p in payloads.items()
    ]
    StatsSnapshot.objects.bulk_create(
        objs,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["scope_kind", "organisation_id", "scope_id", "period_key", "age_group"],
        update_fields=["as_of", "computed_at", "payload"],
    )
    return len(objs)


_SNAPSHOT_COLUMNS = (
    "scope_kind, organisation_id, scope_id, period_key, age_group, as_of, computed_at, payload"
)
_UPSERT_SQL = """
INSERT INTO stats_statssnapshot
    (scope_kind, organisation_id, scope_id, period_key, age_group, as_of, computed_at, payload)
SELECT scope_kind, organisation_id, scope_id, period_key, age_group, as_of, computed_at, payload
FROM stats_snapshot_load
ON CONFLICT (scope_kind, organisation_id, scope_id, period_key, age_group)
DO UPDATE SET as_of = EXCLUDED.as_of, computed_at = EXCLUDED.computed_at,
              payload = EXCLUDED.payload
"""


def _store_copy(
    payloads: dict[ScopeKey, dict[str, Any]],
    *,
    as_of: date,
    period_key: str,
    age_group: str,
    now: Any,
) -> int:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT … ON CONFLICT
    (the parameter quoting of a multi-row INSERT costs more than the computation)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE stats_snapshot_load (scope_kind varchar(12), "
            "organisation_id bigint, scope_id bigint, period_key varchar(16), "
            "age_group varchar(8), as_of date, computed_at timestamptz, payload jsonb) "
            "ON COMMIT DROP"
        )
        raw = cursor.cursor
        with raw.copy(f"COPY stats_snapshot_load ({_SNAPSHOT_COLUMNS}) FROM STDIN") as copy:
            for (kind, oid, sid), p in payloads.items():
                copy.write_row(
                    (str(kind), oid, sid, period_key, age_group, as_of, now, json.dumps(p))
                )
        cursor.execute(_UPSERT_SQL)
        cursor.execute("DROP TABLE stats_snapshot_load")
    return len(payloads)


def stats_recompute_all(*, as_of: date | None = None) -> int:
    """The nightly job: every scope of every organisation and the platform, one read."""
    as_of = as_of or timezone.localdate()
    run = RecomputeRun.objects.create(kind="full", started_at=timezone.now())
    frame = sessions_frame_bulk(None)
    ctx = context_for(None)
    payloads = compute_payloads(frame, ctx, as_of=as_of)
    now = timezone.now()
    with transaction.atomic():
        n = snapshots_store(payloads, as_of=as_of, period_key=CURRENT, age_group="all", now=now)
        # A scope without sessions any more (all deleted) has no figures: drop its row.
        StatsSnapshot.objects.filter(period_key=CURRENT, computed_at__lt=now).delete()
        # Snapshots of other filters and fixed dates are recomputed on demand from now on,
        # except the published (frozen) ones.
        StatsSnapshot.objects.exclude(period_key=CURRENT, age_group="all").exclude(
            pk__in=_frozen_candidates().values("pk")
        ).delete()
        DirtyScope.objects.all().delete()
        RecomputeRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), scopes=n)
    log.info("stats full recompute: %d snapshots (run %d)", n, run.pk)  # counts only
    return n


def stats_mark_dirty(
    *, organisation_id: int, unit_ids: Iterable[int] = (), therapist_ids: Iterable[int] = ()
) -> int:
    """Mark the scopes a change touches (therapist, unit with its ancestors, organisation)."""
    units = set(int(u) for u in unit_ids)
    parent = dict(Unit.objects.for_org(organisation_id).values_list("id", "parent_id"))
    for uid in list(units):
        cur = parent.get(uid)
        while cur is not None and cur not in units:
            units.add(cur)
            cur = parent.get(cur)
    rows = [
        DirtyScope(scope_kind=ScopeKind.THERAPIST, organisation_id=organisation_id, scope_id=int(t))
        for t in set(therapist_ids)
    ]
    rows += [
        DirtyScope(scope_kind=ScopeKind.UNIT, organisation_id=organisation_id, scope_id=u)
        for u in units
    ]
    rows.append(
        DirtyScope(
            scope_kind=ScopeKind.ORGANISATION,
            organisation_id=organisation_id,
            scope_id=organisation_id,
        )
    )
    now = timezone.now()
    for r in rows:
        r.marked_at = now
    DirtyScope.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["scope_kind", "organisation_id", "scope_id"],
        update_fields=["marked_at"],
    )
    return len(rows)


def stats_recompute_dirty(*, as_of: date | None = None) -> int:
    """Recompute the marked scopes: one frame read per organisation, one upsert.

    Marks are deleted only in the transaction that stores the snapshots and only if they
    were not set again meanwhile; a crash leaves them for the next run.
    """
    as_of = as_of or timezone.localdate()
    marks = list(
        DirtyScope.objects.values_list(
            "id", "scope_kind", "organisation_id", "scope_id", "marked_at"
        )
    )
    if not marks:
        return 0
    run = RecomputeRun.objects.create(kind="incremental", started_at=timezone.now())
    by_org: dict[int, Selection] = defaultdict(
        lambda: Selection(therapists=set(), units=set(), organisations=set(), platform=False)
    )
    for _id, kind, oid, sid, _at in marks:
        sel = by_org[oid]
        if kind == ScopeKind.THERAPIST:
            sel.therapists.add((oid, sid))  # type: ignore[union-attr]
        elif kind == ScopeKind.UNIT:
            sel.units.add(sid)  # type: ignore[union-attr]
        else:
            sel.organisations.add(sid)  # type: ignore[union-attr]
    org_ids = list(by_org)
    ctx = context_for(org_ids)
    ctx.platform_model = platform_etr_model(period_key=CURRENT, as_of=as_of)
    stored = StatsSnapshot.objects.filter(
        scope_kind=ScopeKind.ORGANISATION,
        organisation_id__in=org_ids,
        period_key=CURRENT,
        age_group="all",
    ).values_list("organisation_id", "payload__etr_model")
    for oid, model in stored:
        if model:
            by_org[oid].etr_models[oid] = EtrModel.from_dict(model)
    payloads: dict[ScopeKey, dict[str, Any]] = {}
    for oid in org_ids:  # one read per organisation (typically one)
        frame = sessions_frame_bulk([oid])
        payloads.update(compute_payloads(frame, ctx, as_of=as_of, selection=by_org[oid]))
    # A marked scope left without sessions (the last one deleted) gets empty figures,
    # never its stale ones.
    for _id, kind, oid, sid, _at in marks:
        payloads.setdefault((kind, oid, sid), empty_payload(kind, oid, sid, as_of))
    with transaction.atomic():
        n = snapshots_store(payloads, as_of=as_of, period_key=CURRENT, age_group="all")
        # Stale variants (other filters / fixed dates) of these scopes: recomputed on demand.
        for kind, oid, sid, _ in {(m[1], m[2], m[3], 0) for m in marks}:
            StatsSnapshot.objects.filter(
                scope_kind=kind, organisation_id=oid, scope_id=sid
            ).exclude(period_key=CURRENT, age_group="all").exclude(
                pk__in=_frozen_candidates().values("pk")
            ).delete()
        for _id, _kind, _oid, _sid, at in marks:
            DirtyScope.objects.filter(pk=_id, marked_at=at).delete()
        RecomputeRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), scopes=n)
    log.info("stats incremental recompute: %d snapshots (run %d)", n, run.pk)  # counts only
    return n


def platform_etr_model(*, period_key: str, as_of: date) -> EtrModel | None:
    """The platform's ETR model that an organisation too small for its own (per age group)
    falls back on (statistics.md), the same in every path:

    * ``current``: the model stored with the current platform snapshot (fitted by the
      nightly recompute); None before the first one — no full read of the platform per
      change.
    * a fixed reference date: the model stored with the platform's figures of that date
      (published and frozen at a month-end; the nightly publishes the platform first);
      else the current one when it has this very reference date; else fitted now from
      every organisation's sessions as of that date, exactly as the platform's own
      figures of that date fit it (one read).

    Reads no client data into the result: only anonymous coefficients."""
    stored = StatsSnapshot.objects.filter(
        scope_kind=ScopeKind.PLATFORM,
        organisation_id=0,
        scope_id=0,
        age_group="all",
        payload__has_key="etr_model",
    )
    model = stored.filter(period_key=period_key).values_list("payload__etr_model", flat=True)
    found = model.first()
    if found is None and period_key != CURRENT:
        found = (
            stored.filter(period_key=CURRENT, as_of=as_of)
            .values_list("payload__etr_model", flat=True)
            .first()
        )
    if found:
        return EtrModel.from_dict(found)
    if period_key == CURRENT:
        return None
    return platform_etr_fit(sessions_frame_bulk(None), context_for(None), as_of=as_of)


def platform_etr_fit(frame: pd.DataFrame, ctx: Context, *, as_of: date) -> EtrModel | None:
    """The platform's ETR model from every organisation's sessions as of ``as_of``: the
    closed and active episodes (each organisation's inactivity window), default settings
    — what :func:`compute_payloads` fits for the platform scope. None without sessions."""
    as_of_ts = pd.Timestamp(as_of)
    frame = sort_by_episode(frame.loc[frame["session_date"] <= as_of_ts])
    if frame.empty:
        return None
    _groups, _parts, ep = _episodes(frame, ctx, as_of_ts)
    pts = ors_points(frame)
    mask = reference_mask(pts, ep)
    return etr_fit(frame, StatsSettings(), points=pts if mask is None else pts.loc[mask])


def stats_compute_scope(
    *, kind: str, organisation_id: int, scope_id: int, as_of: date, period_key: str, age_group: str
) -> StatsSnapshot | None:
    """Compute and store one scope's snapshot on demand (a past date, an age filter)."""
    if age_group not in AGE_FILTERS:
        raise ValueError("unknown age group")
    ctx = context_for(None if kind == ScopeKind.PLATFORM else [organisation_id])
    if kind == ScopeKind.PLATFORM:
        frame = sessions_frame_bulk(None)
        sel = Selection(therapists=set(), units=set(), organisations=set(), platform=True)
    else:
        # The platform fallback of the ETR, as in every other path (statistics.md).
        ctx.platform_model = platform_etr_model(period_key=period_key, as_of=as_of)
        frame = sessions_frame_bulk([organisation_id])
        sel = Selection(therapists=set(), units=set(), organisations=set(), platform=False)
        if kind == ScopeKind.THERAPIST:
            sel.therapists = {(organisation_id, scope_id)}
        elif kind == ScopeKind.UNIT:
            sel.units = {scope_id}
        else:
            sel.organisations = {organisation_id}
    frame = _filter_age(frame, age_group)
    payloads = compute_payloads(frame, ctx, as_of=as_of, selection=sel)
    key = (kind, 0 if kind == ScopeKind.PLATFORM else organisation_id, scope_id)
    payload = payloads.get(key) or empty_payload(kind, organisation_id, scope_id, as_of)
    snapshots_store({key: payload}, as_of=as_of, period_key=period_key, age_group=age_group)
    return StatsSnapshot.objects.get(
        scope_kind=kind,
        organisation_id=key[1],
        scope_id=scope_id,
        period_key=period_key,
        age_group=age_group,
    )


def stats_compute_family(
    *,
    organisation_id: int,
    period_key: str,
    as_of: date,
    wanted: Iterable[tuple[str, int, str]],
    frame: pd.DataFrame | None = None,
    platform_model: EtrModel | None = None,
) -> int:
    """Compute and store several scopes' snapshots of one organisation (or, with
    ``organisation_id`` 0, the platform) for one period in one go: the siblings that the
    anonymisation of a unit or organisation needs (stats.siblings). One frame read (or
    the caller's ``frame`` of the same organisation), one vectorised computation per age
    group; a scope without sessions gets empty figures. ``platform_model``: the platform
    ETR model for the organisation's fallback when the caller has it already
    (:func:`platform_etr_model` of the period otherwise)."""
    by_age: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for kind, sid, age in wanted:
        if age not in AGE_FILTERS:
            raise ValueError("unknown age group")
        by_age[age].add((str(kind), int(sid)))
    if not by_age:
        return 0
    platform = organisation_id == 0
    ctx = context_for(None if platform else [organisation_id])
    if not platform:
        ctx.platform_model = platform_model or platform_etr_model(
            period_key=period_key, as_of=as_of
        )
    if frame is None:
        frame = sessions_frame_bulk(None if platform else [organisation_id])
    n = 0
    for age, scopes in by_age.items():
        sel = Selection(
            therapists=set(),
            units={sid for kind, sid in scopes if kind == ScopeKind.UNIT},
            organisations={sid for kind, sid in scopes if kind == ScopeKind.ORGANISATION},
            platform=any(kind == ScopeKind.PLATFORM for kind, _ in scopes),
        )
        payloads = compute_payloads(_filter_age(frame, age), ctx, as_of=as_of, selection=sel)
        out: dict[ScopeKey, dict[str, Any]] = {}
        for kind, sid in scopes:
            key: ScopeKey = (kind, 0 if platform else organisation_id, sid)
            out[key] = payloads.get(key) or empty_payload(kind, organisation_id, sid, as_of)
        n += snapshots_store(out, as_of=as_of, period_key=period_key, age_group=age)
    return n


def publication_ensure(
    *,
    organisation_id: int,
    period_key: str,
    as_of: date,
    required: Iterable[tuple[str, int, str]],
) -> Publication:
    """The publication of an organisation's (0: the platform's) anonymised figures at a
    closed month-end: created once (stats.publications), with every unit, organisation
    (or platform) snapshot of that date computed from the same read as its fingerprint.
    From then on those snapshots are frozen (see the recompute jobs)."""
    from datapolicy.differencing import episode_key

    from .publications import encode, episode_states

    if period_key == CURRENT:
        raise ValueError("anonymised figures are published for closed month-ends only")
    # Every anonymised request asks: read the row without its fingerprint (megabytes).
    found = (
        Publication.objects.filter(organisation_id=organisation_id, period_key=period_key)
        .defer("fingerprint", "held", "unit_tree")
        .first()
    )
    if found is not None:
        return found
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # One publisher per organisation at a time: its publications are then created
            # (and numbered) in the order they become visible, and each is compared with
            # every one before it (stats.selectors.publication_held).
            with connection.cursor() as cursor:
                lock = zlib.crc32(f"publication:{organisation_id}".encode()) & 0x7FFF_FFFF
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x5075_626C, lock])
        found = Publication.objects.filter(
            organisation_id=organisation_id, period_key=period_key
        ).first()
        if found is not None:
            return found
        platform = organisation_id == 0
        frame = sessions_frame_bulk(None if platform else [organisation_id])
        # The platform ETR model of this date for the organisation's fallback: read (or
        # fitted) once, used by the figures and the fingerprint alike.
        fallback = None if platform else platform_etr_model(period_key=period_key, as_of=as_of)
        stats_compute_family(
            organisation_id=organisation_id,
            period_key=period_key,
            as_of=as_of,
            wanted=required,
            frame=frame,
            platform_model=fallback,
        )
        ctx = context_for(None if platform else [organisation_id])
        # The ETR model the published figures were computed with (the own model stored
        # with the root's snapshot, with the platform fallback): ETR memberships are part
        # of the fingerprint.
        root = StatsSnapshot.objects.filter(
            scope_kind=ScopeKind.PLATFORM if platform else ScopeKind.ORGANISATION,
            organisation_id=organisation_id,
            scope_id=organisation_id,
            period_key=period_key,
            age_group="all",
        ).values_list("payload__etr_model", flat=True)
        stored = root.first()
        models = (
            {organisation_id: etr_with_fallback(EtrModel.from_dict(stored), fallback)}
            if stored
            else {}
        )
        states = episode_states(
            frame,
            as_of=as_of,
            key=episode_key(organisation_id),
            settings=ctx.settings,
            models=models,
            deactivated=ctx.deactivated,
        )
        tree = (
            {}
            if platform
            else {
                str(u): p
                for u, p in Unit.dangerously_unscoped.filter(
                    organisation_id=organisation_id
                ).values_list("id", "parent_id")
            }
        )
        publication = Publication.objects.create(
            organisation_id=organisation_id,
            period_key=period_key,
            as_of=as_of,
            created_at=timezone.now(),
            episodes=len(states),
            fingerprint=encode(states),
            unit_tree=tree,
        )
    log.info("stats publication %d created (%d episodes)", publication.pk, publication.episodes)
    return publication


def stats_publish_closed_month(*, today: date | None = None) -> int:
    """Nightly: publish the last closed month-end of every active organisation and of the
    platform where it is not published yet (a no-op on most nights), so that a month's
    anonymised figures are fixed on the first night after it closes rather than at the
    first view. Returns how many publications were created."""
    from .selectors import ANONYMISED_PERIODS, period_as_of

    today = today or timezone.localdate()
    period_key, as_of = period_as_of(ANONYMISED_PERIODS[0], today)
    done = set(
        Publication.objects.filter(period_key=period_key).values_list("organisation_id", flat=True)
    )
    # The platform first: its figures of that date (and ETR model) are then stored and
    # frozen before the organisations' publications take their ETR fallback from them.
    wanted = ([0] if 0 not in done else []) + [
        org_id
        for org_id in Organisation.objects.filter(is_active=True).values_list("pk", flat=True)
        if org_id not in done
    ]
    from .selectors import SiblingFamily, publication_held

    for org_id in wanted:
        publication = publication_ensure(
            organisation_id=org_id,
            period_key=period_key,
            as_of=as_of,
            required=family_required(org_id),
        )
        # What it holds back (with the organisation's k), now rather than in a request.
        k = 5 if org_id == 0 else max(3, Organisation.objects.get(pk=org_id).small_cell_k)
        family = SiblingFamily(org_id, period_key, as_of, {}, "", int(publication.pk))
        publication_held(family, k)
    return len(wanted)


def family_required(organisation_id: int) -> list[tuple[str, int, str]]:
    """Every scope × age group whose anonymised figures are suppressed together: the
    organisation and its units (or, for 0, the platform)."""
    if organisation_id == 0:
        return [(str(ScopeKind.PLATFORM), 0, age) for age in AGE_FILTERS]
    units = Unit.dangerously_unscoped.filter(organisation_id=organisation_id).values_list(
        "pk", flat=True
    )
    return [
        (str(kind), int(sid), age)
        for kind, sid in [(ScopeKind.ORGANISATION, organisation_id)]
        + [(ScopeKind.UNIT, u) for u in units]
        for age in AGE_FILTERS
    ]


def _frozen_candidates() -> Any:
    """Snapshots the recompute jobs never delete: unit, organisation and platform figures
    of a fixed date — the published ones are frozen, and one not yet published is
    overwritten by its publication (stats.services.publication_ensure). Deleting them
    while a publication is being made could drop a just-frozen row (the job's subquery
    does not see the publication's commit)."""
    return StatsSnapshot.objects.filter(
        scope_kind__in=[ScopeKind.UNIT, ScopeKind.ORGANISATION, ScopeKind.PLATFORM]
    ).exclude(period_key=CURRENT)


def store_empty(keys: Iterable[tuple[str, int, int, str]], *, as_of: date, period_key: str) -> int:
    """Store empty figures for (kind, organisation id, scope id, age group) keys."""
    by_age: dict[str, dict[ScopeKey, dict[str, Any]]] = defaultdict(dict)
    for kind, oid, sid, age in keys:
        by_age[age][(kind, oid, sid)] = empty_payload(kind, oid, sid, as_of)
    return sum(
        snapshots_store(payloads, as_of=as_of, period_key=period_key, age_group=age)
        for age, payloads in by_age.items()
    )


def empty_payload(kind: str, organisation_id: int, scope_id: int, as_of: date) -> dict[str, Any]:
    """A scope without sessions: zero counts, no means (never an error page)."""
    zero = {
        c: 0
        for c in (
            "episodes",
            "sessions",
            "n_ors_start",
            "n_srs_start",
            "n_ors_change",
            "n_srs_change",
            "reliable_improvement",
            "reliable_deterioration",
            "no_reliable_change",
            "clinically_significant",
            "n_classified",
        )
    }
    means = dict.fromkeys(
        (
            "sessions_per_episode",
            "treatment_months",
            "srs_start",
            "ors_start",
            "srs_change",
            "ors_change",
            "effect_size_d",
            "effect_size_pct",
        )
    )
    return {
        "table": {"active": {**zero, **means}, "inactive": {**zero, **means}},
        "trajectory": [],
        "therapist_spread": [],
        "n_therapists": 0,
        **({"n_therapists_direct": 0} if kind == ScopeKind.UNIT else {}),
        "as_of": as_of.isoformat(),
        "scope": {"kind": kind, "organisation_id": organisation_id, "id": scope_id},
    }


def stats_refresh_alerts_all() -> int:
    """Nightly: "no contact" alerts change with the calendar."""
    from measures.services import alerts_refresh_for_org

    return sum(alerts_refresh_for_org(o) for o in Organisation.objects.filter(is_active=True))
