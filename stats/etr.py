"""Expected treatment response (ETR) built from the platform's own data.

Method (see docs/statistics.md for the why): per age group and per session number n ≥ 2,
an ordinary least-squares line of the ORS at session n on the episode's intake ORS (its
first ORS), fitted on every reference episode that has an ORS at session n after its
intake. The target is the fitted value; the lower boundary is the target plus the
``etr_boundary_quantile`` (default 25th) percentile of that point's residuals. A point
exists only with at least ``etr_min_n`` reference episodes and some spread of intake
scores; predictions are only made inside the intake range seen at that point. Everything
else is NaN — never a made-up curve.

No Django imports; fully vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from stats.engine import (
    AGE_GROUPS,
    DEFAULT_SETTINGS,
    EPS,
    StatsSettings,
    age_group_codes,
    categorical_from_codes,
    episode_frame,
    filter_as_of,
    group_aggregate,
    group_keys,
    json_scalar,
    sort_by_episode,
)

__all__ = [
    "ETR_POINT_COLUMNS",
    "ETR_SCOPE_COLUMNS",
    "EtrModel",
    "episode_zones",
    "etr_expected",
    "etr_fit",
    "etr_scope_figures",
    "etr_scope_figures_many",
    "etr_with_fallback",
    "last_ors_zones",
    "last_ors_zones_from_points",
    "last_ors_zones_many",
    "ors_points",
    "reference_mask",
    "reference_points",
]

METHOD = "ols-nth-ors-on-intake/v1"
SCORE_MIN, SCORE_MAX = 0.0, 40.0

ETR_POINT_COLUMNS: list[str] = [
    "age_group",
    "session_number",
    "n",
    "available",
    "intercept",
    "slope",
    "boundary_offset",
    "intake_min",
    "intake_max",
]

ZONES: tuple[str, ...] = ("green", "orange", "red", "grey")


@dataclass
class EtrModel:
    """A fitted ETR: one row per (age_group, session_number) seen in the reference data.

    ``points`` has the columns :data:`ETR_POINT_COLUMNS`; rows with ``available`` False
    (too few reference episodes: ``n < min_n``, or no spread of intake scores) keep their
    ``n`` so the graph can say why, and have NaN coefficients. ``intake_sd`` holds, per age
    group, the sample SD (ddof=1) of the intake ORS of the reference episodes with ≥ 2 ORS
    (the denominator of the relative effect size), with its n in ``intake_sd_n``.
    ``borrowed`` names the age groups whose points come from the platform's reference
    data (:func:`etr_with_fallback`); empty for a model fitted on one population.
    """

    points: pd.DataFrame
    intake_sd: dict[str, float] = field(default_factory=dict)
    intake_sd_n: dict[str, int] = field(default_factory=dict)
    min_n: int = DEFAULT_SETTINGS.etr_min_n
    boundary_quantile: float = DEFAULT_SETTINGS.etr_boundary_quantile
    method: str = METHOD
    borrowed: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN → None) for storing in a snapshot."""
        records = [
            {col: json_scalar(value) for col, value in row.items()}
            for row in self.points[ETR_POINT_COLUMNS].to_dict(orient="records")
        ]
        out: dict[str, Any] = {
            "method": self.method,
            "min_n": int(self.min_n),
            "boundary_quantile": float(self.boundary_quantile),
            "intake_sd": {k: json_scalar(v) for k, v in self.intake_sd.items()},
            "intake_sd_n": {k: int(v) for k, v in self.intake_sd_n.items()},
            "points": records,
        }
        if self.borrowed:  # stored models are fitted on one population: key absent
            out["borrowed"] = sorted(self.borrowed)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EtrModel:
        points = pd.DataFrame(data["points"], columns=ETR_POINT_COLUMNS)
        points = _typed_points(points)
        return cls(
            points=points,
            intake_sd={
                k: (np.nan if v is None else float(v)) for k, v in data["intake_sd"].items()
            },
            intake_sd_n={k: int(v) for k, v in data["intake_sd_n"].items()},
            min_n=int(data["min_n"]),
            boundary_quantile=float(data["boundary_quantile"]),
            method=str(data["method"]),
            borrowed=frozenset(str(g) for g in data.get("borrowed", ())),
        )

    def available_points(self) -> pd.DataFrame:
        return self.points.loc[self.points["available"]]

    def max_session_number(self, age_group: str) -> int | None:
        """The last session number with an ETR point for the age group (None if none)."""
        pts = self.available_points()
        numbers = pts.loc[pts["age_group"] == age_group, "session_number"]
        return None if numbers.empty else int(numbers.max())

    def point(self, age_group: str, session_number: int) -> dict[str, Any] | None:
        """The model's row for (age group, session number) as a dict (None when the
        reference data has no episode with an ORS at that session number)."""
        pts = self.points
        row = pts.loc[(pts["age_group"] == age_group) & (pts["session_number"] == session_number)]
        return None if row.empty else dict(row.iloc[0])


