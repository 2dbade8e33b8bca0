"""Read side of the statistics: snapshots for a scope, suppressed per the caller's role."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from django.utils import timezone

from .anonymise import may_show_therapist_spread, reason_small, suppress_table, suppress_trajectory
from .engine import STATISTICS_COLUMNS
from .etr import EtrModel, etr_fit
from .frames import org_stats_settings, sessions_frame_for_org
from .models import CURRENT, ScopeKind, StatsSnapshot

PERIODS = ("all", "month", "quarter", "year")
AGE_FILTERS = ("all", "adult", "youth", "child")


def etr_model_for(organisation: Any) -> EtrModel:
    """The organisation's ETR reference model: the one stored with its current snapshot;
    fitted live on its own episodes only when no snapshot exists yet."""
    snap = (
        StatsSnapshot.objects.filter(
            scope_kind=ScopeKind.ORGANISATION,
            organisation_id=organisation.pk,
            scope_id=organisation.pk,
            period_key=CURRENT,
            age_group="all",
        )
        .only("payload")
        .first()
    )
    if snap is not None and snap.payload.get("etr_model"):
        return EtrModel.from_dict(snap.payload["etr_model"])
    frame = sessions_frame_for_org(organisation.pk)
    return etr_fit(frame, org_stats_settings(organisation))


def period_as_of(period: str, today: date | None = None) -> tuple[str, date]:
    """(period key, reference date) of a fixed period: "all" = today (the current,
    continuously refreshed snapshot); month/quarter/year = the end of the last completed
    calendar month/quarter/year."""
    today = today or timezone.localdate()
    if period == "month":
        end = today.replace(day=1) - timedelta(days=1)
    elif period == "quarter":
        q_start_month = 3 * ((today.month - 1) // 3) + 1
        end = today.replace(month=q_start_month, day=1) - timedelta(days=1)
    elif period == "year":
        end = date(today.year - 1, 12, 31)
    else:
        return CURRENT, today
    end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    return end.isoformat(), end


def snapshot_get(
    *, kind: str, organisation_id: int, scope_id: int, period_key: str, as_of: date, age_group: str
) -> StatsSnapshot:
    """The stored snapshot, computed on demand (and stored) when there is none yet."""
    org_key = 0 if kind == ScopeKind.PLATFORM else organisation_id
    snap = (
        StatsSnapshot.objects.filter(
            scope_kind=kind,
            organisation_id=org_key,
            scope_id=scope_id,
            period_key=period_key,
            age_group=age_group,
        )
        .defer("payload")
        .first()
    )  # the payload is read only when the figures are not cached
    # The current snapshot of an earlier day (before the nightly job) is recomputed.
    if snap is not None and (period_key != CURRENT or snap.as_of == as_of):
        return snap
    from .services import stats_compute_scope

    result = stats_compute_scope(
        kind=kind,
        organisation_id=organisation_id,
        scope_id=scope_id,
        as_of=as_of,
        period_key=period_key,
        age_group=age_group,
    )
    assert result is not None
    return result


@dataclass
class Figures:
    """A snapshot as a page or the API shows it (suppressed when ``anonymised``)."""

    snapshot: StatsSnapshot
    anonymised: bool
    k: int
    table: dict[str, dict[str, Any]]  # active/inactive -> column -> value (None = hidden)
    suppressed: dict[str, dict[str, str]]  # active/inactive -> column -> reason
    trajectory: list[dict[str, Any]]
    etr: dict[str, Any]
    etr_suppressed: dict[str, str]
    implementation: list[dict[str, Any]]
    quality: dict[str, Any]
    spread: list[dict[str, Any]]
    show_spread: bool


def _nan_to_none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and v != v) else v


FIGURES_CACHE_SECONDS = 60 * 60 * 24


def figures_for(snapshot: StatsSnapshot, *, anonymised: bool, k: int) -> Figures:
    """The snapshot's figures as shown to a role; the suppressed version is cached per
    (snapshot, computed_at, k): a snapshot never changes without a new computed_at, and
    suppression (pandas, some ms) would otherwise dominate a dashboard request."""
    from django.core.cache import cache

    key = f"stats:fig:{snapshot.pk}:{snapshot.computed_at.timestamp()}:{int(anonymised)}:{k}"
    cached = cache.get(key)
    if cached is None:
        cached = _figures_data(snapshot, anonymised=anonymised, k=k)
        cache.set(key, cached, FIGURES_CACHE_SECONDS)
    return Figures(snapshot=snapshot, anonymised=anonymised, k=k, **cached)


def _figures_data(snapshot: StatsSnapshot, *, anonymised: bool, k: int) -> dict[str, Any]:
    p = snapshot.payload
    table = {side: dict(p["table"].get(side, {})) for side in ("active", "inactive")}
    suppressed: dict[str, dict[str, str]] = {"active": {}, "inactive": {}}
    trajectory = list(p.get("trajectory", []))
    etr = dict(p.get("etr") or {})
    etr_suppressed: dict[str, str] = {}
    implementation = list(p.get("implementation", []))
    spread = list(p.get("therapist_spread", []))
    quality = dict(p.get("quality") or {})
    show_spread = False
    if anonymised:
        # SECURITY: data-quality counts are client counts too ("intake above the cutoff"
        # is health data): a count of 1..k-1 is shown as "< k", never as the number.
        quality = {c: (f"< {k}" if 0 < int(v or 0) < k else v) for c, v in quality.items()}
        df = pd.DataFrame(
            [table["active"], table["inactive"]],
            index=pd.Index([True, False], name="active"),
            columns=STATISTICS_COLUMNS,
        ).astype(float)
        hidden, reasons = suppress_table(df, k=k, partition_levels=["active"])
        for flag, side in ((True, "active"), (False, "inactive")):
            row = hidden.loc[flag]
            why = reasons.loc[flag]
            table[side] = {c: _nan_to_none(row[c]) for c in STATISTICS_COLUMNS}
            for c in STATISTICS_COLUMNS:
                r = why[c]
                if isinstance(r, str):
                    table[side][c] = None
                    suppressed[side][c] = r
        if trajectory:
            tdf = pd.DataFrame(trajectory).set_index("session_number")
            tdf = suppress_trajectory(tdf, k=k).reset_index()
            trajectory = [
                {c: _nan_to_none(v) for c, v in row.items()} for row in tdf.to_dict("records")
            ]
        ended = int(etr.get("ended_evaluable") or 0)
        if 0 < ended < k:
            for c in ("reaching_target", "dropout", "reaching_target_share", "dropout_share"):
                etr[c] = None
                etr_suppressed[c] = reason_small(k)
        n_rel = int(etr.get("n_relative_effect") or 0)
        if 0 < n_rel < k:
            etr["relative_effect_size"] = None
            etr_suppressed["relative_effect_size"] = reason_small(k)
        implementation = [r for r in implementation if not (0 < int(r["episodes"]) < k)]
        # Per-therapist spread: only with >= 3 therapists, anonymous, each of >= k clients.
        spread = [r for r in spread if int(r.get("n_ors_change") or 0) >= k]
        show_spread = may_show_therapist_spread(int(p.get("n_therapists", 0))) and len(spread) >= 3
        if not show_spread:
            spread = []
    return dict(
        table=table,
        suppressed=suppressed,
        trajectory=trajectory,
        etr=etr,
        etr_suppressed=etr_suppressed,
        implementation=implementation,
        quality=quality,
        spread=spread,
        show_spread=show_spread,
    )