def etr_with_fallback(model: EtrModel, platform: EtrModel | None) -> EtrModel:
    """The organisation's model; for every age group where it has no available point, the
    platform's points (anonymous coefficients only; docs/statistics.md). The age groups
    taken from the platform are listed in ``borrowed`` (the graph says so)."""
    if platform is None:
        return model
    own = model.points
    have = set(own.loc[own["available"], "age_group"].astype(str))
    borrow = platform.points.loc[~platform.points["age_group"].astype(str).isin(have)]
    if borrow.empty:
        return model
    keep = own.loc[own["age_group"].astype(str).isin(have)]
    points = pd.concat([keep, borrow], ignore_index=True)
    sd = dict(platform.intake_sd)
    sd.update({g: v for g, v in model.intake_sd.items() if g in have})
    sd_n = dict(platform.intake_sd_n)
    sd_n.update({g: v for g, v in model.intake_sd_n.items() if g in have})
    return EtrModel(
        points=points,
        intake_sd=sd,
        intake_sd_n=sd_n,
        min_n=model.min_n,
        boundary_quantile=model.boundary_quantile,
        borrowed=frozenset(borrow["age_group"].astype(str)),
    )


def _typed_points(points: pd.DataFrame) -> pd.DataFrame:
    points = points.copy()
    points["age_group"] = points["age_group"].astype(object)
    points["session_number"] = points["session_number"].astype("int64")
    points["n"] = points["n"].astype("int64")
    points["available"] = points["available"].astype(bool)
    for col in ("intercept", "slope", "boundary_offset", "intake_min", "intake_max"):
        points[col] = pd.to_numeric(points[col], errors="coerce").astype(float)
    return points.reset_index(drop=True)


def ors_points(sessions: pd.DataFrame) -> pd.DataFrame:
    """Every session with an ORS, sorted, with the episode's intake ORS and ORS count.

    Columns: episode_id, age_code (index into AGE_GROUPS), session_number, session_date, ors, intake
    (the episode's first ORS), ors_index (1 for the first ORS, 2 for the second …),
    n_ors (the episode's number of ORS).
    """
    cols = ["episode_id", "age_group", "session_number", "session_date", "ors"]
    s = sort_by_episode(sessions.loc[sessions["ors"].notna(), cols])
    episode = s["episode_id"].to_numpy()
    ors = s["ors"].to_numpy(dtype=float)
    if len(episode) and bool((episode[1:] >= episode[:-1]).all()):
        # Sorted by episode (always, after sort_by_episode): each episode is one run of
        # rows, so first/size/cumcount are plain index arithmetic.
        starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
        sizes = np.diff(np.r_[starts, len(episode)])
        start_of_row = np.repeat(starts, sizes)
        intake = ors[start_of_row]
        ors_index = np.arange(len(episode)) - start_of_row + 1
        n_ors = np.repeat(sizes, sizes)
    else:
        g = s.groupby("episode_id", sort=False)
        intake = g["ors"].transform("first").to_numpy(dtype=float)
        ors_index = g.cumcount().to_numpy() + 1
        n_ors = g["ors"].transform("size").to_numpy()
    out = pd.DataFrame(
        {
            "episode_id": episode,
            "age_code": age_group_codes(s["age_group"]),
            "session_number": s["session_number"].to_numpy(),
            "session_date": s["session_date"].to_numpy(),
            "ors": ors,
            "intake": intake,
            "ors_index": ors_index.astype("int64"),
            "n_ors": n_ors.astype("int64"),
        }
    )
    return out


def reference_mask(points: pd.DataFrame, episodes: pd.DataFrame) -> np.ndarray | None:
    """Which rows of ``points`` (:func:`ors_points`) are ETR reference data: the episode is
    closed or active in ``episodes`` (:func:`stats.engine.episode_frame` as of the reference
    date, with each organisation's inactivity window). An open episode whose last session
    lies more than ``inactivity_days`` before the reference date is neither and is left out
    (statistics.md: "closed and active episodes"). None when every row is (the common case:
    no copy of the points)."""
    ref = episodes["closed"].to_numpy(dtype=bool) | episodes["active"].to_numpy(dtype=bool)
    if ref.all():
        return None
    return pd.Index(episodes.index[ref]).get_indexer(points["episode_id"].to_numpy()) >= 0


def reference_points(points: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``points`` that are ETR reference data (:func:`reference_mask`)."""
    mask = reference_mask(points, episodes)
    return points if mask is None else points.loc[mask]


def _sd_value(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def _point_keys(age_code: np.ndarray, session_number: np.ndarray) -> np.ndarray:
    """One int64 key per (age group, session number) for fast vectorised lookups."""
    return age_code.astype("int64") * 1_000_000 + session_number.astype("int64")


def etr_fit(
    sessions: pd.DataFrame,
    settings: StatsSettings = DEFAULT_SETTINGS,
    *,
    as_of: date | pd.Timestamp | None = None,
    points: pd.DataFrame | None = None,
) -> EtrModel:
    """Fit the ETR on reference sessions (the caller picks organisation or platform data).

    ``points``: the :func:`ors_points` of the reference episodes when the caller already
    has them (a bulk recompute computes them once for every organisation and selects the
    reference episodes with :func:`reference_points`); ``sessions`` and ``as_of`` are then
    not read.

    Reference data are the closed and the active episodes as of ``as_of`` (statistics.md):
    an open episode past the inactivity window (``settings.inactivity_days``) is left out.
    Without ``as_of`` there is no reference date and every episode given is used (the
    caller has chosen them). For each (age_group, n) the
    reference pairs are (intake ORS, ORS at session n) of episodes with an ORS at session n
    that is not their intake. A point is ``available`` when it has at least
    ``settings.etr_min_n`` pairs and the intake scores are not all equal.
    """
    if points is None:
        s = filter_as_of(sessions, as_of)
        pts = ors_points(s)
        if as_of is not None:
            pts = reference_points(pts, episode_frame(s, as_of=as_of, settings=settings))
    else:
        pts = points
    return etr_fit_many(pts, np.zeros(len(pts), dtype="int64"), {0: settings})[0]


def etr_fit_many(
    points: pd.DataFrame, groups: np.ndarray, settings: dict[int, StatsSettings]
) -> dict[int, EtrModel]:
    """:func:`etr_fit` of several reference populations in one grouped pass.

    ``groups`` holds the population (e.g. the organisation) of each row of ``points`` (the
    :func:`ors_points`); ``settings`` each population's settings. Every group gets exactly
    the model ``etr_fit(settings[g], points=points[groups == g])`` would give — the same
    kernels over the same rows in the same order, with the population as the first
    grouping key — without the fixed cost of one fit per organisation.
    """
    if not settings:
        return {}
    pts = points.assign(_g=np.asarray(groups, dtype="int64"))
    pts = pts.loc[pts["_g"].isin(list(settings))]
    ref = pts.loc[pts["ors_index"] >= 2, ["_g", "age_code", "session_number", "intake", "ors"]]
    keys = ["_g", "age_code", "session_number"]
    g = ref.groupby(group_keys(ref, keys), sort=True)
    dx = ref["intake"] - g["intake"].transform("mean")
    dy = ref["ors"] - g["ors"].transform("mean")
    w = ref.assign(dxx=dx * dx, dxy=dx * dy)
    gw = w.groupby(group_keys(w, keys), sort=True)
    sxx_row = gw["dxx"].transform("sum")
    slope_row = gw["dxy"].transform("sum") / sxx_row.where(sxx_row > 0)
    w["resid"] = dy - slope_row * dx

    stats = group_aggregate(
        w,
        keys,
        lambda gr: gr.agg(
            n=("ors", "size"),
            x_mean=("intake", "mean"),
            y_mean=("ors", "mean"),
            sxx=("dxx", "sum"),
            sxy=("dxy", "sum"),
            intake_min=("intake", "min"),
            intake_max=("intake", "max"),
        ),
    )
    # The boundary quantile per population (one quantile call per distinct level).
    quantile = {gid: st.etr_boundary_quantile for gid, st in settings.items()}
    offsets = [
        group_aggregate(
            w.loc[w["_g"].isin([gid for gid, v in quantile.items() if v == q])],
            keys,
            lambda gr, q=q: gr["resid"].quantile(q),
        )
        for q in sorted(set(quantile.values()))
    ]
    stats["boundary_offset"] = pd.concat(offsets).reindex(stats.index)
    gid_row = stats.index.get_level_values("_g").to_numpy()
    min_n = np.array([settings[int(gid)].etr_min_n for gid in gid_row], dtype="int64")
    # Spread of intakes: sxx > tiny. n ≥ min_n: the documented minimum sample size.
    stats["available"] = (stats["n"] >= min_n) & (stats["sxx"] > EPS)
    stats["slope"] = (stats["sxy"] / stats["sxx"]).where(stats["available"])
    stats["intercept"] = (stats["y_mean"] - stats["slope"] * stats["x_mean"]).where(
        stats["available"]
    )
    for col in ("boundary_offset", "intake_min", "intake_max"):
        stats[col] = stats[col].where(stats["available"])
    stats = stats.reset_index()
    stats["age_group"] = np.array(AGE_GROUPS, dtype=object)[stats["age_code"].to_numpy()]

    intakes = pts.loc[(pts["ors_index"] == 1) & (pts["n_ors"] >= 2), ["_g", "age_code", "intake"]]
    sd = intakes.groupby(["_g", "age_code"], sort=True)["intake"].agg(["std", "size"])
    stats_of = dict(tuple(stats.groupby("_g", sort=False)))
    sd_of = dict(tuple(sd.groupby(level="_g", sort=False)))
    models: dict[int, EtrModel] = {}
    for gid, st in settings.items():
        own = stats_of.get(gid, stats.iloc[0:0])
        own_sd = sd_of.get(gid, sd.iloc[0:0]).droplevel("_g")
        models[gid] = EtrModel(
            points=_typed_points(own[ETR_POINT_COLUMNS]),
            intake_sd={AGE_GROUPS[int(k)]: _sd_value(v) for k, v in own_sd["std"].items()},  # type: ignore[call-overload]
            intake_sd_n={AGE_GROUPS[int(k)]: int(v) for k, v in own_sd["size"].items()},  # type: ignore[call-overload]
            min_n=st.etr_min_n,
            boundary_quantile=st.etr_boundary_quantile,
        )
    return models


def etr_expected(
    model: EtrModel,
    age_group: str | Sequence[str] | np.ndarray | pd.Series,
    intake: float | Sequence[float] | np.ndarray | pd.Series,
    session_number: int | Sequence[int] | np.ndarray | pd.Series,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected ORS (target) and lower boundary, vectorised and broadcast over the inputs.

    Returns two float arrays. NaN where no ETR exists: no available point for
    (age_group, session_number), or an intake outside the intake range of that point's
    reference data (no extrapolation). Values are clipped to 0–40 and the boundary is never
    above the target.
    """
    intake_arr = np.asarray(intake, dtype=float)
    number_arr = np.asarray(session_number, dtype="int64")
    code_arr = age_group_codes(age_group)
    if isinstance(age_group, str):
        code_arr = code_arr.reshape(())
    code_b, x_b, n_b = np.broadcast_arrays(code_arr, intake_arr, number_arr)
    shape = x_b.shape
    pts = model.available_points()
    point_codes = age_group_codes(pts["age_group"].to_numpy(dtype=object))
    index = pd.Index(_point_keys(point_codes, pts["session_number"].to_numpy()))
    pos = index.get_indexer(_point_keys(code_b.ravel(), n_b.ravel()))
    found = pos >= 0

    def column(name: str) -> np.ndarray:
        values = np.append(pts[name].to_numpy(dtype=float), np.nan)
        return values[np.where(found, pos, -1)]

    x = x_b.ravel()
    with np.errstate(invalid="ignore"):
        inside = (x >= column("intake_min") - EPS) & (x <= column("intake_max") + EPS)
        target = column("intercept") + column("slope") * x
        target = np.where(inside, np.clip(target, SCORE_MIN, SCORE_MAX), np.nan)
        boundary = np.clip(target + column("boundary_offset"), SCORE_MIN, SCORE_MAX)
        boundary = np.minimum(boundary, target)
    return target.reshape(shape), boundary.reshape(shape)


ZONE_REASONS: tuple[str, ...] = ("fewer than two ORS", "no ETR for this session number and intake")


def _zones_for(points: pd.DataFrame, model: EtrModel) -> pd.DataFrame:
    first = points["ors_index"].to_numpy() < 2
    target, boundary = etr_expected(
        model,
        np.array(AGE_GROUPS, dtype=object)[points["age_code"].to_numpy()],
        points["intake"],
        points["session_number"],
    )
    target = np.where(first, np.nan, target)
    boundary = np.where(first, np.nan, boundary)
    ors = points["ors"].to_numpy()
    no_etr = np.isnan(target)
    with np.errstate(invalid="ignore"):
        # codes into ZONES: green 0, orange 1, red 2, grey 3
        zone = np.select(
            [first | no_etr, ors >= target - EPS, ors < boundary - EPS], [3, 0, 2], default=1
        )
    reason = np.select([first, no_etr], [0, 1], default=-1)
    return points.assign(
        age_group=categorical_from_codes(points["age_code"].to_numpy(), AGE_GROUPS),
        target=target,
        boundary=boundary,
        zone=categorical_from_codes(zone, ZONES),
        zone_reason=categorical_from_codes(reason, ZONE_REASONS),
    )


def episode_zones(
    sessions: pd.DataFrame,
    model: EtrModel,
    settings: StatsSettings = DEFAULT_SETTINGS,
    *,
    as_of: date | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The ETR zone of every session that carries an ORS.

    Columns: episode_id, age_group, session_number, session_date, ors, intake, ors_index,
    n_ors, target, boundary, zone, zone_reason. Zones: green = ORS ≥ target; orange = below
    target and at or above the boundary; red = below the boundary; grey = the episode's first
    ORS (fewer than two ORS so far) or no ETR at that point (``zone_reason`` says which).
    """
    del settings  # zones need no setting today; kept for a uniform signature
    return _zones_for(ors_points(filter_as_of(sessions, as_of)), model)


def last_ors_zones(sessions: pd.DataFrame, model: EtrModel) -> pd.DataFrame:
    """:func:`episode_zones` of each episode's last ORS only, indexed by episode_id."""
    return last_ors_zones_from_points(ors_points(sessions), model)


def last_ors_zones_from_points(points: pd.DataFrame, model: EtrModel) -> pd.DataFrame:
    """:func:`last_ors_zones` from precomputed :func:`ors_points` (bulk recompute)."""
    pts = points.drop_duplicates("episode_id", keep="last")
    return _zones_for(pts, model).set_index("episode_id")


ETR_SCOPE_COLUMNS: list[str] = [
    "ended",
    "ended_evaluable",
    "reaching_target",
    "reaching_target_share",
    "dropout",
    "dropout_share",
    "ended_single_ors",
    "ended_no_etr",
    "n_relative_effect",
    "relative_effect_size",
]


def etr_scope_figures(
    sessions: pd.DataFrame,
    model: EtrModel,
    *,
    as_of: date | pd.Timestamp,
    settings: StatsSettings = DEFAULT_SETTINGS,
    by: Sequence[str] = (),
    episodes: pd.DataFrame | None = None,
    last_zones: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Reaching target, dropout and relative effect size per by-group.

    ``episodes`` (the :func:`stats.engine.episode_frame` of ``sessions`` as of ``as_of``)
    and ``last_zones`` (:func:`last_ors_zones` of them) may be passed when the caller has
    them already (bulk recompute); they must be computed with the same as_of and settings.

    Index: ``by`` (a single row with index name "scope" and value "all" when ``by`` is
    empty). Columns: :data:`ETR_SCOPE_COLUMNS`.

    * ``ended``: inactive episodes (closed by the therapist or past the inactivity window).
    * ``ended_evaluable``: ended episodes whose last ORS has a zone (≥ 2 ORS and an ETR point
      for it). ``reaching_target``: those whose last ORS is green; ``dropout``: the rest
      (ended without reaching target). Shares are over ``ended_evaluable`` and sum to 1.
    * ``ended_single_ors`` / ``ended_no_etr``: ended episodes that cannot be judged
      (one ORS only / no ETR at the last ORS) — reported, not guessed.
    * ``relative_effect_size``: mean over all episodes in scope (active and inactive) with
      an ETR target at their last ORS of (last ORS − target) / SD of intake ORS in the
      reference data for the episode's age group; ``n_relative_effect`` episodes.
    """
    by = list(by)
    ts = pd.Timestamp(as_of)
    s = filter_as_of(sessions, ts) if episodes is None or last_zones is None else sessions
    ep = episode_frame(s, as_of=ts, settings=settings) if episodes is None else episodes
    last = (last_ors_zones(s, model) if last_zones is None else last_zones).reindex(ep.index)
    sd_table = np.array([model.intake_sd.get(g, np.nan) for g in AGE_GROUPS] + [np.nan])
    sd = sd_table[age_group_codes(ep["age_group"])]
    return _scope_figures(ep, last, sd, by)


def _scope_figures(
    ep: pd.DataFrame, last: pd.DataFrame, sd: np.ndarray, by: list[str]
) -> pd.DataFrame:
    """:func:`etr_scope_figures` from the episodes, their last-ORS zones (aligned with
    ``ep``) and the intake SD of each episode's reference data."""
    ended = ~ep["active"].to_numpy()
    zone = last["zone"].to_numpy(dtype=object)
    evaluable = np.isin(zone, ["green", "orange", "red"])
    green = zone == "green"
    sd = np.where(sd > 0, sd, np.nan)
    rel = (last["ors"].to_numpy() - last["target"].to_numpy()) / sd
    rel = np.where(evaluable, rel, np.nan)

    w = pd.DataFrame(index=ep.index)
    for col in by:
        values = ep[col]
        w[col] = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
    if not by:
        w["scope"] = "all"
    w["ended"] = ended.astype("int64")
    w["ended_evaluable"] = (ended & evaluable).astype("int64")
    w["reaching_target"] = (ended & evaluable & green).astype("int64")
    w["dropout"] = (ended & evaluable & ~green).astype("int64")
    n_ors = ep["n_ors"].to_numpy()
    w["ended_single_ors"] = (ended & (n_ors == 1)).astype("int64")
    w["ended_no_etr"] = (ended & (n_ors >= 2) & ~evaluable).astype("int64")
    w["rel"] = rel
    keys = by or ["scope"]
    out = group_aggregate(
        w,
        keys,
        lambda g: g.agg(
            ended=("ended", "sum"),
            ended_evaluable=("ended_evaluable", "sum"),
            reaching_target=("reaching_target", "sum"),
            dropout=("dropout", "sum"),
            ended_single_ors=("ended_single_ors", "sum"),
            ended_no_etr=("ended_no_etr", "sum"),
            n_relative_effect=("rel", "count"),
            relative_effect_size=("rel", "mean"),
        ),
    )
    if not by and out.empty:
        out = pd.DataFrame(
            {c: [0] for c in out.columns}, index=pd.Index(["all"], name="scope")
        ).assign(relative_effect_size=np.nan)
    base = out["ended_evaluable"].astype(float)
    out["reaching_target_share"] = (out["reaching_target"] / base).where(base > 0)
    out["dropout_share"] = (out["dropout"] / base).where(base > 0)
    return out[ETR_SCOPE_COLUMNS]


def last_ors_zones_many(
    points: pd.DataFrame, groups: np.ndarray, models: dict[int, EtrModel]
) -> pd.DataFrame:
    """:func:`last_ors_zones_from_points` of several populations in one pass, each
    episode's last ORS judged with its own population's model.

    ``groups`` holds the population of each row of ``points`` (the :func:`ors_points`);
    rows of a population without a model are dropped. Every row gets exactly what
    ``last_ors_zones_from_points(points[groups == g], models[g])`` gives (the same
    elementwise arithmetic), indexed by episode_id in the order of ``points``.
    """
    group_arr = np.asarray(groups, dtype="int64")
    episode = points["episode_id"].to_numpy()
    is_last = np.ones(len(episode), dtype=bool)
    if len(episode) and bool((episode[1:] >= episode[:-1]).all()):
        is_last[:-1] = episode[1:] != episode[:-1]
    else:
        is_last = ~points.duplicated("episode_id", keep="last").to_numpy()
    order = list(models)
    pos_of = pd.Index(order).get_indexer(group_arr)
    keep = is_last & (pos_of >= 0)
    pts = points.loc[keep]
    gpos = pos_of[keep].astype("int64")

    # One lookup table of every model's available points, keyed by (model, age, number).
    tables = []
    for i, gid in enumerate(order):
        avail = models[gid].available_points()
        codes = age_group_codes(avail["age_group"].to_numpy(dtype=object))
        tables.append(
            pd.DataFrame(
                {
                    "key": i * 10_000_000 + _point_keys(codes, avail["session_number"].to_numpy()),
                    **{
                        c: avail[c].to_numpy(dtype=float)
                        for c in (
                            "intercept",
                            "slope",
                            "boundary_offset",
                            "intake_min",
                            "intake_max",
                        )
                    },
                }
            )
        )
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame({"key": []})
    # As _zones_for → etr_expected, where the age code goes through the AGE_GROUPS names
    # (code -1 indexes the last name).
    age_code = pts["age_code"].to_numpy()
    code = np.where(age_code < 0, len(AGE_GROUPS) - 1, age_code)
    number = pts["session_number"].to_numpy(dtype="int64")
    pos = pd.Index(table["key"].to_numpy(dtype="int64")).get_indexer(
        gpos * 10_000_000 + _point_keys(code, number)
    )
    found = pos >= 0

    def column(name: str) -> np.ndarray:
        values = np.append(table[name].to_numpy(dtype=float), np.nan)
        return values[np.where(found, pos, -1)]

    x = pts["intake"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        inside = (x >= column("intake_min") - EPS) & (x <= column("intake_max") + EPS)
        target = column("intercept") + column("slope") * x
        target = np.where(inside, np.clip(target, SCORE_MIN, SCORE_MAX), np.nan)
        boundary = np.clip(target + column("boundary_offset"), SCORE_MIN, SCORE_MAX)
        boundary = np.minimum(boundary, target)
    first = pts["ors_index"].to_numpy() < 2
    target = np.where(first, np.nan, target)
    boundary = np.where(first, np.nan, boundary)
    ors = pts["ors"].to_numpy()
    no_etr = np.isnan(target)
    with np.errstate(invalid="ignore"):
        zone = np.select(
            [first | no_etr, ors >= target - EPS, ors < boundary - EPS], [3, 0, 2], default=1
        )
    reason = np.select([first, no_etr], [0, 1], default=-1)
    out = pts.assign(
        age_group=categorical_from_codes(age_code, AGE_GROUPS),
        target=target,
        boundary=boundary,
        zone=categorical_from_codes(zone, ZONES),
        zone_reason=categorical_from_codes(reason, ZONE_REASONS),
    )
    return out.set_index("episode_id")


def etr_scope_figures_many(
    episodes: pd.DataFrame,
    points: pd.DataFrame,
    groups: np.ndarray,
    models: dict[int, EtrModel],
    *,
    group_column: str,
    by: Sequence[str],
) -> pd.DataFrame:
    """:func:`etr_scope_figures` of several populations in one pass.

    ``episodes``: the episode frames of all populations (``group_column`` says whose);
    ``points``/``groups``: their :func:`ors_points` and each row's population; ``models``:
    each population's model. ``by`` must start with ``group_column`` so that no by-group
    spans two populations; every group then gets exactly the row
    ``etr_scope_figures(..., model=models[g], episodes=episodes of g, by=by)`` gives
    (the same rows in the same order through the same kernels).
    """
    by = list(by)
    if not by or by[0] != group_column:
        raise ValueError("by must start with the population column")
    ep = episodes.loc[episodes[group_column].isin(list(models))]
    last = last_ors_zones_many(points, groups, models).reindex(ep.index)
    order = list(models)
    sd_tables = np.array(
        [[models[g].intake_sd.get(a, np.nan) for a in AGE_GROUPS] + [np.nan] for g in order],
        dtype=float,
    ).reshape(len(order), len(AGE_GROUPS) + 1)
    gpos = pd.Index(order).get_indexer(ep[group_column].to_numpy())
    sd = sd_tables[gpos, age_group_codes(ep["age_group"])]
    return _scope_figures(ep, last, sd, by)
